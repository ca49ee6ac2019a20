// spool/recovery: rebuilds the in-memory queue index from the spool in the
// background after the listeners are open. The index is compact: per `dest`
// record only (id, destination, next attempt, size); envelopes are read when
// an attempt starts. It also deletes orphaned body chunks (a crash during a
// large message leaves chunks without an envelope), and moves queue records
// it cannot read to the spool's `quarantine` family (see recovery.cpp).
// Promises: never blocks a worker; progress is observable at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace mailgate::spool {

class Store;

struct IndexEntry {
  MessageId id;
  std::uint32_t destination;           // index into RecoveredIndex::destinations
  std::optional<smtp::TlsMode> tls{};  // (fits in the padding after `destination`)
  // Index into RecoveredIndex::tenancies and ::pools (0: neither), in the
  // rest of the padding; kTenancyOverflow: see RecoveredIndex::tenancy_overflow.
  std::uint16_t tenancy = 0;
  std::int64_t next_attempt_ms;
  std::uint64_t size;
};
inline constexpr std::uint16_t kTenancyOverflow = 0xffff;

struct RecoveredIndex {
  std::vector<std::string> destinations;  // interned destination names
  // Per destination (same index): the smarthost AUTH credentials of its
  // newest record that has some, or null. A destination with credentials is
  // named "user@[host]:port", so its records normally all carry the same
  // ones; after a password change the newest wins, as it does live.
  std::vector<std::shared_ptr<const RouteAuth>> destination_auth;
  // Interned tenancies of the records (index 0 is null: no tenancy).
  std::vector<std::shared_ptr<const tenancy::Tenancy>> tenancies{nullptr};
  std::vector<IndexEntry> entries;
  // Entries whose tenancy index does not fit 16 bits (more than 65,534
  // distinct tenant/campaign/priority triples): entry position → index.
  std::unordered_map<std::size_t, std::uint32_t> tenancy_overflow;
  // Parallel to tenancies: the egress pool of the records with that index
  // (DestRecord::pool, "" = the default). A (tenancy, pool) pair is interned
  // as one index, so the entry stays 40 bytes.
  std::vector<std::string> pools{""};
  std::uint32_t tenancy_index(std::size_t entry) const {
    const auto t = entries[entry].tenancy;
    return t == kTenancyOverflow ? tenancy_overflow.at(entry) : t;
  }
  const std::shared_ptr<const tenancy::Tenancy>& tenancy_of(std::size_t entry) const {
    return tenancies.at(tenancy_index(entry));
  }
  const std::string& pool_of(std::size_t entry) const { return pools.at(tenancy_index(entry)); }
};

class Recovery {
 public:
  explicit Recovery(Store& store);
  ~Recovery();  // cancels a scan still running, then joins

  // Optional, before start(): the counter start of the running process (from
  // Store::reserve_counter_floor). Ids with counter >= it belong to this run:
  // they are neither indexed (the live queue has them) nor ever treated as
  // orphans (a session may be writing a large body before its envelope).
  // Without it only the scan's snapshot protects such in-flight messages.
  void set_live_counter_start(std::uint64_t counter) { live_counter_start_ = counter; }

  // Starts the background scan. `on_done` runs on the recovery thread.
  void start(std::function<void(const RecoveredIndex&)> on_done = {});
  void join();

  bool done() const { return done_.load(); }
  std::uint64_t records() const { return records_.load(); }    // dest records indexed
  std::uint64_t messages() const { return messages_.load(); }  // distinct message ids
  // Orphaned messages (ids) whose body chunks were deleted.
  std::uint64_t orphans_removed() const { return orphans_.load(); }
  std::uint64_t skipped() const { return skipped_.load(); }  // undecodable dest records
  // Of those, moved to quarantine by this scan (all of them unless a write failed).
  std::uint64_t quarantined() const { return quarantined_.load(); }
  std::uint64_t estimated_total() const { return estimate_.load(); }
  double seconds() const;                                 // time taken (so far, or total once done)
  const RecoveredIndex& index() const { return index_; }  // valid once done()
  std::string error() const;  // "" if none; notes on skipped records too

 private:
  void run();
  Store& store_;
  RecoveredIndex index_;
  std::atomic<bool> done_{false};
  std::atomic<std::uint64_t> records_{0}, messages_{0}, orphans_{0}, estimate_{0}, skipped_{0},
      quarantined_{0};
  std::atomic<bool> cancel_{false};
  std::uint64_t live_counter_start_ = UINT64_MAX;
  std::atomic<std::int64_t> start_ns_{0}, end_ns_{0};
  mutable std::mutex mu_;
  std::string error_;
  std::function<void(const RecoveredIndex&)> on_done_;
  std::thread thread_;
};

}  // namespace mailgate::spool
