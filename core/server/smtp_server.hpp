// server/smtp_server: the inbound SMTP service. Opens every configured
// listener once per worker (SO_REUSEPORT, so the kernel spreads connections),
// runs each connection's session on the accepting worker, and
// drains gracefully. Promises: start() either listens on every address or
// returns an error; drain() stops accepting at once, lets transactions that
// are receiving data finish (their 250 still waits for the spool sync), tells
// idle sessions 421 and returns when no session is left or the deadline passes.
// TLS: each listener with starttls or implicit_tls gets its certificate (its
// own tls{} or the global one), reloaded on reload_certificates().
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "server/server_stats.hpp"
#include "settings/gateway_config.hpp"

namespace mailgate::net {
class WorkerPool;
}
namespace mailgate::spool {
class SpoolWriter;
class Store;
}  // namespace mailgate::spool
namespace mailgate::eventlog {
class DeliveryLog;
}  // namespace mailgate::eventlog
namespace mailgate::webhooks {
class Webhooks;
}
namespace mailgate::policy {
class PolicyRuntime;
}
namespace mailgate::submit {
class Submitter;
}

namespace mailgate::server {

class SmtpServer {
 public:
  SmtpServer(const settings::GatewayConfig& config, net::WorkerPool& workers, spool::Store& store,
             spool::SpoolWriter& writer);
  ~SmtpServer();

  // Before serve(): each worker's submission stage (index = worker), which
  // takes every finished message and hands out message ids.
  void set_submitters(const std::vector<submit::Submitter*>& submitters);
  // Before serve(): where rejection events are logged.
  void set_delivery_log(eventlog::DeliveryLog* log);
  void set_webhooks(webhooks::Webhooks* webhooks);
  // Before serve(): the Lua policy (null: no hooks).
  void set_policy(policy::PolicyRuntime* policy);

  // Loads every listener's certificate (STARTTLS / implicit TLS); "" or why
  // not. bind() does it first; SIGHUP and the reload API call it again (a
  // failure keeps the certificates in use).
  std::string reload_certificates();

  // Binds every listener on every worker; returns "" or an error message.
  // Connections wait in the kernel's backlog until serve().
  std::string bind();
  // Starts accepting (sessions run from here on). After bind(); the setters
  // above must all be called before it.
  void serve();
  // Actual bound endpoints (port 0 resolved), one per configured listener.
  std::vector<asio::ip::tcp::endpoint> endpoints() const;

  // Returns the number of sessions still open when the deadline passed.
  std::size_t drain(std::chrono::milliseconds deadline);

  // After the workers stopped: closes and destroys the acceptors (before the
  // worker io_contexts are destroyed).
  void shutdown();

  void totals(ServerStats& out) const;  // adds every worker's counters into out
  std::size_t active_sessions() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailgate::server
