// idempotency/idempotency_cache: see idempotency_cache.hpp. A row's value:
// version (1 byte, 1) | created ms (8, big-endian) | HTTP status (2) |
// body hash (32) | response body.
#include "idempotency/idempotency_cache.hpp"

#include <openssl/sha.h>

#include <future>
#include <system_error>
#include <vector>

#include "spool/idempotency_rows.hpp"
#include "spool/message_id.hpp"
#include "spool/spool_writer.hpp"
#include "spool/write_set.hpp"

namespace mailgate::idempotency {
namespace {

constexpr std::size_t kHashBytes = SHA256_DIGEST_LENGTH;
constexpr std::size_t kHeaderBytes = 1 + 8 + 2 + kHashBytes;
constexpr std::int64_t kSweepEveryMs = 3600 * 1000;

std::string sha256(std::string_view data) {
  unsigned char out[kHashBytes];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<const char*>(out), kHashBytes);
}

std::string encode(std::int64_t created_ms, int status, const std::string& hash,
                   std::string_view body) {
  std::string v;
  v.reserve(kHeaderBytes + body.size());
  v.push_back(1);
  for (int i = 7; i >= 0; --i) v.push_back(static_cast<char>(created_ms >> (8 * i)));
  v.push_back(static_cast<char>(status >> 8));
  v.push_back(static_cast<char>(status));
  v.append(hash);
  v.append(body);
  return v;
}

bool decode(std::string_view v, std::int64_t& created_ms, int& status, std::string& hash,
            std::string& body) {
  if (v.size() < kHeaderBytes || v[0] != 1) return false;
  std::uint64_t ms = 0;
  for (int i = 1; i <= 8; ++i) ms = (ms << 8) | static_cast<unsigned char>(v[i]);
  created_ms = static_cast<std::int64_t>(ms);
  status = (static_cast<unsigned char>(v[9]) << 8) | static_cast<unsigned char>(v[10]);
  hash = std::string(v.substr(11, kHashBytes));
  body = std::string(v.substr(kHeaderBytes));
  return true;
}

// Writes `set` synced and waits for it (on an HTTP thread, never a worker).
bool write_synced(spool::SpoolWriter& writer, spool::WriteSet set, bool sync) {
  std::promise<std::error_code> done;
  auto result = done.get_future();
  writer.submit(std::move(set), sync, [&done](std::error_code ec) { done.set_value(ec); });
  return !result.get();
}

}  // namespace

IdempotencyCache::IdempotencyCache(spool::Store* store, spool::SpoolWriter* writer, Options options)
    : store_(store), writer_(writer), options_(options) {}

std::optional<std::string> IdempotencyCache::check_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return "Idempotency-Key must be 1 to 255 characters long";
  for (const char c : key)
    if (c < 0x20 || c > 0x7E) return "Idempotency-Key must be printable ASCII";
  return std::nullopt;
}

std::optional<IdempotencyCache::Entry> IdempotencyCache::load(const std::string& key) const {
  if (store_ == nullptr) return std::nullopt;
  const auto row = spool::read_idempotency_row(*store_, key);
  if (!row) return std::nullopt;
  Entry e;
  if (!decode(*row, e.created_ms, e.response.status, e.hash, e.response.body)) return std::nullopt;
  return e;
}

void IdempotencyCache::remember(const std::string& key, Entry entry) {
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= key.size() + it->second.response.body.size();
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  lru_.push_front(key);
  entry.lru = lru_.begin();
  bytes_ += key.size() + entry.response.body.size();
  entries_.emplace(key, std::move(entry));
  // Evicting from memory loses nothing with a spool (load() finds it).
  while (!lru_.empty() && (entries_.size() > options_.max_entries || bytes_ > options_.max_bytes)) {
    const auto& oldest = lru_.back();
    auto it = entries_.find(oldest);
    bytes_ -= oldest.size() + it->second.response.body.size();
    entries_.erase(it);
    lru_.pop_back();
  }
}

IdempotencyCache::Begin IdempotencyCache::begin(const std::string& key,
                                                std::string_view request_body) {
  const std::string hash = sha256(request_body);
  const std::int64_t now = spool::wall_clock_ms();
  std::lock_guard lock(mu_);
  if (running_.count(key)) return {Claim::Running, {}};
  std::optional<Entry> found;
  if (auto it = entries_.find(key); it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    found = it->second;
  } else if (auto loaded = load(key)) {
    found = std::move(loaded);
  }
  if (found && now - found->created_ms < options_.ttl.count()) {
    if (found->hash != hash) return {Claim::Mismatch, {}};
    StoredResponse r = found->response;
    if (!entries_.count(key)) remember(key, std::move(*found));
    return {Claim::Replay, std::move(r)};
  }
  running_.emplace(key, hash);
  return {Claim::Run, {}};
}

void IdempotencyCache::finish(const std::string& key, const StoredResponse& response) {
  Entry e;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(key);
    if (it == running_.end()) return;
    e.hash = it->second;
  }
  e.created_ms = spool::wall_clock_ms();
  e.response = response;
  if (store_ != nullptr && writer_ != nullptr) {
    spool::WriteSet set(*store_);
    spool::put_idempotency_row(set, key,
                               encode(e.created_ms, response.status, e.hash, response.body));
    // A failed write leaves the memory copy: a replay still works until a restart.
    write_synced(*writer_, std::move(set), true);
  }
  const std::int64_t created = e.created_ms;
  bool sweep_now = false;
  {
    std::lock_guard lock(mu_);
    remember(key, std::move(e));
    running_.erase(key);
    if (created - last_sweep_ms_ >= kSweepEveryMs) {
      last_sweep_ms_ = created;
      sweep_now = true;
    }
  }
  if (sweep_now) sweep(spool::wall_clock_ms());
}

void IdempotencyCache::abandon(const std::string& key) {
  std::lock_guard lock(mu_);
  running_.erase(key);
}

void IdempotencyCache::sweep(std::int64_t now_ms) {
  {
    std::lock_guard lock(mu_);
    for (auto it = lru_.begin(); it != lru_.end();) {
      auto e = entries_.find(*it);
      if (now_ms - e->second.created_ms >= options_.ttl.count()) {
        bytes_ -= it->size() + e->second.response.body.size();
        entries_.erase(e);
        it = lru_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (store_ == nullptr || writer_ == nullptr) return;
  std::vector<std::string> expired;
  spool::for_each_idempotency_row(*store_, [&](std::string_view key, std::string_view value) {
    std::int64_t created = 0;
    int status = 0;
    std::string hash, body;
    if (!decode(value, created, status, hash, body) || now_ms - created >= options_.ttl.count())
      expired.emplace_back(key);
  });
  if (expired.empty()) return;
  spool::WriteSet set(*store_);
  for (const auto& k : expired) spool::remove_idempotency_row(set, k);
  write_synced(*writer_, std::move(set), false);
}

std::size_t IdempotencyCache::entries() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::size_t IdempotencyCache::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

}  // namespace mailgate::idempotency
