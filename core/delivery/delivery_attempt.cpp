// delivery/delivery_attempt: the coroutines of delivery: one connection per
// call of connection() (resolve, connect, reuse for several messages), one
// attempt per message, and settle(): the synced spool update of the results
// (+ bounce DSN) before the queue moves the message on.
#include <fmt/format.h>
#include <optional>
#include <spdlog/spdlog.h>
#include <asio/experimental/as_tuple.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include "delivery/delivery_worker.hpp"
#include "dsn/dsn.hpp"
#include "eventlog/delivery_log.hpp"
#include "metrics/outcome_counters.hpp"
#include "policy/config.hpp"
#include "policy/runtime.hpp"
#include "smtp/address.hpp"
#include "spool/records.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "submit/submitter.hpp"

namespace mailgate::delivery {

using asio::use_awaitable;

namespace {

// How long an idle outbound connection waits for more mail before QUIT.
constexpr std::chrono::seconds kIdleReuse{2};

bool is_loop(const asio::ip::tcp::endpoint& ep, const std::vector<asio::ip::tcp::endpoint>& own) {
  for (const auto& o : own) {
    if (o.port() != ep.port()) continue;
    if (o.address() == ep.address()) return true;
    if (o.address().is_unspecified() && ep.address().is_loopback()) return true;
  }
  return false;
}

std::string one_line(const smtp::Reply& r) {
  std::string t = r.text;
  for (auto& c : t)
    if (c == '\n' || c == '\r') c = ' ';
  return t;
}

// "550 5.1.1 text" on one line: stored as the last reply and used as the
// DSN's Diagnostic-Code.
std::string reply_line(const smtp::Reply& r) {
  return fmt::format("{} {} {}", r.code, r.enhanced, one_line(r));
}

}  // namespace

const smtp::Reply DeliveryEngine::Worker::kExpired{451, "4.4.7",
                                                   "message expired: delivery time limit reached"};

asio::awaitable<Route> DeliveryEngine::Worker::resolve(const std::string& destination) {
  Route route;
  std::uint16_t port = deps.config->delivery.port;
  if (!destination.empty() && destination.front() == '[') {
    // "[literal]" (a recipient's address literal) or "[host]:port" (a
    // smarthost route): no MX lookup (RFC 5321 §5.1).
    const auto close = destination.find(']');
    std::string host = destination.substr(1, close == std::string::npos ? 0 : close - 1);
    if (close != std::string::npos && close + 1 < destination.size())
      port = static_cast<std::uint16_t>(std::stoul(destination.substr(close + 2)));
    if (host.rfind("IPv6:", 0) == 0 || host.rfind("ipv6:", 0) == 0) host = host.substr(5);
    std::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (!ec) {
      route.targets.push_back({destination, {addr, port}});
    } else if (close + 1 < destination.size()) {
      auto a = co_await resolver->addresses(host);
      for (const auto& ip : a.addresses) route.targets.push_back({host, {ip, port}});
      if (route.targets.empty()) {
        auto f = dns::failure_reply(a.status);
        route.failure = {
            f.code, std::string(f.enhanced),
            fmt::format("smarthost {}: {}", host, a.detail.empty() ? f.text : a.detail)};
        co_return route;
      }
    } else {
      route.failure = {550, "5.1.2", "unusable address literal " + destination};
    }
  } else {
    auto mx = co_await resolver->mx(destination);
    if (mx.status != dns::Status::Ok) {
      auto f = dns::failure_reply(mx.status);
      route.failure = {f.code, std::string(f.enhanced),
                       fmt::format("{}: {}", f.text, mx.detail.empty() ? destination : mx.detail)};
      co_return route;
    }
    bool temp = false;
    for (const auto& host : mx.hosts) {
      auto a = co_await resolver->addresses(host.name);
      if (a.status == dns::Status::TempFail) temp = true;
      for (const auto& addr : a.addresses) route.targets.push_back({host.name, {addr, port}});
    }
    if (route.targets.empty()) {
      route.failure =
          temp ? smtp::Reply{451, "4.4.3", "cannot resolve the MX hosts of " + destination}
               : smtp::Reply{550, "5.4.4", "no address for any MX host of " + destination};
      co_return route;
    }
  }
  // An MX pointing back at this gateway would loop the mail forever.
  std::vector<Target> usable;
  for (auto& t : route.targets)
    if (!is_loop(t.endpoint, deps.own_endpoints)) usable.push_back(std::move(t));
  if (usable.empty() && !route.targets.empty()) {
    route.failure = {554, "5.4.6", "mail loop: the MX of " + destination + " is this gateway"};
  }
  route.targets = std::move(usable);
  co_return route;
}

asio::awaitable<void> DeliveryEngine::Worker::connection(Worker& owner, queue::Destination& d) {
  struct Closed {  // counts the connection as ended on every way out
    std::atomic<std::uint64_t>& n;
    ~Closed() { n.fetch_add(1, std::memory_order_relaxed); }
  } closed{connections_closed};
  const auto& cfg = *deps.config;
  auto* shard = owner.shard.get();  // touched only through on(owner, ...)
  spdlog::debug("{}: new connection on worker {} (owner {})", d.name, index, owner.index);
  auto route = co_await resolve(d.name);
  spdlog::debug("{}: {} targets, failure {} {}", d.name, route.targets.size(), route.failure.code,
                route.failure.text);
  if (route.failure.code >= 500) {
    while (auto item = co_await on(owner, [&] { return shard->take(d); }))
      co_await fail_item(owner, d, std::move(*item), route.failure);
    co_await on(owner, [&] { shard->connection_closed(d); });
    co_return;
  }
  // The destination's shaping as of now (it lives on the owner's thread).
  struct Settings {
    unsigned max_messages;
    std::string tls, source, ehlo;
  };
  const auto settings = co_await on(owner, [&] {
    const auto& s = d.shaping;
    std::string tls = s.tls;
    if (tls.empty()) tls = std::string(spool::to_string(d.route_tls));
    if (tls.empty()) tls = cfg.delivery.tls;
    return Settings{s.max_messages_per_connection, tls, s.source_address,
                    s.ehlo_name.empty() ? cfg.hostname : s.ehlo_name};
  });
  std::unique_ptr<SmtpClient> client;
  smtp::Reply last = route.failure;
  for (const auto& t : route.targets) {
    client = std::make_unique<SmtpClient>(ctx.get_executor(), settings.ehlo, ClientTimeouts{},
                                          parse_tls_mode(settings.tls));
    if (!settings.source.empty())
      client->set_source_address(asio::ip::make_address(settings.source));
    last = co_await client->open(t.endpoint, t.host);
    if (last.code / 100 == 2) break;
    spdlog::debug("{}: {} answered {} {}", d.name, t.endpoint.address().to_string(), last.code,
                  one_line(last));
    co_await client->quit();
    client.reset();
  }
  if (!client) {
    // Connection-level failure: the destination waits, its messages keep their attempts.
    const auto delay = cfg.delivery.retry.first.count();
    spdlog::info("{}: no MX accepted a connection ({} {} {}); deferring the destination for {} ms",
                 d.name, last.code, last.enhanced, one_line(last), delay);
    eventlog::LogRecord rec;
    rec.event = "transient_failure";
    rec.time_ms = queue::now_ms();
    rec.destination = d.name;
    rec.code = last.code;
    rec.enhanced = last.enhanced;
    rec.text = one_line(last);
    rec.bounce_class = "routing";
    deps.log->write(index, std::move(rec));
    // Counted like the log line it matches (one per destination deferral).
    outcome_counts.add(metrics::Outcome::TransientFailure, labels->index(d.name));
    co_await on(owner, [&] {
      shard->defer_destination(d, queue::now_ms() + delay);
      shard->connection_closed(d);
    });
    co_return;
  }
  (client->tls() ? opened_tls : opened_plain).fetch_add(1, std::memory_order_relaxed);
  unsigned sent = 0;
  while (sent < settings.max_messages && client->usable()) {
    auto idle = std::make_shared<asio::steady_timer>(ctx, kIdleReuse);
    auto item = co_await on(owner, [&] {
      auto it = shard->take(d);
      if (!it) shard->park(d, idle);
      return it;
    });
    if (!item) {
      // Linger a little: mail often arrives in a trickle, and a new TCP +
      // EHLO per message is what connection reuse is meant to save.
      std::error_code ec;
      co_await idle->async_wait(asio::redirect_error(use_awaitable, ec));
      bool stopped = false;
      item = co_await on(owner, [&] {
        shard->unpark(d, idle);
        stopped = shard->stopped();
        return shard->take(d);
      });
      // Woken but another connection (or the rate limit) got there first:
      // keep lingering; only a full idle period without work closes.
      if (!item && ec == asio::error::operation_aborted && !stopped) continue;
      if (!item) break;
    }
    co_await attempt(owner, d, std::move(*item), client.get());
    ++sent;
  }
  co_await client->quit();
  co_await on(owner, [&] { shard->connection_closed(d); });
}

asio::awaitable<void> DeliveryEngine::Worker::attempt(Worker& owner, queue::Destination& d,
                                                      queue::Item item, SmtpClient* client) {
  const auto started = std::chrono::steady_clock::now();
  struct Timed {  // observes the attempt's duration on every way out
    metrics::Histogram& h;
    std::chrono::steady_clock::time_point t0;
    ~Timed() {
      h.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } timed{delivery_seconds, started};
  const auto now = queue::now_ms();
  if (owner.shard->policy().expired(static_cast<std::int64_t>(item.id.millis()), now)) {
    co_await fail_item(owner, d, std::move(item), kExpired);
    co_return;
  }
  auto [ec, msg] = co_await deps.reader->async_load(item.id, d.name,
                                                    asio::experimental::as_tuple(use_awaitable));
  if (ec || !msg) {
    spdlog::error("{}: message {} cannot be read from the spool ({}); dropped from the queue",
                  d.name, item.id.hex(), ec.message());
    co_await on(owner, [&] { owner.shard->finished(d); });
    co_return;
  }
  std::vector<std::uint32_t> pending;
  for (const auto& r : msg->dest.recipients)
    if (r.state == spool::RcptState::Pending) pending.push_back(r.index);
  std::vector<Outcome> outcomes;
  if (!pending.empty()) {
    auto result = co_await client->send(msg->envelope, pending, msg->body);
    for (std::size_t i = 0; i < pending.size(); ++i)
      outcomes.push_back({pending[i], result.recipients[i]});
  }
  co_await settle(owner, d, std::move(item), std::move(msg), std::move(outcomes), client);
}

asio::awaitable<void> DeliveryEngine::Worker::fail_item(Worker& owner, queue::Destination& d,
                                                        queue::Item item, smtp::Reply reply,
                                                        const char* event) {
  auto [ec, msg] = co_await deps.reader->async_load(item.id, d.name,
                                                    asio::experimental::as_tuple(use_awaitable));
  if (ec || !msg) {
    co_await on(owner, [&] { owner.shard->finished(d); });
    co_return;
  }
  std::vector<Outcome> outcomes;
  for (const auto& r : msg->dest.recipients)
    if (r.state == spool::RcptState::Pending) outcomes.push_back({r.index, reply});
  co_await settle(owner, d, std::move(item), std::move(msg), std::move(outcomes), nullptr, event);
}

asio::awaitable<void> DeliveryEngine::Worker::settle(Worker& owner, queue::Destination& d,
                                                     queue::Item item,
                                                     std::shared_ptr<spool::LoadedMessage> msg,
                                                     std::vector<Outcome> outcomes,
                                                     const SmtpClient* client,
                                                     const char* final_event) {
  const std::string mx = client ? client->peer_host() : std::string();
  const bool tls = client && client->tls();
  const bool next_hop_dsn = client && client->capabilities().dsn;
  const auto& cfg = *deps.config;
  const auto& env = msg->envelope;
  auto& rec = msg->dest;
  const auto now = queue::now_ms();
  const auto received = static_cast<std::int64_t>(item.id.millis());
  // The retry policy is immutable after start: safe to read from any worker.
  const auto& policy = owner.shard->policy();
  const bool too_old = policy.expired(received, now);

  std::vector<dsn::RecipientReport> reports;
  std::vector<eventlog::LogRecord> records;
  bool any_pending = false;
  for (auto& o : outcomes) {
    auto& r = o.reply;
    const bool expired_now = r.code / 100 == 4 && too_old;
    spool::RcptState state = r.code / 100 == 2                   ? spool::RcptState::Delivered
                             : r.code / 100 == 4 && !expired_now ? spool::RcptState::Pending
                                                                 : spool::RcptState::Failed;
    for (auto& dr : rec.recipients)
      if (dr.index == o.index) {
        dr.state = state;
        dr.last_reply = reply_line(r);
      }
    const auto& er = env.recipients[o.index];
    const char* event = state == spool::RcptState::Delivered     ? "delivery"
                        : state == spool::RcptState::Pending     ? "transient_failure"
                        : final_event != nullptr                 ? final_event
                        : (expired_now || r.enhanced == "4.4.7") ? "expiration"
                                                                 : "bounce";
    const auto cls = state == spool::RcptState::Delivered
                         ? smtp::BounceClass::None
                         : classifier.classify(r.code, r.enhanced, r.text);
    auto& lr = records.emplace_back();
    lr.event = event;
    lr.time_ms = now;
    lr.id = item.id.hex();
    lr.sender = env.sender;
    lr.recipient = er.address;
    lr.destination = d.name;
    lr.mx = mx;
    lr.code = r.code;
    lr.enhanced = r.enhanced;
    lr.text = one_line(r);
    lr.bounce_class = smtp::to_string(cls);
    lr.attempt = rec.attempts + 1;
    lr.tls = tls;
    lr.size = env.size;
    lr.meta = env.meta;
    if (state == spool::RcptState::Pending) {
      any_pending = true;
      continue;
    }
    dsn::Action action = dsn::Action::Failed;
    if (state == spool::RcptState::Delivered) {
      // A next hop that speaks DSN got NOTIFY passed on and reports success
      // itself; one that does not cannot, so we report "relayed" (RFC 3464).
      if (next_hop_dsn) continue;
      action = dsn::Action::Relayed;
    }
    if (!dsn::wants_report(er.notify, action)) continue;
    auto& rep = reports.emplace_back();
    rep.final_recipient = er.address;
    rep.original_recipient = er.orcpt;
    rep.action = action;
    rep.status = expired_now ? std::string("4.4.7") : r.enhanced;  // empty: derived from action
    rep.remote_mta = mx;
    rep.diagnostic = reply_line(r);
    rep.last_attempt_ms = now;
  }
  // One delay DSN per recipient once the message is older than delay_warning
  // (RFC 3464 Action: delayed), for recipients whose NOTIFY asks for it.
  const auto warn_after = cfg.delivery.retry.delay_warning.count();
  if (any_pending && warn_after > 0 && !rec.delay_notified && now - received >= warn_after) {
    rec.delay_notified = true;
    for (const auto& o : outcomes) {
      const auto& er = env.recipients[o.index];
      if (o.reply.code / 100 != 4 || too_old || !dsn::wants_report(er.notify, dsn::Action::Delayed))
        continue;
      auto& rep = reports.emplace_back();
      rep.final_recipient = er.address;
      rep.original_recipient = er.orcpt;
      rep.action = dsn::Action::Delayed;
      rep.status = o.reply.enhanced;
      rep.remote_mta = mx;
      rep.diagnostic = reply_line(o.reply);
      rep.last_attempt_ms = now;
      rep.will_retry_until_ms = policy.deadline(received);
    }
  }

  // Outcome hooks see the message read-only (headers and metadata).
  auto hooks = deps.policy ? deps.policy->current(index) : nullptr;
  policy::HeaderSection hook_headers;
  std::map<std::string, std::string> hook_meta;
  policy::Message hook_msg;
  if (hooks && (hooks->has(policy::Event::Deferred) || hooks->has(policy::Event::Delivered) ||
                hooks->has(policy::Event::Bounced))) {
    const auto end = policy::header_section_end(msg->body);
    hook_headers = policy::HeaderSection(
        std::string_view(msg->body).substr(0, end == std::string::npos ? msg->body.size() : end));
    hook_meta.insert(env.meta.begin(), env.meta.end());
    hook_msg.id = item.id.hex();
    hook_msg.size = env.size;
    hook_msg.sender = env.sender;
    for (const auto& r : env.recipients) hook_msg.recipients.push_back(r.address);
    hook_msg.headers = &hook_headers;
    hook_msg.meta = &hook_meta;
  }
  auto reply_info = [](const eventlog::LogRecord& r) {
    return policy::ReplyInfo{r.code, r.enhanced, r.text, r.bounce_class};
  };
  // The deferred hook may choose the next retry (the earliest its handlers ask for).
  std::optional<policy::Duration> hook_delay;
  if (any_pending && hooks && hooks->has(policy::Event::Deferred)) {
    for (const auto& r : records) {
      if (std::string_view(r.event) != "transient_failure") continue;
      auto delay =
          co_await hooks->deferred(hook_msg, policy::make_address_info(r.recipient), reply_info(r));
      if (delay && (!hook_delay || *delay < *hook_delay)) hook_delay = delay;
    }
  }

  spool::WriteSet batch(*deps.store);
  bool closes_message = false;
  if (any_pending) {
    rec.attempts++;
    rec.next_attempt_ms =
        now + (hook_delay ? hook_delay->count() : policy.delay_after(rec.attempts, rng).count());
    batch.put_dest(item.id, d.name, rec);
  } else {
    batch.remove_dest(item.id, d.name);
    closes_message = item.ref && item.ref->open_dests.fetch_sub(1) == 1;
    if (closes_message) batch.remove_message(item.id, env.body_chunks);
  }
  // The bounce (if any) is stored in the same batch as the failed state, so a
  // crash can neither lose nor double it; it waits under kSubmitPending for
  // the submission stage to route it (route and message hooks apply to DSNs).
  std::optional<submit::Submitter::Generated> dsn;
  if (!reports.empty() && dsn::may_send_dsn(env.sender)) {
    const auto dsn_id = ids.next();
    dsn::DsnInput in;
    in.reporting_mta = cfg.hostname;
    in.message_id_domain = cfg.hostname;
    in.original_sender = env.sender;
    in.envid = env.envid;
    in.ret = static_cast<smtp::Ret>(env.ret);
    in.smtputf8 = env.smtputf8;
    in.arrival_ms = received;
    in.dsn_id = dsn_id.hex();
    in.recipients = std::move(reports);
    in.original_message = msg->body;
    in.now_ms = now;
    std::string body = dsn::build(in);
    spool::Envelope denv;
    denv.sender = "";
    denv.recipients.push_back({env.sender, 0, ""});
    denv.smtputf8 = dsn::is_global(in);
    denv.body_type = static_cast<std::uint8_t>(smtp::BodyType::EightBitMime);
    denv.size = body.size();
    denv.received_ms = now;
    denv.helo = cfg.hostname;
    denv.body_chunks = 1;
    spool::DestRecord drec;
    drec.recipients.push_back({0, spool::RcptState::Pending, {}});
    drec.next_attempt_ms = now;
    drec.size = body.size();
    batch.put_body_chunk(dsn_id, 0, body);
    batch.put_envelope(dsn_id, denv);
    batch.put_dest(dsn_id, spool::kSubmitPending, drec);
    dsn = submit::Submitter::Generated{dsn_id, std::move(denv), std::move(body), true};
  }
  std::error_code ec;
  co_await deps.writer->async_write(std::move(batch), true,
                                    asio::redirect_error(use_awaitable, ec));
  if (ec) {
    // Nothing was recorded: try the whole attempt again later.
    if (closes_message) item.ref->open_dests.fetch_add(1);
    spdlog::error("{}: cannot record delivery results of {}: {}", d.name, item.id.hex(),
                  ec.message());
    co_await on(owner, [&] {
      owner.shard->retry_later(d, std::move(item), now + cfg.delivery.retry.first.count());
    });
    co_return;
  }
  if (hooks && (hooks->has(policy::Event::Delivered) || hooks->has(policy::Event::Bounced))) {
    for (const auto& r : records) {
      const std::string_view event = r.event;
      const auto rcpt = policy::make_address_info(r.recipient);
      if (event == "delivery") {
        co_await hooks->delivered(hook_msg, rcpt, reply_info(r));
      } else if (event == "bounce" || event == "expiration") {
        co_await hooks->bounced(hook_msg, rcpt, reply_info(r));
      }
    }
  }
  const auto label = labels->index(d.name);
  for (const auto& r : records) {
    metrics::Outcome o = metrics::Outcome::TransientFailure;
    if (!metrics::parse_outcome(r.event, o)) continue;
    outcome_counts.add(o, label);
    if (o != metrics::Outcome::TransientFailure)
      queue_delay_seconds.observe(static_cast<double>(now - received) / 1000.0);
  }
  for (auto& r : records) {
    if (std::string_view(r.event) == "delivery")
      delivered.fetch_add(1, std::memory_order_relaxed);
    else if (std::string_view(r.event) == "transient_failure")
      deferred.fetch_add(1, std::memory_order_relaxed);
    else if (std::string_view(r.event) == "expiration")
      expired.fetch_add(1, std::memory_order_relaxed);
    else
      bounced.fetch_add(1, std::memory_order_relaxed);
    deps.log->write(index, std::move(r));
  }
  if (dsn) {
    dsns.fetch_add(1, std::memory_order_relaxed);
    deps.submitters[index]->submit_generated(std::move(*dsn));
  }
  if (any_pending) {
    item.attempts = rec.attempts;
    co_await on(owner, [&] { owner.shard->retry_later(d, std::move(item), rec.next_attempt_ms); });
  } else {
    co_await on(owner, [&] { owner.shard->finished(d); });
  }
}

}  // namespace mailgate::delivery
