// delivery/delivery_attempt: the coroutines of a delivery connection, on the
// worker that runs it: resolve the destination (MX, or a literal / smarthost
// route), open a connection (next target on a connection failure or a
// non-2xx greeting), take the destination's messages from its owner and run
// one attempt (SMTP transaction) per message, reusing the connection for up
// to max_messages_per_connection of them; settle.cpp records the results.
// Promises: the destination and its owner's shard are touched only through
// on(); connection-level failures (no target accepted) defer the whole
// destination without counting attempts; a destination whose route fails
// permanently (5xx: no domain, mail loop) has its waiting messages failed.
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/experimental/as_tuple.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <optional>

#include "delivery/delivery_worker.hpp"
#include "settings/gateway_config.hpp"

namespace mailgate::delivery {

using asio::use_awaitable;

namespace {

// How long an idle outbound connection waits for more mail before QUIT.
constexpr std::chrono::seconds kIdleReuse{2};

ClientTimeouts client_timeouts(const ClientTimeoutConfig& c) {
  return ClientTimeouts{c.connect, c.greeting, c.command, c.data_init, c.data_block, c.data_end};
}

bool is_loop(const asio::ip::tcp::endpoint& ep, const std::vector<asio::ip::tcp::endpoint>& own) {
  for (const auto& o : own) {
    if (o.port() != ep.port()) continue;
    if (o.address() == ep.address()) return true;
    if (o.address().is_unspecified() && ep.address().is_loopback()) return true;
  }
  return false;
}

}  // namespace

const smtp::Reply DeliveryEngine::Worker::kExpired{451, "4.4.7",
                                                   "message expired: delivery time limit reached"};

asio::awaitable<Route> DeliveryEngine::Worker::resolve(const std::string& name) {
  const std::string destination(delivery_target(name));
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
      for (const auto& ip : a.addresses) route.targets.push_back({host, {ip, port}, a.authentic});
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
      // RFC 7672 §2.2: DANE needs both the MX and the address answer secure.
      const bool dnssec = mx.authentic && a.authentic;
      for (const auto& addr : a.addresses)
        route.targets.push_back({host.name, {addr, port}, dnssec});
    }
    if (route.targets.empty()) {
      route.failure =
          temp ? smtp::Reply{451, "4.4.3", "cannot resolve the MX hosts of " + destination}
               : smtp::Reply{550, "5.4.4", "no address for any MX host of " + destination};
      co_return route;
    }
    if (mta_sts) co_await apply_mta_sts(destination, route);
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

asio::awaitable<void> DeliveryEngine::Worker::connection(DestinationLink dest) {
  struct Closed {  // counts the connection as ended on every way out
    std::atomic<std::uint64_t>& n;
    ~Closed() { n.fetch_add(1, std::memory_order_relaxed); }
  } closed{connections_closed};
  const auto& cfg = *deps.config;
  const auto& name = dest.name();
  spdlog::debug("{}: new connection on worker {} (owner {})", name, index, dest.owner_index());
  auto route = co_await resolve(name);
  spdlog::debug("{}: {} targets, failure {} {}", name, route.targets.size(), route.failure.code,
                route.failure.text);
  if (route.failure.code >= 500) {
    while (auto item = co_await on(dest, [](auto& q, auto& d) { return q.take(d); }))
      co_await fail_item(dest, std::move(*item), route.failure);
    co_await on(dest, [](auto& q, auto& d) { q.connection_closed(d); });
    co_return;
  }
  // The destination's shaping as of now (it lives on the owner's thread).
  auto settings = co_await on(dest, [&cfg](const auto&, const queue::Destination& d) {
    return settings_of(d, cfg.delivery.tls, cfg.hostname);
  });
  // RFC 8461 §4.2: under an enforced MTA-STS policy the MX certificate must
  // verify, whatever the destination's own mode; mode dane stays, and
  // open_client() makes each MX host DANE where DANE applies (RFC 8461 §2:
  // it takes precedence) and verify elsewhere (dane.hpp, session_mode).
  if (route.sts && route.sts->mode == mtasts::Mode::Enforce && settings.tls != smtp::TlsMode::Dane)
    settings.tls = smtp::TlsMode::Verify;
  auto opened = co_await open_client(name, route, settings);
  if (!opened.client) {
    co_await defer_destination(dest, opened.last, opened.tls_failure);
    co_return;
  }
  auto& client = *opened.client;
  (client.tls() ? opened_tls : opened_plain).fetch_add(1, std::memory_order_relaxed);
  for (unsigned sent = 0; sent < settings.max_messages && client.usable(); ++sent) {
    auto item = co_await next_item(dest, sent > 0);
    if (!item) break;
    co_await attempt(dest, std::move(*item), client);
  }
  co_await client.quit();
  co_await on(dest, [](auto& q, auto& d) { q.connection_closed(d); });
}

asio::awaitable<OpenedClient> DeliveryEngine::Worker::open_client(
    const std::string& destination, const Route& route, const ConnectionSettings& settings) {
  OpenedClient out;
  out.last = route.failure;
  out.tls_failure = route.tls_failure;
  const bool sts_enforced = route.sts && route.sts->mode == mtasts::Mode::Enforce;
  const auto observer = shaping_observer(destination, settings);  // traffic shaping rules
  for (const auto& t : route.targets) {
    auto mode = settings.tls;
    DanePlan dane;
    if (mode == smtp::TlsMode::Dane) {
      dane = co_await plan_dane_for(t);
      if (dane.action == DanePlan::Action::Defer) {
        // No mail to a host whose TLSA records could not be learnt; the next may do.
        count_dane(dane.result);
        report_tls(destination, TlsPolicyType::Tlsa, TlsFailure::DnssecInvalid);
        out.last = {
            451, "4.7.5",
            fmt::format("{} ({} [{}])", dane.detail, t.host, t.endpoint.address().to_string())};
        out.tls_failure = TlsFailure::DnssecInvalid;
        continue;
      }
      mode = session_mode(dane, sts_enforced);
      if (mode != smtp::TlsMode::Dane) count_dane(dane.result);
    }
    out.client = std::make_unique<SmtpClient>(ctx.get_executor(), settings.ehlo_name,
                                              client_timeouts(deps.config->delivery.timeouts), mode,
                                              tls_context);
    if (mode == smtp::TlsMode::Dane) out.client->set_dane(std::move(dane.records));
    if (!settings.source_address.empty())
      out.client->set_source_address(asio::ip::make_address(settings.source_address));
    if (settings.auth) out.client->set_auth(settings.auth);
    if (observer) out.client->set_reply_observer(observer);
    out.last = co_await out.client->open(t.endpoint, t.host);
    out.tls_failure = out.client->tls_failure();
    if (mode == smtp::TlsMode::Dane) {
      // A session that never got to TLS (refused, no greeting) is no DANE outcome.
      if (out.tls_failure != TlsFailure::None)
        count_dane(DaneResult::Failed);
      else if (out.client->tls() && out.client->tls_verified())
        count_dane(DaneResult::Verified);
    }
    report_session(destination, route, mode, *out.client, out.last);
    if (out.last.code / 100 == 2) break;
    spdlog::debug("{}: {} answered {} {}", destination, t.endpoint.address().to_string(),
                  out.last.code, one_line(out.last));
    co_await out.client->quit();
    out.client.reset();
  }
  co_return out;
}

asio::awaitable<void> DeliveryEngine::Worker::defer_destination(const DestinationLink& dest,
                                                                const smtp::Reply& last,
                                                                TlsFailure tls_failure) {
  // Connection-level failure: the destination waits, its messages keep their attempts.
  const auto delay = deps.config->delivery.retry.first.count();
  // A smarthost that refused our AUTH (or offered none, or no TLS to send it
  // over) lands here too: `last` says why ("4.7.8 smarthost authentication
  // failed ..."), never with the password.
  spdlog::info("{}: no host accepted a connection ({} {} {}); deferring the destination for {} ms",
               dest.name(), last.code, last.enhanced, one_line(last), delay);
  auto to = listeners();
  publish_deferral(dest.name(), last, tls_failure, queue::now_ms(), to);
  co_await on(dest, [delay](auto& q, auto& d) {
    q.defer_destination(d, queue::now_ms() + delay);
    q.connection_closed(d);
  });
}

asio::awaitable<std::optional<queue::Item>> DeliveryEngine::Worker::next_item(
    const DestinationLink& dest, bool after_message) {
  for (;;) {
    auto idle = std::make_shared<asio::steady_timer>(ctx, kIdleReuse);
    bool linger = true;
    auto item = co_await on(dest, [&idle, &linger, after_message](auto& q, auto& d) {
      // Its slot is wanted by another node (fair hand-over of a cluster
      // limit): the connection ends after the message it just sent.
      if (after_message && !q.keep_connection(d)) {
        linger = false;
        return decltype(q.take(d)){};
      }
      auto it = q.take(d);
      if (!it) linger = q.may_linger(d);
      if (!it && linger) q.park(d, idle);
      return it;
    });
    if (item || !linger) co_return item;  // not lingering: a capped site slot goes back
    // Linger a little: mail often arrives in a trickle, and a new TCP +
    // EHLO per message is what connection reuse is meant to save.
    std::error_code ec;
    co_await idle->async_wait(asio::redirect_error(use_awaitable, ec));
    bool stopped = false;
    item = co_await on(dest, [&idle, &stopped](auto& q, auto& d) {
      q.unpark(d, idle);
      stopped = q.stopped();
      return q.take(d);
    });
    // Woken but another connection (or the rate limit) got there first:
    // keep lingering; only a full idle period without work closes.
    if (item || ec != asio::error::operation_aborted || stopped) co_return item;
  }
}

asio::awaitable<void> DeliveryEngine::Worker::attempt(const DestinationLink& dest, queue::Item item,
                                                      SmtpClient& client) {
  struct Timed {  // observes the attempt's duration on every way out
    metrics::Histogram& h;
    std::chrono::steady_clock::time_point t0;
    ~Timed() {
      h.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } timed{delivery_seconds, std::chrono::steady_clock::now()};
  if (retry.expired(static_cast<std::int64_t>(item.id.millis()), queue::now_ms())) {
    co_await fail_item(dest, std::move(item), kExpired);
    co_return;
  }
  // Named, then bound: g++ 12 mishandles a structured binding of a co_await result.
  std::tuple<std::error_code, std::shared_ptr<spool::LoadedMessage>> loaded =
      co_await deps.reader->async_load(item.id, dest.name(),
                                       asio::experimental::as_tuple(use_awaitable));
  auto& [ec, msg] = loaded;
  if (ec || !msg) {
    co_await unreadable(dest, std::move(item), ec);
    co_return;
  }
  std::vector<std::uint32_t> pending;
  for (const auto& r : msg->dest.recipients)
    if (r.state == spool::RcptState::Pending) pending.push_back(r.index);
  std::vector<RecipientReply> replies;
  // A large body is streamed from the spool chunk by chunk (delivery/body_source.hpp).
  BodySource body;
  if (msg->body_complete) {
    body.whole = &msg->body;
  } else {
    body.reader = deps.reader;
    body.id = item.id;
    body.chunks = msg->envelope.body_chunks;
  }
  if (!pending.empty() && verp.enabled() && !msg->envelope.sender.empty()) {
    // VERP: the return path names one recipient, so each recipient gets its
    // own transaction on this connection (a broken connection fails the
    // rest with 4.4.2 like any transaction on it). The null sender stays.
    const auto id = item.id.hex();
    for (auto i : pending) {
      const std::vector<std::uint32_t> one(1, i);
      std::optional<std::string> path = verp.address(id, msg->envelope.recipients[i].address);
      auto result = co_await client.send(msg->envelope, one, body, std::move(path));
      replies.push_back({i, result.recipients.at(0)});
    }
  } else if (!pending.empty()) {
    auto result = co_await client.send(msg->envelope, pending, body);
    for (std::size_t i = 0; i < pending.size(); ++i)
      replies.push_back({pending[i], result.recipients[i]});
  }
  co_await settle(dest, std::move(item), std::move(msg), std::move(replies), &client);
}

asio::awaitable<void> DeliveryEngine::Worker::unreadable(const DestinationLink& dest,
                                                         queue::Item item, std::error_code ec) {
  if (ec == std::errc::no_such_file_or_directory) {
    // Settled or bounced meanwhile (e.g. by the admin API): nothing to send.
    spdlog::debug("{}: message {} is no longer in the spool", dest.name(), item.id.hex());
    co_await on(dest, [](auto& q, auto& d) { q.finished(d); });
    co_return;
  }
  // The message is there but cannot be read now: it stays queued and is tried
  // again with the retry backoff (not counted as a delivery attempt).
  const auto delay = retry.delay_after(std::max<std::uint32_t>(item.attempts, 1), rng);
  const auto when = queue::now_ms() + delay.count();
  spdlog::error("{}: message {} cannot be read from the spool ({}); retrying in {}s", dest.name(),
                item.id.hex(), ec.message(), delay.count() / 1000.0);
  co_await on(dest, [&item, when](auto& q, auto& d) { q.retry_later(d, std::move(item), when); });
}

asio::awaitable<void> DeliveryEngine::Worker::fail_item(DestinationLink dest, queue::Item item,
                                                        smtp::Reply reply, FailedBy failed_by) {
  // Named, then bound: g++ 12 mishandles a structured binding of a co_await result.
  std::tuple<std::error_code, std::shared_ptr<spool::LoadedMessage>> loaded =
      co_await deps.reader->async_load(item.id, dest.name(),
                                       asio::experimental::as_tuple(use_awaitable));
  auto& [ec, msg] = loaded;
  if (ec || !msg) {
    co_await unreadable(dest, std::move(item), ec);
    co_return;
  }
  std::vector<RecipientReply> replies;
  for (const auto& r : msg->dest.recipients)
    if (r.state == spool::RcptState::Pending) replies.push_back({r.index, reply});
  co_await settle(dest, std::move(item), std::move(msg), std::move(replies), nullptr, failed_by);
}

}  // namespace mailgate::delivery
