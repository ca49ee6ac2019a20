// webhooks/webhooks: durable, signed, batched delivery of delivery-log
// events to HTTP endpoints (DESIGN §6b "Webhooks"). Producers (submit,
// delivery, the SMTP dialogue) stage their events into the spool write that
// commits the state change they report; once that write is synced the
// events join their targets' queues. One sender thread (an io_context of
// its own, off every worker) batches and POSTs them through the program's
// HTTP client, one POST in flight per target (so a target sees its events
// in the order they were produced), retries with backoff until max_age,
// and keeps what it cannot deliver as dead letters in the spool.
// Promises:
// - An event staged in a commit that succeeded is in the spool family
//   `webhook` (synced with that commit) until its target acknowledges it
//   (any 2xx) or it becomes a dead letter: a restart or crash loses none;
//   a crash may send the batch in flight again (at least once).
// - Per target, events of one message are POSTed in the order they were
//   produced (one POST in flight; retries keep the batch at the front).
// - Events without a commit of their own (rejection, connection-level
//   transient_failure, discards of generated messages) ride unsynced in
//   the spool writer's next round: at most once.
// - A target's backlog is bounded by webhooks.max_backlog bytes: beyond,
//   new events go straight to its dead letters (counted). Producers never
//   wait for a target: posting never slows SMTP acceptance.
// - 2xx acks; 408/429/5xx/timeouts/no answer retry (backoff with jitter,
//   capped at retry_max) until the event is older than max_age, then dead;
//   any other answer dead-letters the batch at once.
// - replay(NAME) requeues every dead letter of NAME behind its queue.
// - The secret is used to sign and never appears in logs, status or errors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "webhooks/webhooks_config.hpp"

namespace mailgate::spool {
class Store;
class SpoolWriter;
class WriteSet;
}  // namespace mailgate::spool
namespace mailgate::httpclient {
class Client;
}
namespace mailgate::eventlog {
struct LogRecord;
}
namespace mailgate::metrics {
class Exposition;
}

namespace mailgate::webhooks {

// Rows a producer added to its commit; hand back to committed() or abandoned().
class Staged {
 public:
  bool empty() const { return rows_.empty(); }

 private:
  friend class Webhooks;
  struct Row {
    std::size_t target;
    std::uint64_t seq;
    std::int64_t queued_ms;
    bool dead;  // the backlog was full: written as a dead letter
    std::string json;
  };
  std::vector<Row> rows_;
};

struct TargetStatus {
  std::string name, url;
  std::vector<std::string> events;  // empty: all
  std::uint64_t backlog_events = 0, backlog_bytes = 0, max_backlog_bytes = 0;
  std::uint64_t dead_letters = 0;                            // kept in the spool now
  std::uint64_t queued = 0, sent = 0, failed = 0, dead = 0;  // totals of this run
  std::uint64_t consecutive_failures = 0;
  bool in_flight = false;
  std::string last_error;
  std::int64_t last_error_ms = 0, last_success_ms = 0;
};

struct DeadLetter {
  std::uint64_t seq = 0;
  std::int64_t queued_ms = 0;
  std::string reason;
  std::string json;  // the event
};

class Webhooks {
 public:
  struct Deps {
    const WebhooksConfig* config = nullptr;
    spool::Store* store = nullptr;
    spool::SpoolWriter* writer = nullptr;
    httpclient::Client* http = nullptr;  // must be destroyed before this object
  };
  explicit Webhooks(Deps deps);
  ~Webhooks();  // stop()
  Webhooks(const Webhooks&) = delete;
  Webhooks& operator=(const Webhooks&) = delete;

  // Loads the queued rows and dead-letter counts from the spool (blocking:
  // before the workers take mail), then starts the sender thread. "" or why not.
  std::string start();
  // Stops sending: waits up to 2 s for the POSTs in flight (so their
  // acknowledgements are recorded), then joins. Events stay in the spool.
  void stop();

  bool enabled() const;  // any target configured

  // Thread-safe. Adds a row to `set` for each (record, target) whose target
  // wants the record's event.
  Staged stage(spool::WriteSet& set, std::span<const eventlog::LogRecord> records);
  // Thread-safe. After the write holding `staged` was synced: queue its rows.
  void committed(Staged&& staged);
  // Thread-safe. The write failed: nothing of `staged` exists.
  void abandoned(Staged&& staged);
  // Thread-safe. An event without a commit of its own (at most once).
  void publish_uncommitted(const eventlog::LogRecord& record);

  std::vector<TargetStatus> status() const;
  // Dead letters of `name` (at most `limit`, oldest first); nullopt: no such target.
  // Blocking spool read: not on a worker.
  std::optional<std::vector<DeadLetter>> dead_letters(const std::string& name,
                                                      std::size_t limit) const;
  // Requeues every dead letter of `name` (blocking: a synced spool write);
  // the number requeued, or nullopt with `error` ("no such target", a spool error).
  std::optional<std::uint64_t> replay(const std::string& name, std::string& error);

  void export_metrics(metrics::Exposition& e) const;  // webhook_metrics.cpp

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailgate::webhooks
