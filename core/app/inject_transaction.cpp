// app/inject_transaction: see inject_transaction.hpp.
#include "app/inject_transaction.hpp"

#include <algorithm>

#include "policy/runtime.hpp"
#include "server/recipient_admission.hpp"
#include "settings/gateway_config.hpp"
#include "smtp/address.hpp"
#include "smtp/command.hpp"
#include "spool/spool_writer.hpp"
#include "submit/message_draft.hpp"
#include "submit/submitter.hpp"

namespace mailgate::app {

asio::awaitable<InjectResult> run_inject(InjectWorker w,
                                         std::shared_ptr<const InjectRequest> request) {
  const auto& req = *request;
  InjectResult out;
  auto& submitter = *w.submitter;
  // An injected message gets no looser limit than some SMTP client has.
  std::uint64_t max_size = 0;
  std::uint32_t max_recipients = 0;
  std::vector<std::string> relay_domains;
  for (const auto& l : w.config->listeners) {
    max_size = std::max(max_size, l.max_message_size);
    max_recipients = std::max(max_recipients, l.max_recipients);
  }

  std::string params;
  if (smtp::has_non_ascii(req.content)) params += " BODY=8BITMIME";
  const bool utf8 = smtp::has_non_ascii(req.from) ||
                    std::any_of(req.to.begin(), req.to.end(),
                                [](const std::string& a) { return smtp::has_non_ascii(a); });
  if (utf8) params += " SMTPUTF8";

  policy::ConnInfo conn;
  conn.remote_ip = req.client_ip;
  conn.listener = "http";
  policy::PolicyRef policy = w.policy ? w.policy->current(w.index) : nullptr;
  auto has = [&](policy::Event e) { return policy && policy->has(e); };
  const auto id = submitter.next_id();

  auto mail = smtp::parse_mail_from("FROM:<" + req.from + ">" + params);
  smtp::Reply sender_refusal;
  policy::TxInfo tx;
  tx.id = id.hex();
  tx.conn = &conn;
  if (auto* err = std::get_if<smtp::Reply>(&mail)) {
    sender_refusal = *err;
  } else if (w.writer->disk_low()) {
    sender_refusal = {452, "4.3.1", "insufficient system storage, try again later"};
  } else {
    tx.sender = policy::make_address_info(std::get<smtp::MailFrom>(mail).path.address.str());
    if (has(policy::Event::MailFrom)) {
      auto v = co_await policy->mail_from(tx);
      if (v.kind == policy::Verdict::Kind::Reject || v.kind == policy::Verdict::Kind::Tempfail)
        sender_refusal = v.reply;
    }
  }
  if (sender_refusal.code) {
    out.kind = InjectResult::Kind::SenderRefused;
    out.reply = sender_refusal;
    for (const auto& a : req.to) out.rejected.emplace_back(a, sender_refusal);
    co_return out;
  }
  const auto& from = std::get<smtp::MailFrom>(mail);

  submit::Submission s;
  s.id = id;
  s.origin.source = submit::Source::Http;
  s.origin.helo = w.config->hostname;
  s.origin.client_ip = req.client_ip;
  s.sender = from.path.address.str();
  s.ret = from.params.ret;
  s.envid = from.params.envid;
  s.body_type = from.params.body;
  s.smtputf8 = from.params.smtputf8;
  s.policy = policy;
  auto& stats = submitter.stats();
  for (const auto& a : req.to) {
    auto parsed = smtp::parse_rcpt_to("TO:<" + a + ">", s.smtputf8);
    smtp::Reply refusal;
    if (auto* err = std::get_if<smtp::Reply>(&parsed)) {
      refusal = *err;
    } else if (s.recipients.size() >= max_recipients) {
      refusal = {452, "4.5.3", "too many recipients"};
    } else {
      auto& rcpt = std::get<smtp::RcptTo>(parsed);
      const auto d = co_await server::admit_recipient(policy.get(), &tx, rcpt, true, relay_domains);
      if (d.kind == server::RecipientDecision::Kind::Accepted) {
        tx.recipients.push_back(policy::make_address_info(rcpt.path.address.str()));
        s.recipients.push_back({rcpt.path.address.str(), rcpt.params.notify, rcpt.params.orcpt});
        stats.http_recipients_accepted.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      refusal = d.reply;
    }
    submitter.log_rejection(id, s.sender, a, refusal);
    stats.http_recipients_rejected.fetch_add(1, std::memory_order_relaxed);
    out.rejected.emplace_back(a, refusal);
  }
  out.accepted = s.recipients.size();
  if (s.recipients.empty()) {
    out.kind = InjectResult::Kind::NoRecipient;
    co_return out;
  }

  submit::MessageDraft draft(*w.writer, *w.store, w.config->spool.body_buffer);
  draft.begin(id, smtp::DataScanner::Mode::Chunk, max_size);
  // In blocks, so a large body spills to the spool as SMTP's would.
  constexpr std::size_t kBlock = 64 * 1024;
  for (std::size_t pos = 0; pos < req.content.size(); pos += kBlock)
    co_await draft.absorb(std::string_view(req.content).substr(pos, kBlock));
  draft.finish_chunks();
  s.body = &draft;
  s.tx = &tx;
  auto result = co_await submitter.submit(s);
  out.reply = result.reply;
  if (result.kind == submit::SubmitResult::Kind::Refused) {
    out.kind = InjectResult::Kind::MessageRefused;
    out.accepted = 0;
  } else {
    out.id = id.hex();
  }
  co_return out;
}

}  // namespace mailgate::app
