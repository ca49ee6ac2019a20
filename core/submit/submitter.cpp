// submit/submitter: see submitter.hpp. The received path (submit) and the
// generated path (submit_generated) share the hook step (apply_policy) and
// the commit's shape; they differ in where the body is (a MessageDraft, or
// one string already in the spool) and in what a temporary failure means
// (a 4xx to the client, or a retry later).
#include "submit/submitter.hpp"
#include "dns/idna.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <optional>

#include "dkim/key_cache.hpp"
#include "eventlog/delivery_log.hpp"
#include "mime/header_section.hpp"
#include "policy/header_section.hpp"
#include "settings/gateway_config.hpp"
#include "smtp/address.hpp"
#include "spool/spool_reader.hpp"
#include "spool/spool_writer.hpp"
#include "spool/write_set.hpp"
#include "submit/dkim_signing.hpp"
#include "submit/message_draft.hpp"
#include "submit/received_header.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::submit {

using asio::use_awaitable;

namespace {

std::string domain_of(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string()
                                      : dns::normalize_domain(address.substr(at + 1));
}

smtp::Reply ok_reply(const spool::MessageId& id) {
  return {250, "2.0.0", fmt::format("OK id={}", id.hex())};
}

// What the message and route hooks decided.
struct PolicyInput {
  policy::Policy* policy = nullptr;
  const policy::TxInfo* tx = nullptr;
  std::string id;
  std::uint64_t size = 0;
  std::string sender;
  const std::vector<spool::EnvelopeRecipient>* recipients = nullptr;
  std::optional<std::string_view> headers;  // nullopt: not available to hooks
  std::map<std::string, std::string>* meta = nullptr;
  bool dsn = false;
};

struct PolicyOutput {
  std::vector<std::string> rcpt_dest;  // per recipient; "" = discarded or consumed
  // Recipients the route hook said to consume (index → complaint?).
  std::map<std::uint32_t, bool> consumed;
  std::map<std::string, smtp::TlsMode> dest_tls;
  // Smarthost AUTH by destination ("user@[host]:port"), stored in each of
  // its queue records (spool::RouteAuth says why they are stored).
  std::map<std::string, spool::RouteAuth> dest_auth;
  std::optional<std::string> new_headers;  // the edited header section
  std::vector<dkim::SignRequest> dkim;     // msg:dkim_sign{} calls, in order
  std::string pool;                        // msg:set_pool's ("": the default)
  smtp::Reply refusal;                     // code != 0: refused
  bool by_message_hook = false;
};

asio::awaitable<void> apply_policy(const PolicyInput& in, PolicyOutput& out) {
  for (const auto& r : *in.recipients) out.rcpt_dest.push_back(domain_of(r.address));
  auto* p = in.policy;
  const bool message_hook = p && p->has(policy::Event::Message);
  const bool route_hook = p && p->has(policy::Event::Route);
  if (!message_hook && !route_hook) co_return;

  std::optional<policy::HeaderSection> headers;
  if (in.headers) headers.emplace(*in.headers);
  policy::Message msg;
  msg.id = in.id;
  msg.size = in.size;
  msg.sender = in.sender;
  for (const auto& r : *in.recipients) msg.recipients.push_back(r.address);
  msg.headers = headers ? &*headers : nullptr;
  msg.headers_writable = headers.has_value();
  msg.meta = in.meta;
  msg.meta_writable = true;
  msg.dsn = in.dsn;
  msg.dkim = &out.dkim;
  msg.pool = &out.pool;

  if (message_hook) {
    auto v = co_await p->message(*in.tx, msg);
    if (v.kind == policy::Verdict::Kind::Reject || v.kind == policy::Verdict::Kind::Tempfail) {
      out.refusal = v.reply;
      out.by_message_hook = true;
      co_return;
    }
  }
  msg.dkim = nullptr;
  msg.pool = nullptr;
  if (route_hook) {
    msg.headers_writable = false;
    std::map<std::string, policy::RouteDecision> by_domain;
    for (std::uint32_t i = 0; i < out.rcpt_dest.size(); ++i) {
      auto& dest = out.rcpt_dest[i];
      auto it = by_domain.find(dest);
      if (it == by_domain.end()) {
        auto d = co_await p->route(msg, dest);
        if (d.failure.error) {
          out.refusal = d.failure.reply;
          co_return;
        }
        it = by_domain.emplace(dest, std::move(d)).first;
      }
      const auto& d = it->second;
      if (d.kind == policy::RouteDecision::Kind::Discard) {
        dest.clear();
      } else if (d.kind == policy::RouteDecision::Kind::Consume) {
        dest.clear();
        out.consumed[i] = d.consume == policy::RouteDecision::Consume::Complaint;
      } else {
        dest = d.destination;
        if (d.tls) out.dest_tls[d.destination] = *d.tls;
        if (d.auth)
          out.dest_auth[d.destination] = {d.auth->user, d.auth->password, d.auth->plaintext};
      }
    }
  }
  if (headers && headers->modified()) out.new_headers = headers->str();
}

// Whether any recipient is left after routing (a message all discarded is
// neither signed nor stored).
bool delivers(const PolicyOutput& routing) {
  for (const auto& d : routing.rcpt_dest)
    if (!d.empty()) return true;
  return false;
}

// One queue record per destination, in recipient order; discarded recipients get none.
std::map<std::string, spool::DestRecord> group_by_destination(
    const PolicyOutput& routing, const std::map<std::string, std::string>& meta,
    std::vector<std::uint32_t>& discarded) {
  std::map<std::string, spool::DestRecord> dests;
  // Kept in every dest record: the queue schedules by it after a restart.
  const auto tenancy = tenancy::from_meta(meta);
  for (std::uint32_t i = 0; i < routing.rcpt_dest.size(); ++i) {
    const auto& dest = routing.rcpt_dest[i];
    if (dest.empty()) {
      discarded.push_back(i);
      continue;
    }
    auto& rec = dests[dest];
    rec.tenancy = tenancy;
    rec.recipients.push_back({i, spool::RcptState::Pending, {}});
    if (auto t = routing.dest_tls.find(dest); t != routing.dest_tls.end()) rec.tls = t->second;
    if (auto a = routing.dest_auth.find(dest); a != routing.dest_auth.end()) rec.auth = a->second;
    rec.pool = routing.pool;
  }
  return dests;
}

std::vector<spool::QueuedDest> queued(const std::map<std::string, spool::DestRecord>& dests) {
  std::vector<spool::QueuedDest> out;
  out.reserve(dests.size());
  for (const auto& [name, rec] : dests)
    out.push_back({name, rec.tls, rec.auth, rec.tenancy, rec.pool});
  return out;
}

// mailgate's Received: line for a received message (DESIGN §7).
std::string trace_header(const Submission& s, std::string_view hostname, std::string_view id) {
  ReceivedInfo info;
  info.helo = s.origin.helo;
  info.client_ip = s.origin.client_ip;
  info.hostname = hostname;
  info.id = id;
  if (s.recipients.size() == 1) info.for_rcpt = s.recipients[0].address;
  info.esmtp = s.origin.esmtp;
  info.tls = s.origin.tls;
  info.tls_version = s.origin.tls_version;
  info.tls_cipher = s.origin.tls_cipher;
  info.tls_bits = s.origin.tls_bits;
  info.auth = !s.origin.auth_user.empty();
  info.smtputf8 = s.smtputf8;
  info.when = std::chrono::system_clock::now();
  std::string out;
  append_received_header(info, out);
  return out;
}

// The envelope record of a received message whose body is complete.
spool::Envelope envelope_of(const Submission& s) {
  spool::Envelope env;
  env.sender = s.sender;
  env.recipients = s.recipients;
  env.meta.assign(s.meta.begin(), s.meta.end());
  env.ret = static_cast<std::uint8_t>(s.ret);
  env.envid = s.envid;
  env.body_type = static_cast<std::uint8_t>(s.body_type);
  env.smtputf8 = s.smtputf8;
  env.size = s.body->size();
  env.received_ms = static_cast<std::int64_t>(s.id.millis());
  env.client_ip = s.origin.client_ip;
  env.helo = s.origin.helo;
  env.auth_user = s.origin.auth_user;
  env.tls = s.origin.tls;
  env.body_chunks = s.body->chunk_count();
  return env;
}

// The connection hooks see for a generated message.
const policy::ConnInfo& local_conn() {
  static const policy::ConnInfo conn = [] {
    policy::ConnInfo c;
    c.listener = "local";
    return c;
  }();
  return conn;
}

}  // namespace

Submitter::Submitter(Deps deps, spool::IdGenerator ids)
    : deps_(std::move(deps)), ids_(ids), stats_(deps_.labels->size()) {}
Submitter::~Submitter() = default;

eventlog::LogRecord Submitter::record(const char* event, const Submission& s,
                                      std::string_view recipient, const smtp::Reply& reply,
                                      std::uint64_t size) const {
  eventlog::LogRecord rec;
  rec.event = event;
  rec.time_ms = spool::wall_clock_ms();
  rec.id = s.id.hex();
  rec.sender = s.sender;
  rec.recipient = std::string(recipient.substr(0, 512));
  rec.destination = domain_of(recipient);
  rec.code = reply.code;
  rec.enhanced = reply.enhanced;
  rec.text = reply.text;
  rec.size = size;
  rec.tls = s.origin.tls;
  rec.tls_version = s.origin.tls_version;
  rec.tls_cipher = s.origin.tls_cipher;
  rec.auth_user = s.origin.auth_user;
  rec.meta.assign(s.meta.begin(), s.meta.end());
  return rec;
}

void Submitter::log(const char* event, const Submission& s, std::string_view recipient,
                    const smtp::Reply& reply, std::uint64_t size) {
  if (!deps_.log && !deps_.webhooks) return;
  auto rec = record(event, s, recipient, reply, size);
  if (deps_.webhooks) deps_.webhooks->publish_uncommitted(rec);
  if (deps_.log) deps_.log->write(deps_.worker, std::move(rec));
}

void Submitter::log_rejection(const spool::MessageId& id, std::string_view sender,
                              std::string_view recipient, const smtp::Reply& reply) {
  Submission s;
  s.id = id;
  s.sender = std::string(sender);
  log("rejection", s, recipient, reply, 0);
}

asio::awaitable<void> Submitter::refuse(Submission& s, const smtp::Reply& reply, bool by_policy) {
  co_await s.body->discard();
  for (const auto& r : s.recipients) log("rejection", s, r.address, reply, 0);
  (reply.transient() ? stats_.messages_tempfailed : stats_.messages_rejected)
      .fetch_add(1, std::memory_order_relaxed);
  (by_policy ? stats_.recipients_rejected_message : stats_.recipients_rejected_data)
      .fetch_add(s.recipients.size(), std::memory_order_relaxed);
}

asio::awaitable<SubmitResult> Submitter::submit(Submission& s) {
  auto& body = *s.body;
  if (auto refusal = body.refusal()) {
    if (refusal->code == 550 && refusal->enhanced == "5.5.2")
      stats_.bare_lf_rejected.fetch_add(1, std::memory_order_relaxed);
    co_await refuse(s, *refusal, false);
    co_return SubmitResult{SubmitResult::Kind::Refused, *refusal};
  }
  body.terminate_lines();

  // The trace header first: hooks see it as the message's first field.
  const auto id = s.id.hex();
  body.prepend_trace(trace_header(s, deps_.config->hostname, id));

  PolicyInput in;
  in.policy = s.policy.get();
  in.tx = s.tx;
  in.id = id;
  in.size = body.size();
  in.sender = s.sender;
  in.recipients = &s.recipients;
  in.headers = body.header_section();
  in.meta = &s.meta;
  PolicyOutput routing;
  co_await apply_policy(in, routing);
  if (routing.refusal.code) {
    if (routing.by_message_hook)
      stats_.messages_rejected_policy.fetch_add(1, std::memory_order_relaxed);
    co_await refuse(s, routing.refusal, true);
    co_return SubmitResult{SubmitResult::Kind::Refused, routing.refusal};
  }
  if (routing.new_headers) body.replace_header_section(std::move(*routing.new_headers));
  if (!routing.dkim.empty() && delivers(routing)) {
    // Over the final headers, after every hook, before the commit.
    auto signing = co_await sign(
        routing.dkim, body.header_section(),
        [&body](dkim::Canonicalization c) { return body.body_hash(c); }, id);
    if (signing.refusal) {
      co_await refuse(s, *signing.refusal, false);
      co_return SubmitResult{SubmitResult::Kind::Refused, *signing.refusal};
    }
    if (!signing.fields.empty()) body.prepend_trace(signing.fields);
  }

  std::vector<std::uint32_t> discarded;
  auto dests = group_by_destination(routing, s.meta, discarded);
  if (!routing.consumed.empty()) {
    // Inbound feedback: parsed here, never queued (nothing relays).
    std::vector<Consumed> consumed;
    std::erase_if(discarded, [&](std::uint32_t i) {
      auto c = routing.consumed.find(i);
      if (c == routing.consumed.end()) return false;
      consumed.push_back({i, c->second});
      return true;
    });
    co_await consume_feedback(s, consumed);
  }
  const auto env = envelope_of(s);

  const auto ok = ok_reply(s.id);
  auto count_discards = [&] {
    for (auto i : discarded)
      stats_.discards.add(metrics::Outcome::Discard,
                          deps_.labels->index(domain_of(env.recipients[i].address)));
  };
  auto log_discards = [&] {
    for (auto i : discarded) log("discard", s, env.recipients[i].address, ok, env.size);
    count_discards();
  };
  if (dests.empty()) {
    // Every recipient was discarded by the route hook: nothing to keep.
    co_await body.discard();
    log_discards();
    stats_.received[static_cast<int>(s.origin.source)].fetch_add(1, std::memory_order_relaxed);
    co_return SubmitResult{SubmitResult::Kind::Discarded, ok};
  }

  spool::WriteSet set(*deps_.store);
  body.add_unwritten_chunks(set);
  set.put_envelope(s.id, env);
  for (auto& [dest, rec] : dests) {
    rec.next_attempt_ms = env.received_ms;
    rec.size = env.size;
    set.put_dest(s.id, dest, rec);
  }
  // The events this commit makes true, in the order they are logged; their
  // webhook rows are part of the commit (synced with the message).
  std::vector<eventlog::LogRecord> events;
  events.reserve(env.recipients.size() + discarded.size());
  for (const auto& r : env.recipients)
    events.push_back(record("reception", s, r.address, ok, env.size));
  for (auto i : discarded)
    events.push_back(record("discard", s, env.recipients[i].address, ok, env.size));
  webhooks::Staged staged;
  if (deps_.webhooks) staged = deps_.webhooks->stage(set, events);
  std::error_code ec;
  co_await deps_.writer->async_write(std::move(set), true, asio::redirect_error(use_awaitable, ec));
  if (deps_.webhooks) {
    if (ec)
      deps_.webhooks->abandoned(std::move(staged));
    else
      deps_.webhooks->committed(std::move(staged));
  }
  if (ec) {
    body.commit_failed();
    spdlog::error("spool write failed for message {}: {}", id, ec.message());
    const smtp::Reply r{451, "4.3.0", "local error: could not write to the spool, try again later"};
    co_await refuse(s, r, false);
    co_return SubmitResult{SubmitResult::Kind::Refused, r};
  }
  stats_.received[static_cast<int>(s.origin.source)].fetch_add(1, std::memory_order_relaxed);
  stats_.bytes_received.fetch_add(env.size, std::memory_order_relaxed);
  if (deps_.log)
    for (auto& e : events) deps_.log->write(deps_.worker, std::move(e));
  count_discards();
  if (deps_.queue) deps_.queue(s.id, queued(dests), env.size);
  spdlog::debug("received {} from <{}> for {} recipient(s), {} bytes", id, env.sender,
                env.recipients.size(), env.size);
  body.clear();
  co_return SubmitResult{SubmitResult::Kind::Queued, ok};
}

asio::awaitable<SigningResult> Submitter::sign(
    const std::vector<dkim::SignRequest>& requests, std::optional<std::string_view> section,
    std::function<std::optional<dkim::Sha256>(dkim::Canonicalization)> body, std::string_view id) {
  auto* runtime = deps_.policy;
  auto result =
      co_await sign_message(requests, section, std::move(body), runtime ? runtime->pool() : nullptr,
                            runtime ? runtime->dkim_keys() : nullptr, id);
  stats_.dkim_signed.fetch_add(result.signed_count, std::memory_order_relaxed);
  stats_.dkim_failed.fetch_add(result.failed, std::memory_order_relaxed);
  stats_.dkim_sent_unsigned.fetch_add(result.sent_unsigned, std::memory_order_relaxed);
  co_return result;
}

// --- Generated messages -----------------------------------------------------

void Submitter::submit_generated(Generated g) {
  asio::co_spawn(*deps_.context, run_generated(std::make_shared<Generated>(std::move(g))),
                 asio::detached);
}

void Submitter::resubmit_pending(const spool::MessageId& id) {
  deps_.reader->submit(id, std::string(spool::kSubmitPending),
                       [this, id](std::error_code ec, std::shared_ptr<spool::LoadedMessage> m) {
                         if (ec || !m) {
                           spdlog::error("pending message {} cannot be read from the spool: {}",
                                         id.hex(), ec.message());
                           return;
                         }
                         asio::post(*deps_.context, [this, id, m] {
                           submit_generated({id, std::move(m->envelope), std::move(m->body), true});
                         });
                       });
}

asio::awaitable<void> Submitter::run_generated(std::shared_ptr<Generated> g) {
  const auto& retry = deps_.config->delivery.retry;
  auto delay = retry.first;
  asio::steady_timer timer(*deps_.context);
  auto& env = g->envelope;
  const auto id = g->id.hex();
  for (;;) {
    // Each try takes the newest policy: a reload may be what fixes a tempfail.
    policy::PolicyRef p = deps_.policy ? deps_.policy->current(deps_.worker) : nullptr;
    std::map<std::string, std::string> meta(env.meta.begin(), env.meta.end());
    policy::TxInfo tx;
    tx.id = id;
    tx.conn = &local_conn();
    tx.sender = policy::make_address_info(env.sender);
    for (const auto& r : env.recipients)
      tx.recipients.push_back(policy::make_address_info(r.address));
    PolicyInput in;
    in.policy = p.get();
    in.tx = &tx;
    in.id = id;
    in.size = g->body.size();
    in.sender = env.sender;
    in.recipients = &env.recipients;
    const auto end = mime::header_section_length(g->body);
    in.headers = std::string_view(g->body).substr(0, end);
    in.meta = &meta;
    in.dsn = g->dsn;
    PolicyOutput routing;
    co_await apply_policy(in, routing);
    // The body to store when it changed (hook edits, signatures); g->body
    // stays as loaded, so a retry runs the hooks on the original again.
    std::string final_body;
    if (!routing.refusal.code) {
      if (routing.new_headers) final_body = *routing.new_headers + g->body.substr(end);
      if (!routing.dkim.empty() && delivers(routing)) {
        const std::string_view current = routing.new_headers ? final_body : g->body;
        const auto header_end = mime::header_section_length(current);
        const auto body_part = current.substr(std::min(header_end + 2, current.size()));
        auto signing = co_await sign(
            routing.dkim, current.substr(0, header_end),
            [body_part](dkim::Canonicalization c) { return dkim::body_hash(c, body_part); }, id);
        if (signing.refusal)
          routing.refusal = *signing.refusal;  // temporary: held back below
        else if (!signing.fields.empty())
          final_body = signing.fields + std::string(current);
      }
    }

    Submission s;  // for log records
    s.id = g->id;
    s.sender = env.sender;
    s.recipients = env.recipients;
    s.meta = meta;
    spool::WriteSet set(*deps_.store);
    set.remove_dest(g->id, spool::kSubmitPending);
    std::vector<std::uint32_t> discarded;
    std::map<std::string, spool::DestRecord> dests;
    const bool refused_for_good = routing.refusal.code >= 500;
    if (routing.refusal.code && !refused_for_good) {
      // Temporary (tempfail, hook error or timeout): never drop, try again later.
      stats_.generated_retries.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("generated message {} held back: {} {} {}; retrying in {} ms", id,
                   routing.refusal.code, routing.refusal.enhanced, routing.refusal.text,
                   delay.count());
    } else {
      if (!refused_for_good) {
        if (!final_body.empty()) env.size = final_body.size();
        dests = group_by_destination(routing, meta, discarded);
      } else {
        for (std::uint32_t i = 0; i < env.recipients.size(); ++i) discarded.push_back(i);
      }
      env.meta.assign(meta.begin(), meta.end());
      if (dests.empty()) {
        set.remove_message(g->id, env.body_chunks);
      } else {
        if (!final_body.empty()) set.put_body_chunk(g->id, 0, final_body);
        set.put_envelope(g->id, env);
        for (auto& [dest, rec] : dests) {
          rec.next_attempt_ms = spool::wall_clock_ms();
          rec.size = env.size;
          set.put_dest(g->id, dest, rec);
        }
      }
      std::error_code ec;
      co_await deps_.writer->async_write(std::move(set), true,
                                         asio::redirect_error(use_awaitable, ec));
      if (!ec) {
        const smtp::Reply why = refused_for_good ? routing.refusal : ok_reply(g->id);
        for (auto i : discarded) {
          const auto& address = env.recipients[i].address;
          log("discard", s, address, why, env.size);
          stats_.discards.add(metrics::Outcome::Discard, deps_.labels->index(domain_of(address)));
        }
        if (!dests.empty()) {
          stats_.received[static_cast<int>(Source::Generated)].fetch_add(1,
                                                                         std::memory_order_relaxed);
          if (deps_.queue) deps_.queue(g->id, queued(dests), env.size);
        }
        co_return;
      }
      spdlog::error("generated message {}: spool write failed: {}; retrying in {} ms", id,
                    ec.message(), delay.count());
    }
    timer.expires_after(delay);
    std::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;  // shutting down: recovery resubmits it at the next start
    delay = std::min(delay * 2, std::max(retry.max, retry.first));
  }
}

}  // namespace mailgate::submit
