// cluster/shared_suppression: see shared_suppression.hpp.
#include "cluster/shared_suppression.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <asio/post.hpp>

#include "cluster/cluster.hpp"
#include "cluster/redis_link.hpp"
#include "metrics/exposition.hpp"

namespace mailgate::cluster {
namespace {

// KEYS: hash, log. ARGV: node, log length, then per change: op ("a"/"r"),
// address, ms, reason. A change older than what the hash holds is dropped
// (last writer wins); the others are written and logged. Returns the
// dropped ones' {address, value in the hash, ...}: the node takes those.
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

// KEYS: log. ARGV: the id read up to ("" = never), how many to read.
// Returns {"full", newest id} when the log cannot say what changed since
// (never read, trimmed past it, or lost), else {"changes", entries}.
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
return {'changes', redis.call('XRANGE', KEYS[1], ms .. '-' .. (tonumber(seq) + 1), '+',
                              'COUNT', tonumber(ARGV[2]))}
)lua";

// A hash value: "<ms> <reason>" or "-<ms>".
SuppressionChange from_hash(std::string_view address, std::string_view value) {
  SuppressionChange c;
  c.address = std::string(address);
  if (!value.empty() && value.front() == '-') {
    c.removed = true;
    c.ms = leading_number(value.substr(1));
    return c;
  }
  const auto sp = value.find(' ');
  c.ms = leading_number(value.substr(0, sp));
  if (sp != std::string_view::npos) c.reason = std::string(value.substr(sp + 1));
  return c;
}

std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const metrics::Family kPushed{"mailgate_cluster_suppression_pushed_total", metrics::Type::Counter,
                              "suppression changes of this node written to Redis"};
const metrics::Family kApplied{"mailgate_cluster_suppression_applied_total", metrics::Type::Counter,
                               "suppression changes of other nodes applied to this node's list"};
const metrics::Family kPending{"mailgate_cluster_suppression_pending", metrics::Type::Gauge,
                               "suppression changes waiting for Redis (queued while it is down)"};
const metrics::Family kDropped{
    "mailgate_cluster_suppression_dropped_total", metrics::Type::Counter,
    "queued suppression changes dropped (queue full while Redis was down)"};
const metrics::Family kFullSyncs{"mailgate_cluster_suppression_full_syncs_total",
                                 metrics::Type::Counter,
                                 "catch-ups by a full scan of Redis's suppression hash"};
const metrics::Family kLag{"mailgate_cluster_suppression_sync_lag_seconds", metrics::Type::Gauge,
                           "time since this node last read the suppression change log"};

}  // namespace

SharedSuppression::SharedSuppression(const ClusterConfig& cfg, Cluster& cluster, RedisLink& link,
                                     asio::io_context& ctx, SuppressionReplica replica)
    : cfg_(cfg),
      cluster_(cluster),
      link_(link),
      ctx_(ctx),
      replica_(std::move(replica)),
      timer_(ctx) {}

SharedSuppression::~SharedSuppression() = default;

void SharedSuppression::start() {
  stopped_ = false;
  tick();
}

void SharedSuppression::stop() {
  stopped_ = true;
  timer_.cancel();
}

void SharedSuppression::local_change(SuppressionChange c) {
  asio::post(ctx_, [this, c = std::move(c)]() mutable {
    if (stopped_) return;
    if (pending_.size() >= kMaxPending) {
      pending_.pop_front();
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    pending_.push_back(std::move(c));
    pending_n_.store(pending_.size(), std::memory_order_relaxed);
    work();  // pushed now, not at the next poll
  });
}

void SharedSuppression::tick() {
  if (stopped_) return;
  work();
  timer_.expires_after(kPollPeriod);
  timer_.async_wait([this](std::error_code ec) {
    if (!ec) tick();
  });
}

void SharedSuppression::work() {
  if (stopped_ || busy_ || !cluster_.redis_up()) return;
  busy_ = true;
  if (!pending_.empty())
    push();
  else
    poll();
}

void SharedSuppression::done(bool ok) {
  busy_ = false;
  // Failed: the next tick tries again. Done: writes queued meanwhile go now.
  if (ok && !pending_.empty()) work();
}

void SharedSuppression::push() {
  const auto n = std::min(pending_.size(), kPushBatch);
  std::vector<std::string> args{cfg_.node, std::to_string(kLogLength)};
  for (std::size_t i = 0; i < n; ++i) {
    const auto& c = pending_[i];
    args.push_back(c.removed ? "r" : "a");
    args.push_back(c.address);
    args.push_back(std::to_string(c.ms));
    args.push_back(c.reason);
  }
  link_.eval(
      kPushScript, {kSuppressKey, kSuppressLogKey}, std::move(args),
      [this, n](const redisReply* r, std::string_view error) {
        if (stopped_) return;
        if (!error.empty() || r->type != REDIS_REPLY_ARRAY) {
          done(false);  // kept: pushed when Redis answers
          return;
        }
        // Redis held newer changes for these: the list takes them.
        for (std::size_t i = 0; i + 1 < r->elements; i += 2)
          replica_.apply(from_hash(reply_text(r->element[i]), reply_text(r->element[i + 1])));
        for (std::size_t i = 0; i < n && !pending_.empty(); ++i) pending_.pop_front();
        pending_n_.store(pending_.size(), std::memory_order_relaxed);
        pushed_.fetch_add(n, std::memory_order_relaxed);
        if (!pending_.empty())
          push();
        else
          poll();
      });
}

void SharedSuppression::poll() {
  link_.eval(kPollScript, {kSuppressLogKey}, {version_, std::to_string(kReadBatch)},
             [this](const redisReply* r, std::string_view error) {
               if (stopped_) return;
               if (!error.empty() || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                 done(false);
                 return;
               }
               const auto kind = reply_text(r->element[0]);
               if (kind == "full") {
                 full_syncs_.fetch_add(1, std::memory_order_relaxed);
                 scanned_.clear();
                 scan("0", std::string(reply_text(r->element[1])));
                 return;
               }
               const auto* entries = r->element[1];
               apply_entries(entries);
               last_read_us_.store(steady_us(), std::memory_order_relaxed);
               if (entries->type == REDIS_REPLY_ARRAY && entries->elements >= kReadBatch)
                 poll();  // more to read
               else
                 done(true);
             });
}

void SharedSuppression::apply_entries(const redisReply* entries) {
  if (!entries || entries->type != REDIS_REPLY_ARRAY) return;
  for (std::size_t i = 0; i < entries->elements; ++i) {
    const auto* e = entries->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
    version_ = std::string(reply_text(e->element[0]));
    const auto* f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY) continue;
    SuppressionChange c;
    std::string_view node;
    for (std::size_t j = 0; j + 1 < f->elements; j += 2) {
      const auto k = reply_text(f->element[j]);
      const auto v = reply_text(f->element[j + 1]);
      if (k == "op") c.removed = v == "r";
      if (k == "a") c.address = std::string(v);
      if (k == "ms") c.ms = leading_number(v);
      if (k == "r") c.reason = std::string(v);
      if (k == "n") node = v;
    }
    if (node == cfg_.node || c.address.empty()) continue;  // its own change
    replica_.apply(c);
    applied_.fetch_add(1, std::memory_order_relaxed);
  }
  std::lock_guard lock(mu_);
  version_copy_ = version_;
}

void SharedSuppression::scan(std::string cursor, std::string version) {
  link_.command(
      {"HSCAN", kSuppressKey, cursor, "COUNT", "1000"},
      [this, version = std::move(version)](const redisReply* r, std::string_view error) mutable {
        if (stopped_) return;
        if (!error.empty() || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
          scanned_.clear();
          done(false);  // the next tick starts the catch-up again
          return;
        }
        const auto* kv = r->element[1];
        for (std::size_t i = 0; i + 1 < kv->elements; i += 2) {
          auto c = from_hash(reply_text(kv->element[i]), reply_text(kv->element[i + 1]));
          scanned_[c.address] = c.ms;
          replica_.apply(c);
        }
        const std::string next(reply_text(r->element[0]));
        if (next == "0")
          finish_scan(std::move(version));
        else
          scan(next, std::move(version));
      });
}

void SharedSuppression::finish_scan(std::string version) {
  // Local entries Redis lacks, or holds older, go to Redis (additions made
  // while it was down or lost, before a restart).
  std::size_t queued = 0;
  for (auto& c : replica_.snapshot()) {
    auto it = scanned_.find(c.address);
    if (it != scanned_.end() && it->second >= c.ms) continue;
    pending_.push_back(std::move(c));
    ++queued;
  }
  pending_n_.store(pending_.size(), std::memory_order_relaxed);
  spdlog::info("cluster: suppression list caught up with Redis ({} entries there, {} of ours sent)",
               scanned_.size(), queued);
  scanned_.clear();
  version_ = std::move(version);
  {
    std::lock_guard lock(mu_);
    version_copy_ = version_;
  }
  last_read_us_.store(steady_us(), std::memory_order_relaxed);
  done(true);  // and sends what was queued
}

SuppressionSyncStats SharedSuppression::stats() const {
  SuppressionSyncStats s;
  s.pushed = pushed_.load();
  s.applied = applied_.load();
  s.dropped = dropped_.load();
  s.full_syncs = full_syncs_.load();
  s.pending = pending_n_.load();
  if (const auto t = last_read_us_.load(); t > 0) s.lag_seconds = (steady_us() - t) / 1e6;
  std::lock_guard lock(mu_);
  s.version = version_copy_;
  return s;
}

void SharedSuppression::export_metrics(metrics::Exposition& e) const {
  const auto s = stats();
  e.add(kPushed, static_cast<double>(s.pushed));
  e.add(kApplied, static_cast<double>(s.applied));
  e.add(kPending, static_cast<double>(s.pending));
  e.add(kDropped, static_cast<double>(s.dropped));
  e.add(kFullSyncs, static_cast<double>(s.full_syncs));
  e.add(kLag, s.lag_seconds);
}

}  // namespace mailgate::cluster
