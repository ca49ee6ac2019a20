// cluster/replicated_table: see replicated_table.hpp.
#include "cluster/replicated_table.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <asio/post.hpp>

#include "cluster/cluster.hpp"
#include "cluster/redis_link.hpp"
#include "metrics/exposition.hpp"
#include "ratelimit/gcra.hpp"

namespace mailgate::cluster {
namespace {

// KEYS: hash, log. ARGV: node, log length, then per change: op ("a"/"r"),
// key, ms, value. A change older than what the hash holds is dropped
// (newest wins); the others are written and logged. Returns the dropped
// ones' {key, value in the hash, ...}: the node takes those.
constexpr const char* kPushScript = R"lua(
local newer = {}
for i = 3, #ARGV, 4 do
  local op, addr, ms, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local cur = redis.call('HGET', KEYS[1], addr)
  local cur_ms = -1
  if cur then cur_ms = tonumber(string.match(cur, '^%-?(%d+)')) or -1 end
  if tonumber(ms) >= cur_ms then
    if op == 'a' then
      redis.call('HSET', KEYS[1], addr, ms .. ' ' .. reason)
    else
      redis.call('HSET', KEYS[1], addr, '-' .. ms)
    end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'op', op, 'a', addr, 'ms', ms,
               'r', reason, 'n', ARGV[1])
  else
    table.insert(newer, addr)
    table.insert(newer, cur)
  end
end
return newer
)lua";

// KEYS: log. ARGV: the id read up to ("" = never), how many to read, the
// largest field (bytes) a node accepts. Returns {"full", newest id} when the
// log cannot say what changed since (never read, trimmed past it, or lost),
// else {"changes", entries}; an entry with too many or too large fields is
// sent as its id with the fields {"bad", "size"}, so a hostile entry costs
// the node no memory.
constexpr const char* kPollScript = R"lua(
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local newest_id = '0-0'
if #newest > 0 then newest_id = newest[1][1] end
if ARGV[1] == '' then return {'full', newest_id} end
local function parse(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a), tonumber(b)
end
local function less(x, y)
  local xa, xb = parse(x)
  local ya, yb = parse(y)
  return xa < ya or (xa == ya and xb < yb)
end
if ARGV[1] ~= '0-0' then
  if #newest == 0 or less(newest_id, ARGV[1]) then return {'full', newest_id} end
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if less(ARGV[1], oldest[1][1]) then return {'full', newest_id} end
end
local ms, seq = string.match(ARGV[1], '^(%d+)-(%d+)$')
local entries = redis.call('XRANGE', KEYS[1], ms .. '-' .. (tonumber(seq) + 1), '+',
                           'COUNT', tonumber(ARGV[2]))
local max = tonumber(ARGV[3])
for _, e in ipairs(entries) do
  local bad = #e[2] > 10
  for _, f in ipairs(e[2]) do bad = bad or #f > max end
  if bad then e[2] = {'bad', 'size'} end
end
return {'changes', entries}
)lua";

// KEYS: hash. ARGV: cursor, count, the largest key, the largest value. One
// HSCAN step; a field or value over the bounds is sent as "" / "!" (refused
// by the node without reading it).
constexpr const char* kScanScript = R"lua(
local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', tonumber(ARGV[2]))
local kv, max_key, max_value = r[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, #kv - 1, 2 do
  if #kv[i] > max_key or #kv[i + 1] > max_value then
    kv[i] = ''
    kv[i + 1] = '!'
  end
end
return r
)lua";

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Bytes safe to show in a log line (Redis's content is anyone's).
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

std::string encode_row(const TableRow& row) {
  return fmt::format("{}{} {}:{}{}", row.removed ? 'r' : 'a', row.ms, row.key.size(), row.key,
                     row.value);
}

bool decode_row(std::string_view s, TableRow& out) {
  if (s.empty() || (s.front() != 'a' && s.front() != 'r')) return false;
  TableRow row;
  row.removed = s.front() == 'r';
  s.remove_prefix(1);
  const auto sp = s.find(' ');
  const auto ms = parse_row_ms(s.substr(0, sp));
  if (!ms || sp == std::string_view::npos) return false;
  s.remove_prefix(sp + 1);
  const auto colon = s.find(':');
  const auto len = parse_row_ms(s.substr(0, colon));
  if (!len || colon == std::string_view::npos || s.size() - colon - 1 < std::size_t(*len))
    return false;
  row.ms = *ms;
  row.key = std::string(s.substr(colon + 1, *len));
  row.value = std::string(s.substr(colon + 1 + *len));
  out = std::move(row);
  return true;
}

std::optional<std::int64_t> parse_row_ms(std::string_view s) {
  if (s.empty() || s.size() > 16) return std::nullopt;
  std::int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

ReplicatedTable::ReplicatedTable(TableSpec spec, const ClusterConfig& cfg, Cluster& cluster,
                                 RedisLink& link, asio::io_context& ctx, TableReplica replica)
    : spec_(std::move(spec)),
      cfg_(cfg),
      cluster_(cluster),
      link_(link),
      ctx_(ctx),
      replica_(std::move(replica)),
      timer_(ctx) {
  const auto name = "mailgate_cluster_" + spec_.name;
  m_pushed_ = name + "_pushed_total";
  m_applied_ = name + "_applied_total";
  m_pending_ = name + "_pending";
  m_dropped_ = name + "_dropped_total";
  m_full_ = name + "_full_syncs_total";
  m_lag_ = name + "_sync_lag_seconds";
  m_refused_ = name + "_refused_total";
  m_errors_ = name + "_redis_errors_total";
  const auto& w = spec_.what;
  h_pushed_ = w + " changes of this node written to Redis";
  h_applied_ = w + " changes of other nodes applied to this node's copy";
  h_pending_ = w + " changes waiting for Redis (queued while it is down)";
  h_dropped_ = "queued " + w + " changes dropped (queue full while Redis was down)";
  h_full_ = "catch-ups by a full scan of Redis's " + w + " hash";
  h_lag_ = "time since this node last read the " + w + " change log";
  h_refused_ = w + " rows read from Redis and refused (malformed, oversized or invalid)";
  h_errors_ = "error replies from Redis to the " + w + " sync (e.g. a key of the wrong type)";
  // Changes queued before a restart go first (before the catch-up's union).
  if (replica_.load) {
    std::vector<std::uint64_t> bad;
    for (auto& [seq, text] : replica_.load()) {
      TableRow row;
      if (decode_row(text, row) && refuse_reason(row).empty())
        pending_.push_back({std::move(row), seq, true});
      else
        bad.push_back(seq);
      next_seq_ = std::max(next_seq_, seq + 1);
    }
    std::sort(pending_.begin(), pending_.end(),
              [](const Pending& a, const Pending& b) { return a.seq < b.seq; });
    if (!bad.empty() && replica_.forget) replica_.forget(std::move(bad));
    pending_n_.store(pending_.size(), std::memory_order_relaxed);
    if (!pending_.empty())
      spdlog::info("cluster: {} {} change(s) queued before the restart, sent when Redis answers",
                   pending_.size(), spec_.what);
  }
}

ReplicatedTable::~ReplicatedTable() = default;

void ReplicatedTable::start() {
  stopped_ = false;
  tick();
}

void ReplicatedTable::stop() {
  stopped_ = true;
  timer_.cancel();
}

void ReplicatedTable::local_change(TableRow c) {
  asio::post(ctx_, [this, c = std::move(c)]() mutable {
    if (stopped_) return;
    if (pending_.size() >= kMaxPending) {
      if (pending_.front().saved && replica_.forget) replica_.forget({pending_.front().seq});
      pending_.pop_front();
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    pending_.push_back({std::move(c), next_seq_++, false});
    pending_n_.store(pending_.size(), std::memory_order_relaxed);
    if (!cluster_.redis_up()) save_pending();  // it may wait long: kept across a restart
    work();                                    // pushed now, not at the next poll
  });
}

void ReplicatedTable::tick() {
  if (stopped_) return;
  work();
  timer_.expires_after(kPollPeriod);
  timer_.async_wait([this](std::error_code ec) {
    if (!ec) tick();
  });
}

void ReplicatedTable::work() {
  if (stopped_ || busy_ || !cluster_.redis_up()) return;
  busy_ = true;
  if (!pending_.empty())
    push();
  else
    poll();
}

void ReplicatedTable::save_pending() {
  if (!replica_.save) return;
  TableReplica::Saved rows;
  for (auto& p : pending_) {
    if (p.saved) continue;
    rows.emplace_back(p.seq, encode_row(p.row));
    p.saved = true;
  }
  if (!rows.empty()) replica_.save(std::move(rows));
}

void ReplicatedTable::done(bool ok) {
  end_step();
  busy_ = false;
  if (!ok) save_pending();  // Redis failing: what waits is kept across a restart
  // Failed: the next tick tries again. Done: writes queued meanwhile go now.
  if (ok && !pending_.empty()) work();
}

std::string ReplicatedTable::refuse_reason(const TableRow& row) const {
  if (row.key.empty()) return "empty key";
  if (row.key.size() > spec_.max_key) return "key too long";
  if (row.value.size() > spec_.max_value) return "value too long";
  if (row.ms < 0 || row.ms > wall_ms() + kMaxFutureMs) return "time out of range";
  if (replica_.check) return replica_.check(row);
  return {};
}

void ReplicatedTable::refuse(std::string_view why) {
  refused_.fetch_add(1, std::memory_order_relaxed);
  if (step_refused_++ == 0) step_first_why_ = std::string(why);
}

void ReplicatedTable::end_step() {
  if (step_refused_ == 0) return;
  spdlog::warn("cluster: {} row(s) read from Redis ({} / {}) refused, not applied; first: {}",
               step_refused_, spec_.hash_key, spec_.log_key, step_first_why_);
  step_refused_ = 0;
  step_first_why_.clear();
}

void ReplicatedTable::error_reply(std::string_view call, const redisReply* r,
                                  std::string_view error) {
  // A transport error (timeout, connection lost) is the cluster's health to
  // judge; an answer of the wrong shape is Redis's content: counted.
  if (!error.empty()) return;
  errors_.fetch_add(1, std::memory_order_relaxed);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_error_log_ < kErrorLogPeriod) return;
  last_error_log_ = now;
  spdlog::warn("cluster: {} sync: Redis answered {} with {} (keys {} / {}); the {} stays local",
               spec_.what, call,
               r && r->type == REDIS_REPLY_ERROR ? printable(std::string_view(r->str, r->len))
                                                 : std::string("a reply of the wrong shape"),
               spec_.hash_key, spec_.log_key, spec_.what);
}

std::optional<TableRow> ReplicatedTable::hash_row(const redisReply* key, const redisReply* value) {
  if (!key || !value || key->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) {
    refuse("a hash field that is not a string");
    return std::nullopt;
  }
  TableRow row;
  row.key = std::string(reply_text(key));
  auto v = reply_text(value);
  std::optional<std::int64_t> ms;
  if (!v.empty() && v.front() == '-') {
    row.removed = true;
    ms = parse_row_ms(v.substr(1));
  } else {
    const auto sp = v.find(' ');
    ms = parse_row_ms(v.substr(0, sp));
    if (sp != std::string_view::npos) row.value = std::string(v.substr(sp + 1));
  }
  if (!ms) {
    refuse(fmt::format("'{}': value '{}' is not \"<ms> <value>\" or \"-<ms>\"", printable(row.key),
                       printable(v)));
    return std::nullopt;
  }
  row.ms = *ms;
  if (auto why = refuse_reason(row); !why.empty()) {
    refuse(fmt::format("'{}': {}", printable(row.key), why));
    return std::nullopt;
  }
  return row;
}

void ReplicatedTable::push() {
  const auto n = std::min(pending_.size(), kPushBatch);
  std::vector<std::string> args{cfg_.node, std::to_string(kLogLength)};
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = pending_[i].row;
    args.push_back(c.removed ? "r" : "a");
    args.push_back(c.key);
    args.push_back(std::to_string(c.ms));
    args.push_back(c.value);
  }
  link_.eval(kPushScript, {spec_.hash_key, spec_.log_key}, std::move(args),
             [this, n](const redisReply* r, std::string_view error) {
               if (stopped_) return;
               if (!error.empty() || r->type != REDIS_REPLY_ARRAY) {
                 error_reply("a write", r, error);
                 done(false);  // kept (across a restart too): pushed when Redis answers
                 return;
               }
               // Redis held newer changes for these: the replica takes them.
               for (std::size_t i = 0; i + 1 < r->elements && i < 2 * n; i += 2)
                 if (auto row = hash_row(r->element[i], r->element[i + 1])) replica_.apply(*row);
               std::vector<std::uint64_t> sent;
               for (std::size_t i = 0; i < n && !pending_.empty(); ++i) {
                 if (pending_.front().saved) sent.push_back(pending_.front().seq);
                 pending_.pop_front();
               }
               if (!sent.empty() && replica_.forget) replica_.forget(std::move(sent));
               pending_n_.store(pending_.size(), std::memory_order_relaxed);
               pushed_.fetch_add(n, std::memory_order_relaxed);
               if (!pending_.empty())
                 push();
               else
                 poll();
             });
}

void ReplicatedTable::poll() {
  const auto max_field = std::max(spec_.max_key, spec_.max_value);
  link_.eval(kPollScript, {spec_.log_key},
             {version_, std::to_string(kReadBatch), std::to_string(max_field)},
             [this](const redisReply* r, std::string_view error) {
               if (stopped_) return;
               if (!error.empty() || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                 error_reply("a read of the change log", r, error);
                 done(false);
                 return;
               }
               const auto kind = reply_text(r->element[0]);
               if (kind == "full") {
                 const auto newest = reply_text(r->element[1]);
                 if (newest.empty() || newest.size() > 64) {
                   error_reply("a read of the change log", r, error);
                   done(false);
                   return;
                 }
                 full_syncs_.fetch_add(1, std::memory_order_relaxed);
                 scanned_.clear();
                 scan("0", std::string(newest));
                 return;
               }
               const auto* entries = r->element[1];
               apply_entries(entries);
               last_read_us_.store(ratelimit::steady_us(), std::memory_order_relaxed);
               if (entries->type == REDIS_REPLY_ARRAY && entries->elements >= kReadBatch) {
                 end_step();
                 poll();  // more to read
               } else {
                 done(true);
               }
             });
}

void ReplicatedTable::apply_entries(const redisReply* entries) {
  if (!entries || entries->type != REDIS_REPLY_ARRAY) return;
  const auto n = std::min(entries->elements, kReadBatch);
  for (std::size_t i = 0; i < n; ++i) {
    const auto* e = entries->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
    const auto id = reply_text(e->element[0]);
    if (id.empty() || id.size() > 64) continue;
    version_ = std::string(id);
    const auto* f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY || f->elements > 10) {
      refuse(fmt::format("log entry {}: too many fields", printable(id)));
      continue;
    }
    TableRow c;
    std::string_view node, op, ms;
    bool bad = false;
    for (std::size_t j = 0; j + 1 < f->elements; j += 2) {
      const auto k = reply_text(f->element[j]);
      const auto v = reply_text(f->element[j + 1]);
      if (k == "op") op = v;
      if (k == "a") c.key = std::string(v);
      if (k == "ms") ms = v;
      if (k == "r") c.value = std::string(v);
      if (k == "n") node = v;
      if (k == "bad") bad = true;
    }
    if (!bad && node == cfg_.node) continue;  // its own change
    const auto t = parse_row_ms(ms);
    std::string why;
    if (bad)
      why = "a field over the size bound";
    else if (op != "a" && op != "r")
      why = "op '" + printable(op) + "' is neither a nor r";
    else if (!t)
      why = "ms '" + printable(ms) + "' is not a time";
    if (why.empty()) {
      c.removed = op == "r";
      c.ms = *t;
      if (c.removed) c.value.clear();
      why = refuse_reason(c);
    }
    if (!why.empty()) {
      refuse(fmt::format("log entry {} ('{}'): {}", printable(id), printable(c.key), why));
      continue;
    }
    replica_.apply(c);
    applied_.fetch_add(1, std::memory_order_relaxed);
  }
  std::lock_guard lock(mu_);
  version_copy_ = version_;
}

void ReplicatedTable::scan(std::string cursor, std::string version) {
  link_.eval(
      kScanScript, {spec_.hash_key},
      {cursor, "1000", std::to_string(spec_.max_key), std::to_string(spec_.max_value)},
      [this, version = std::move(version)](const redisReply* r, std::string_view error) mutable {
        if (stopped_) return;
        if (!error.empty() || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
          error_reply("a scan of the hash", r, error);
          scanned_.clear();
          done(false);  // the next tick starts the catch-up again
          return;
        }
        const auto* kv = r->element[1];
        std::size_t taken = 0;
        for (std::size_t i = 0; i + 1 < kv->elements; i += 2) {
          if (taken >= kScanStepMax || scanned_.size() >= spec_.max_rows) {
            refuse(fmt::format("more than {} rows in one scan step or {} in all", kScanStepMax,
                               spec_.max_rows));
            continue;
          }
          auto row = hash_row(kv->element[i], kv->element[i + 1]);
          if (!row) continue;
          ++taken;
          scanned_[row->key] = row->ms;
          replica_.apply(*row);
        }
        end_step();
        const auto next = reply_text(r->element[0]);
        if (next == "0" || next.empty() || next.size() > 32)
          finish_scan(std::move(version));
        else
          scan(std::string(next), std::move(version));
      });
}

void ReplicatedTable::finish_scan(std::string version) {
  // Local rows Redis lacks, or holds older, go to Redis (additions made
  // while it was down or lost, before a restart).
  std::size_t queued = 0;
  for (auto& c : replica_.snapshot()) {
    auto it = scanned_.find(c.key);
    if (it != scanned_.end() && it->second >= c.ms) continue;
    pending_.push_back({std::move(c), next_seq_++, false});
    ++queued;
  }
  pending_n_.store(pending_.size(), std::memory_order_relaxed);
  spdlog::info("cluster: {} caught up with Redis ({} rows there, {} of ours sent)", spec_.what,
               scanned_.size(), queued);
  scanned_.clear();
  version_ = std::move(version);
  {
    std::lock_guard lock(mu_);
    version_copy_ = version_;
  }
  last_read_us_.store(ratelimit::steady_us(), std::memory_order_relaxed);
  done(true);  // and sends what was queued
}

TableSyncStats ReplicatedTable::stats() const {
  TableSyncStats s;
  s.pushed = pushed_.load();
  s.applied = applied_.load();
  s.dropped = dropped_.load();
  s.full_syncs = full_syncs_.load();
  s.pending = pending_n_.load();
  s.refused = refused_.load();
  s.errors = errors_.load();
  if (const auto t = last_read_us_.load(); t > 0)
    s.lag_seconds = (ratelimit::steady_us() - t) / 1e6;
  std::lock_guard lock(mu_);
  s.version = version_copy_;
  return s;
}

void ReplicatedTable::export_metrics(metrics::Exposition& e) const {
  using metrics::Type;
  const auto s = stats();
  e.add({m_pushed_, Type::Counter, h_pushed_}, static_cast<double>(s.pushed));
  e.add({m_applied_, Type::Counter, h_applied_}, static_cast<double>(s.applied));
  e.add({m_pending_, Type::Gauge, h_pending_}, static_cast<double>(s.pending));
  e.add({m_dropped_, Type::Counter, h_dropped_}, static_cast<double>(s.dropped));
  e.add({m_full_, Type::Counter, h_full_}, static_cast<double>(s.full_syncs));
  e.add({m_lag_, Type::Gauge, h_lag_}, s.lag_seconds);
  e.add({m_refused_, Type::Counter, h_refused_}, static_cast<double>(s.refused));
  e.add({m_errors_, Type::Counter, h_errors_}, static_cast<double>(s.errors));
}

}  // namespace mailgate::cluster
