// spool/recovery: rebuilds the in-memory queue index from the spool in the
// background after the listeners are open. The index is compact: per `dest`
// record only (id, destination, next attempt, size); envelopes are read when
// an attempt starts. It also deletes orphaned body chunks (a crash during a
// large message leaves chunks without an envelope).
// Promises: never blocks a worker; progress is observable at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "spool/message_id.hpp"

namespace mailgate::spool {

class Store;

struct IndexEntry {
  MessageId id;
  std::uint32_t destination;  // index into RecoveredIndex::destinations
  std::int64_t next_attempt_ms;
  std::uint64_t size;
};

struct RecoveredIndex {
  std::vector<std::string> destinations;  // interned destination names
  std::vector<IndexEntry> entries;
};

class Recovery {
 public:
  explicit Recovery(Store& store);
  ~Recovery();  // joins

  // Starts the background scan. `on_done` runs on the recovery thread.
  void start(std::function<void(const RecoveredIndex&)> on_done = {});
  void join();

  bool done() const { return done_.load(); }
  std::uint64_t records() const { return records_.load(); }       // dest records indexed
  std::uint64_t messages() const { return messages_.load(); }     // distinct message ids
  std::uint64_t orphans_removed() const { return orphans_.load(); }
  std::uint64_t estimated_total() const { return estimate_.load(); }
  double seconds() const;  // time taken (so far, or total once done)
  const RecoveredIndex& index() const { return index_; }  // valid once done()
  std::string error() const;

 private:
  void run();
  Store& store_;
  RecoveredIndex index_;
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> records_{0}, messages_{0}, orphans_{0}, estimate_{0};
  std::atomic<std::int64_t> start_ns_{0}, end_ns_{0};
  mutable std::mutex mu_;
  std::string error_;
  std::function<void(const RecoveredIndex&)> on_done_;
  std::thread thread_;
};

}  // namespace mailgate::spool
