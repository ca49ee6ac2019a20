// idempotency/idempotency_cache: the first answer to a request sent with an
// Idempotency-Key header (POST /api/v1/inject), kept for `ttl` (24 h) so a
// client that retries (a timeout, a lost connection) gets that answer back
// instead of a second injection. The answer is tied to a SHA-256 of the
// request body: the same key with another body is a mismatch, not a replay.
// Kept in memory (an LRU capped in entries and bytes) and, with a spool, in
// its default family (spool/idempotency_rows), written synced before the
// answer goes out: a restart or an LRU eviction forgets nothing younger
// than `ttl`. Expired rows are swept at most once an hour (on finish()).
// Thread-safe (CivetWeb's threads call it concurrently).
// Promises: between begin() → Run and finish()/abandon() the key is
// claimed: a concurrent request with it gets Running, never a second run;
// memory is bounded by max_entries / max_bytes (+ the claims in flight).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace mailgate::spool {
class Store;
class SpoolWriter;
}  // namespace mailgate::spool

namespace mailgate::idempotency {

struct Options {
  std::size_t max_entries = 10'000;
  std::size_t max_bytes = 64u << 20;
  std::chrono::milliseconds ttl = std::chrono::hours(24);
};

struct StoredResponse {
  int status = 0;
  std::string body;
};

class IdempotencyCache {
 public:
  // `store` and `writer` may be null: memory only.
  IdempotencyCache(spool::Store* store, spool::SpoolWriter* writer, Options options = {});

  // Why `key` is not acceptable as an Idempotency-Key (1–255 printable
  // ASCII characters), or nullopt.
  static std::optional<std::string> check_key(std::string_view key);

  enum class Claim { Run, Replay, Running, Mismatch };
  struct Begin {
    Claim claim = Claim::Run;
    StoredResponse response;  // Replay: the first answer
  };
  Begin begin(const std::string& key, std::string_view request_body);
  // After Run: keeps `response` as the answer for the key (synced to the
  // spool first when there is one) and releases the claim.
  void finish(const std::string& key, const StoredResponse& response);
  // After Run: releases the claim without keeping anything (the request
  // may be sent again and run).
  void abandon(const std::string& key);

  std::size_t entries() const;
  std::size_t bytes() const;

 private:
  struct Entry {
    std::string hash;  // SHA-256 of the request body
    std::int64_t created_ms = 0;
    StoredResponse response;
    std::list<std::string>::iterator lru;
  };
  std::optional<Entry> load(const std::string& key) const;  // from the spool
  void remember(const std::string& key, Entry entry);       // mu_ held
  void sweep(std::int64_t now_ms);

  spool::Store* store_;
  spool::SpoolWriter* writer_;
  Options options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // most recent first
  std::size_t bytes_ = 0;
  std::unordered_map<std::string, std::string> running_;  // key → body hash
  std::int64_t last_sweep_ms_ = 0;
};

}  // namespace mailgate::idempotency
