// delivery/delivery_engine: turns queued messages into delivery attempts.
// Each destination has an owner worker (hash of its name) whose QueueShard
// holds its messages; connections for it run on that worker: resolve the MX
// (dns::Resolver of the worker), connect in preference order (next MX on
// connection failure or a non-2xx greeting), run transactions, reuse the
// connection for up to max_messages_per_connection messages.
// Promises: a recipient's result is persisted (one synced WriteBatch with
// the bounce DSN, if any) before the message moves on, so a restart never
// re-sends to a recipient already delivered; the batch that closes a
// message's last destination also deletes its body and envelope; a message
// whose sender is <> is never bounced; connection-level failures defer the
// whole destination without counting attempts.
#pragma once

#include <asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace mailgate::policy {
struct Config;
}
namespace mailgate::net {
class WorkerPool;
}
namespace mailgate::spool {
class Store;
class SpoolWriter;
class SpoolReader;
struct RecoveredIndex;
}  // namespace mailgate::spool
namespace mailgate::eventlog {
class DeliveryLog;
}
namespace mailgate::policy {
class PolicyRuntime;
}

namespace mailgate::delivery {

struct EngineDeps {
  const policy::Config* config = nullptr;
  net::WorkerPool* workers = nullptr;
  spool::Store* store = nullptr;
  spool::SpoolWriter* writer = nullptr;
  spool::SpoolReader* reader = nullptr;
  eventlog::DeliveryLog* log = nullptr;
  policy::PolicyRuntime* policy = nullptr;  // egress_path, delivered/deferred/bounced (may be null)
  std::vector<asio::ip::tcp::endpoint> own_endpoints;  // mail-loop detection
  std::uint64_t id_counter_start = 0;                  // for DSN message ids
};

struct DeliveryStats {
  std::uint64_t delivered = 0, deferred = 0, bounced = 0, expired = 0, dsns = 0, connections = 0;
};

class DeliveryEngine {
 public:
  explicit DeliveryEngine(EngineDeps deps);
  ~DeliveryEngine();

  // Creates each worker's queue and resolver (on that worker). Returns "" or an error.
  std::string start();
  // Thread-safe: a message was committed; hand each destination to its owner.
  void enqueue(const spool::MessageId& id, const std::vector<spool::QueuedDest>& destinations,
               std::uint64_t size);
  // Thread-safe: messages found by recovery.
  void enqueue_recovered(const spool::RecoveredIndex& index);
  // Stops the queues (in-flight attempts finish or are abandoned when the
  // workers stop; their messages stay in the spool).
  void stop();
  // After the workers' threads stopped, before their io_contexts are
  // destroyed: frees the I/O objects the engine owns on each worker.
  void release_io();

  unsigned owner(const std::string& destination) const;
  DeliveryStats stats() const;

  struct Worker;  // per-worker state (delivery_engine.cpp)

 private:
  EngineDeps deps_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> all_;
};

}  // namespace mailgate::delivery
