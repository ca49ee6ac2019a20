// submit/feedback_stage: the submission stage's part for inbound feedback
// (route `{ consume = "bounce" | "complaint" }`, DESIGN §6b). The consumed
// recipients' copy of the message is parsed and matched on the spool reader
// pool (feedback/matcher: index reads block), then, back on the worker:
// the events' webhook rows are committed (synced) before anything else, then
// `bounced` hooks run for matched bounces (the suppression plugin adds the
// address there), complaints are added to the suppression list (reason
// "complaint"; unmatched ones only with feedback.suppress_unmatched), and
// the records are logged and counted.
// Promises: nothing is queued for delivery; a report larger than
// feedback.max_size (or than spool.body_buffer: it is parsed from memory) is
// accepted, logged on the process log and counted as unparsed, never
// relayed; a report that matches no sent message is logged with `id: null`
// and suppresses nothing unless feedback.suppress_unmatched is set.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "dns/idna.hpp"
#include "eventlog/delivery_log.hpp"
#include "feedback/matcher.hpp"
#include "policy/header_section.hpp"
#include "settings/gateway_config.hpp"
#include "spool/spool_reader.hpp"
#include "spool/spool_writer.hpp"
#include "spool/write_set.hpp"
#include "submit/message_draft.hpp"
#include "submit/submitter.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::submit {

namespace {

std::string domain_part(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string()
                                      : dns::normalize_domain(address.substr(at + 1));
}

eventlog::LogRecord feedback_record(feedback::Kind kind, const feedback::Event& e,
                                    const spool::MessageId& report_id) {
  eventlog::LogRecord rec;
  rec.event = feedback::event_name(kind);
  rec.time_ms = spool::wall_clock_ms();
  rec.report_id = report_id.hex();
  if (e.original) {
    rec.id = e.original->id.hex();
    rec.sender = e.original->sender;
    if (!e.original->tenant.empty()) rec.meta.emplace_back("tenant", e.original->tenant);
    if (!e.original->campaign.empty()) rec.meta.emplace_back("campaign", e.original->campaign);
  } else {
    rec.id_null = true;
  }
  rec.recipient = e.recipient;
  rec.destination = domain_part(e.recipient);
  rec.code = e.code;
  rec.enhanced = e.status;
  rec.text = e.text;
  rec.bounce_class = e.bounce_class;
  rec.feedback_type = e.feedback_type;
  rec.original_message_id = e.original_message_id;
  rec.reporter = e.reporter;
  return rec;
}

}  // namespace

asio::awaitable<void> Submitter::consume_feedback(Submission& s,
                                                  const std::vector<Consumed>& consumed) {
  const auto& cfg = *deps_.config;
  const auto content = s.body->content();
  const auto report_id = s.id.hex();
  if (!content || content->size() > cfg.feedback.max_size || !deps_.reader) {
    for (const auto& c : consumed) {
      stats_.feedback_unparsed[c.complaint ? 1 : 0].fetch_add(1, std::memory_order_relaxed);
      spdlog::info("feedback report {} to <{}> ignored: larger than feedback.max_size ({} bytes)",
                   report_id, s.recipients[c.index].address, s.body->size());
    }
    co_return;
  }
  const feedback::Verp verp =
      feedback::Verp::from_config(cfg.delivery.verp, cfg.delivery.verp_secret);
  smtp::BounceClassifier classifier;
  for (const auto& rule : cfg.delivery.bounce_rules) classifier.add_rule(rule);

  struct Result {
    feedback::Kind kind;
    feedback::Analysis analysis;
  };
  std::vector<Result> results;
  for (const auto& c : consumed) {
    const auto kind = c.complaint ? feedback::Kind::Complaint : feedback::Kind::Bounce;
    Result r{kind, {}};
    const std::string_view rcpt = s.recipients[c.index].address;
    const std::string_view message = *content;
    std::error_code ec;
    spool::SpoolReader::Job job = [&](const spool::Store& store) {
      r.analysis = feedback::analyze({store, verp, classifier}, kind, rcpt, message);
    };
    co_await deps_.reader->async_job(std::move(job), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) r.analysis.unparsed = "spool reader stopped";
    results.push_back(std::move(r));
  }

  std::vector<eventlog::LogRecord> records;
  for (const auto& r : results) {
    if (!r.analysis.unparsed.empty()) {
      stats_.feedback_unparsed[r.kind == feedback::Kind::Complaint].fetch_add(
          1, std::memory_order_relaxed);
      spdlog::info("feedback report {} ({}) not used: {}", report_id, feedback::kind_name(r.kind),
                   r.analysis.unparsed);
      continue;
    }
    for (const auto& e : r.analysis.events) records.push_back(feedback_record(r.kind, e, s.id));
  }
  // The webhook rows are durable before anything is logged or acted on.
  if (deps_.webhooks && !records.empty()) {
    spool::WriteSet set(*deps_.store);
    auto staged = deps_.webhooks->stage(set, records);
    std::error_code ec;
    co_await deps_.writer->async_write(std::move(set), true,
                                       asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      deps_.webhooks->abandoned(std::move(staged));
      spdlog::error("feedback report {}: cannot queue its webhook events: {}", report_id,
                    ec.message());
    } else {
      deps_.webhooks->committed(std::move(staged));
    }
  }

  auto* policy = s.policy.get();
  const bool bounced_hook = policy && policy->has(policy::Event::Bounced);
  for (const auto& r : results) {
    const int kind = r.kind == feedback::Kind::Complaint ? 1 : 0;
    for (const auto& e : r.analysis.events) {
      const bool matched = e.original.has_value();
      stats_.feedback_events[kind][matched].fetch_add(1, std::memory_order_relaxed);
      if (matched && !e.original->tenant.empty()) {
        std::lock_guard lk(stats_.feedback_tenants_mu);
        auto it = stats_.feedback_tenants.find(e.original->tenant);
        if (it == stats_.feedback_tenants.end())
          it = stats_.feedback_tenants
                   .try_emplace(stats_.feedback_tenants.size() < SubmitStats::kMaxFeedbackTenants
                                    ? e.original->tenant
                                    : std::string("other"))
                   .first;
        it->second[kind]++;
      }
      if (e.recipient.empty()) continue;
      const bool suppress = matched || cfg.feedback.suppress_unmatched;
      if (r.kind == feedback::Kind::Complaint) {
        if (suppress && deps_.suppression) deps_.suppression->add(e.recipient, "complaint");
        continue;
      }
      if (matched && bounced_hook) {
        // The bounced hook sees the original message as the index knows it.
        policy::HeaderSection headers;
        std::map<std::string, std::string> meta;
        if (!e.original->tenant.empty()) meta["tenant"] = e.original->tenant;
        if (!e.original->campaign.empty()) meta["campaign"] = e.original->campaign;
        policy::Message msg;
        msg.id = e.original->id.hex();
        msg.sender = e.original->sender;
        msg.recipients = e.original->recipients;
        msg.headers = &headers;
        msg.meta = &meta;
        // Named, not temporaries in the co_await (g++ 12 mishandles those).
        const auto rcpt = policy::make_address_info(e.recipient);
        policy::ReplyInfo reply;
        reply.code = e.code;
        reply.enhanced = e.status;
        reply.text = e.text;
        reply.bounce_class = e.bounce_class;
        co_await policy->bounced(msg, rcpt, reply);
      } else if (!matched && suppress && deps_.suppression && e.bounce_class == "bad-mailbox") {
        deps_.suppression->add(e.recipient,
                               fmt::format("async bounce {} {} {}", e.code, e.status, e.text));
      }
    }
  }
  if (deps_.log)
    for (auto& rec : records) deps_.log->write(deps_.worker, std::move(rec));
}

}  // namespace mailgate::submit
