// server/smtp_server: the inbound SMTP service. Opens every configured
// listener once per worker (SO_REUSEPORT, so the kernel spreads connections),
// runs one session coroutine per connection on the accepting worker, and
// drains gracefully. Promises: start() either listens on every address or
// returns an error; drain() stops accepting at once, lets transactions that
// are receiving data finish (their 250 still waits for the spool sync), tells
// idle sessions 421 and returns when no session is left or the deadline passes.
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "policy/config.hpp"
#include "server/server_stats.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"

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
namespace mailgate::policy {
class PolicyRuntime;
}
namespace mailgate::metrics {
class DestinationLabels;
}

namespace mailgate::server {

class SmtpServer {
 public:
  SmtpServer(const policy::Config& config, net::WorkerPool& workers, spool::Store& store,
             spool::SpoolWriter& writer, std::uint64_t id_counter_start);
  ~SmtpServer();

  using AcceptedFn =
      std::function<void(const spool::MessageId&,
                         const std::vector<spool::QueuedDest>& destinations, std::uint64_t size)>;
  // Before serve(): called on the worker after each committed message.
  void set_on_accepted(AcceptedFn fn);
  // Before serve(): where reception and rejection events are logged.
  void set_delivery_log(eventlog::DeliveryLog* log);
  // Before serve(): the Lua policy (null: no hooks).
  void set_policy(policy::PolicyRuntime* policy);
  // Before serve(): destination labels for the discard counters (see discards()).
  void set_metrics_labels(const metrics::DestinationLabels* labels);
  // Recipients discarded by the route hook, per destination label (any thread).
  std::vector<std::uint64_t> discards() const;

  // Binds every listener on every worker; returns "" or an error message.
  // Connections wait in the kernel's backlog until serve().
  std::string bind();
  // Starts accepting (sessions run from here on). After bind(); the setters
  // above must all be called before it.
  void serve();
  // Actual bound endpoints (port 0 resolved), one per configured listener.
  std::vector<asio::ip::tcp::endpoint> endpoints() const;
  // The loopback listener for HTTP inject (after start()) and the secret its
  // clients present with "XMAILGATE <secret> ADDR=<client ip>" to be treated
  // as an authenticated HTTP injection from that address.
  asio::ip::tcp::endpoint inject_endpoint() const;
  const std::string& inject_secret() const;

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
