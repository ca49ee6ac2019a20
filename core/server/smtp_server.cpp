// server/smtp_server: listeners (one SO_REUSEPORT acceptor per worker per
// address), accept loops, per-worker session state, and graceful drain.
#include "server/smtp_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <thread>

#include "net/endpoint.hpp"
#include "net/worker_pool.hpp"
#include "server/connection_gate.hpp"
#include "server/session.hpp"

namespace mailgate::server {

using asio::ip::tcp;

struct SmtpServer::Impl {
  const settings::GatewayConfig& config;
  net::WorkerPool& workers;
  std::vector<std::unique_ptr<WorkerState>> states;
  // acceptors[worker][listener]
  std::vector<std::vector<std::unique_ptr<tcp::acceptor>>> acceptors;
  std::vector<tcp::endpoint> bound;
  const std::vector<ListenerConfig>& listeners;
  ConnectionGate gate;
  tls::ServerContexts tls;
  AuthThrottle auth_throttle;

  Impl(const settings::GatewayConfig& c, net::WorkerPool& w)
      : config(c),
        workers(w),
        listeners(c.listeners),
        gate(c.listeners),
        tls(certificate_files(c)) {}

  static std::vector<tls::CertificateFiles> certificate_files(const settings::GatewayConfig& c) {
    std::vector<tls::CertificateFiles> out;
    for (const auto& l : c.listeners) {
      if (l.starttls || l.implicit_tls) {
        out.push_back({l.tls.cert, l.tls.key, l.tls.self_signed ? c.hostname : ""});
      } else {
        out.emplace_back();
      }
    }
    return out;
  }
};

namespace {

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, WorkerState& state,
                                  const ListenerConfig& listener, std::size_t index,
                                  ConnectionGate& gate) {
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
    session->admit(gate, index);
    asio::co_spawn(
        ex, [session]() { return session->run(); }, asio::detached);
  }
}

}  // namespace

SmtpServer::SmtpServer(const settings::GatewayConfig& config, net::WorkerPool& workers,
                       spool::Store& store, spool::SpoolWriter& writer)
    : impl_(std::make_unique<Impl>(config, workers)) {
  for (unsigned i = 0; i < workers.size(); ++i) {
    auto st = std::make_unique<WorkerState>();
    st->index = i;
    st->config = &config;
    st->writer = &writer;
    st->store = &store;
    st->tls = &impl_->tls;
    st->auth_throttle = &impl_->auth_throttle;
    impl_->states.push_back(std::move(st));
  }
  impl_->acceptors.resize(workers.size());
}

SmtpServer::~SmtpServer() = default;

std::string SmtpServer::reload_certificates() { return impl_->tls.reload(); }

std::string SmtpServer::bind() {
  auto& im = *impl_;
  if (auto e = im.tls.reload(); !e.empty()) return e;
  for (const auto& lc : im.listeners) {
    auto ep = net::parse_endpoint(lc.address);
    if (!ep) return fmt::format("listen address '{}' is not host:port", lc.address);
    if (ep->port() != 0) {
      if (auto ec = net::check_port_free(im.workers.context(0), *ep)) {
        return fmt::format("cannot listen on {}: {}", lc.address,
                           net::describe_listen_error(ec, *ep));
      }
    }
    for (unsigned w = 0; w < im.workers.size(); ++w) {
      std::error_code ec;
      auto acc =
          std::make_unique<tcp::acceptor>(net::open_listener(im.workers.context(w), *ep, ec));
      if (ec) {
        return fmt::format("cannot listen on {}: {}", lc.address,
                           net::describe_listen_error(ec, *ep));
      }
      // Port 0: the first worker's bind picks the port, the others share it.
      if (w == 0) ep = acc->local_endpoint();
      im.acceptors[w].push_back(std::move(acc));
    }
    im.bound.push_back(*ep);
  }
  return {};
}

void SmtpServer::serve() {
  auto& im = *impl_;
  for (unsigned w = 0; w < im.workers.size(); ++w) {
    for (std::size_t l = 0; l < im.listeners.size(); ++l) {
      asio::co_spawn(im.workers.context(w),
                     accept_loop(*im.acceptors[w][l], *im.states[w], im.listeners[l], l, im.gate),
                     asio::detached);
    }
  }
}

void SmtpServer::set_policy(policy::PolicyRuntime* policy) {
  for (auto& st : impl_->states) st->policy = policy;
}

void SmtpServer::set_submitters(const std::vector<submit::Submitter*>& submitters) {
  for (std::size_t i = 0; i < impl_->states.size(); ++i)
    impl_->states[i]->submitter = submitters[i];
}

void SmtpServer::set_delivery_log(eventlog::DeliveryLog* log) {
  for (auto& st : impl_->states) st->log = log;
}

void SmtpServer::set_webhooks(webhooks::Webhooks* webhooks) {
  for (auto& st : impl_->states) st->webhooks = webhooks;
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
    std::vector<Session*> sessions;
    for (auto* s = st.sessions; s; s = s->next_in_worker()) sessions.push_back(s);
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
