// server/smtp_server: listeners (one SO_REUSEPORT acceptor per worker per
// address), accept loops, per-worker session state, and graceful drain.
#include "server/smtp_server.hpp"

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <thread>

#include "net/cidr.hpp"
#include "net/endpoint.hpp"
#include "net/worker_pool.hpp"
#include "server/session.hpp"

namespace mailgate::server {

using asio::ip::tcp;

struct SmtpServer::Impl {
  const policy::Config& config;
  net::WorkerPool& workers;
  std::vector<std::unique_ptr<WorkerState>> states;
  // acceptors[worker][listener]
  std::vector<std::vector<std::unique_ptr<tcp::acceptor>>> acceptors;
  std::vector<tcp::endpoint> bound;
  // The configured listeners and, last, the internal one for HTTP inject.
  std::vector<policy::ListenerConfig> listeners;
  tcp::endpoint inject_bound;
  std::string inject_secret;

  Impl(const policy::Config& c, net::WorkerPool& w) : config(c), workers(w) {}
};

namespace {

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, WorkerState& state,
                                  const policy::ListenerConfig& listener) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer backoff(ex);
  for (;;) {
    std::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open() || state.draining) co_return;
      // EMFILE/ENFILE/ENOBUFS: pause instead of spinning; connections wait in the backlog.
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    auto session = std::make_shared<Session>(std::move(socket), state, listener);
    asio::co_spawn(
        ex, [session]() { return session->run(); }, asio::detached);
  }
}

}  // namespace

SmtpServer::SmtpServer(const policy::Config& config, net::WorkerPool& workers, spool::Store& store,
                       spool::SpoolWriter& writer, std::uint64_t id_counter_start)
    : impl_(std::make_unique<Impl>(config, workers)) {
  for (unsigned i = 0; i < workers.size(); ++i) {
    auto st = std::make_unique<WorkerState>();
    st->index = i;
    st->config = &config;
    st->writer = &writer;
    st->store = &store;
    st->ids = spool::IdGenerator(static_cast<std::uint16_t>(i), id_counter_start);
    impl_->states.push_back(std::move(st));
  }
  impl_->acceptors.resize(workers.size());
  // The internal listener takes the largest limits among the configured ones:
  // an injected message gets no looser limit than some SMTP client has.
  auto& lis = impl_->listeners;
  lis = config.listeners;
  policy::ListenerConfig internal;
  internal.address = "127.0.0.1:0";
  internal.internal = true;
  internal.relay_networks = {*net::Cidr::parse("127.0.0.0/8")};
  internal.max_message_size = 0;
  internal.max_recipients = 0;
  for (const auto& l : config.listeners) {
    internal.max_message_size = std::max(internal.max_message_size, l.max_message_size);
    internal.max_recipients = std::max(internal.max_recipients, l.max_recipients);
  }
  lis.push_back(internal);
  // A per-process secret: only this process's HTTP inject may use XMAILGATE.
  std::random_device rd;
  impl_->inject_secret = fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
  for (auto& st : impl_->states) st->inject_secret = &impl_->inject_secret;
}

SmtpServer::~SmtpServer() = default;

std::string SmtpServer::bind() {
  auto& im = *impl_;
  for (const auto& lc : im.listeners) {
    auto ep = net::parse_endpoint(lc.address);
    if (!ep) return fmt::format("listen address '{}' is not host:port", lc.address);
    for (unsigned w = 0; w < im.workers.size(); ++w) {
      std::error_code ec;
      auto acc =
          std::make_unique<tcp::acceptor>(net::open_listener(im.workers.context(w), *ep, ec));
      if (ec) return fmt::format("cannot listen on {}: {}", lc.address, ec.message());
      // Port 0: the first worker's bind picks the port, the others share it.
      if (w == 0) ep = acc->local_endpoint();
      im.acceptors[w].push_back(std::move(acc));
    }
    (lc.internal ? im.inject_bound : im.bound.emplace_back()) = *ep;
  }
  return {};
}

void SmtpServer::serve() {
  auto& im = *impl_;
  for (unsigned w = 0; w < im.workers.size(); ++w) {
    for (std::size_t l = 0; l < im.listeners.size(); ++l) {
      asio::co_spawn(im.workers.context(w),
                     accept_loop(*im.acceptors[w][l], *im.states[w], im.listeners[l]),
                     asio::detached);
    }
  }
}

asio::ip::tcp::endpoint SmtpServer::inject_endpoint() const { return impl_->inject_bound; }
const std::string& SmtpServer::inject_secret() const { return impl_->inject_secret; }

void SmtpServer::set_metrics_labels(const metrics::DestinationLabels* labels) {
  for (auto& st : impl_->states) {
    st->labels = labels;
    st->outcomes = std::make_unique<metrics::OutcomeCounters>(labels->size());
  }
}

std::vector<std::uint64_t> SmtpServer::discards() const {
  std::vector<std::uint64_t> out;
  for (const auto& st : impl_->states) {
    if (!st->outcomes) continue;
    out.resize(st->outcomes->labels(), 0);
    for (std::size_t l = 0; l < out.size(); ++l)
      out[l] += st->outcomes->get(metrics::Outcome::Discard, l);
  }
  return out;
}

void SmtpServer::set_policy(policy::PolicyRuntime* policy) {
  for (auto& st : impl_->states) st->policy = policy;
}

void SmtpServer::set_on_accepted(AcceptedFn fn) {
  for (auto& st : impl_->states) st->on_accepted = fn;
}

void SmtpServer::set_delivery_log(eventlog::DeliveryLog* log) {
  for (auto& st : impl_->states) st->log = log;
}

std::vector<tcp::endpoint> SmtpServer::endpoints() const { return impl_->bound; }

std::size_t SmtpServer::drain(std::chrono::milliseconds deadline) {
  auto& im = *impl_;
  im.workers.run_on_all([&im](unsigned w) {
    auto& st = *im.states[w];
    st.draining = true;
    for (auto& acc : im.acceptors[w]) {
      std::error_code ec;
      acc->close(ec);
    }
    // Copy: request_drain may end a session, which erases itself from the set.
    std::vector<Session*> sessions(st.sessions.begin(), st.sessions.end());
    for (auto* s : sessions) s->request_drain();
  });
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (active_sessions() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return active_sessions();
}

void SmtpServer::shutdown() {
  for (auto& per_worker : impl_->acceptors) per_worker.clear();
}

void SmtpServer::totals(ServerStats& out) const {
  for (const auto& st : impl_->states) out.add(st->stats);
}

std::size_t SmtpServer::active_sessions() const {
  std::size_t n = 0;
  for (const auto& st : impl_->states)
    n += st->stats.sessions_active.load(std::memory_order_relaxed);
  return n;
}

}  // namespace mailgate::server
