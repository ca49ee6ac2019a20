// cluster/connection_leases: see connection_leases.hpp. Scores are expiry
// times in Redis's clock (TIME inside the scripts), so nodes with skewed
// clocks agree on which leases are dead.
#include "cluster/connection_leases.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/post.hpp>
#include <chrono>

#include <fmt/format.h>

#include "cluster/cluster.hpp"
#include "cluster/redis_link.hpp"
#include "metrics/exposition.hpp"
#include "ratelimit/gcra.hpp"

namespace mailgate::cluster {
namespace {

// A limit's waiters zset holds "<h>:<node>" scored by expiry in Redis time:
// h = 0 when the node holds none of the limit (it is starved), 1 when it
// holds some. This Lua prelude cleans a waiters key that is not a zset
// (anything with Redis access may write there: a wrong type would fail every
// call, renewals included) and counts the other nodes waiting and the
// starved ones among them (at most 256 read).
#define MAILGATE_COUNT_WAITERS                                            \
  "local function clean_waiters(key)\n"                                   \
  "  local t = redis.call('TYPE', key).ok\n"                              \
  "  if t ~= 'zset' and t ~= 'none' then redis.call('DEL', key) end\n"    \
  "end\n"                                                                 \
  "local function count_waiters(key, node)\n"                             \
  "  local all, starved = 0, 0\n"                                         \
  "  for _, m in ipairs(redis.call('ZRANGE', key, 0, 255)) do\n"          \
  "    if m ~= '0:' .. node and m ~= '1:' .. node then\n"                 \
  "      all = all + 1\n"                                                 \
  "      if string.sub(m, 1, 2) == '0:' then starved = starved + 1 end\n" \
  "    end\n"                                                             \
  "  end\n"                                                               \
  "  return all, starved\n"                                               \
  "end\n"

// KEYS[1]: the limit's zset, KEYS[2]: its waiters.
// ARGV: max, ttl ms, this node, leases it holds of the limit, candidate ids...
// Drops expired leases and waiters, adds candidates while fewer than max are
// held. A refused node is written as a waiter (until now + ttl: a dead one
// costs nothing), a granted one is not waiting any more.
// Returns {granted, expired dropped, ms until the first lease expires
// (refused), other nodes waiting, starved ones among them}.
constexpr const char* kAcquireScript = MAILGATE_COUNT_WAITERS R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
clean_waiters(KEYS[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local ttl = tonumber(ARGV[2])
local granted = 0
for i = 5, #ARGV do
  if granted >= free then break end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  granted = granted + 1
end
local wait = 0
redis.call('ZREM', KEYS[2], '0:' .. ARGV[3], '1:' .. ARGV[3])
if granted > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
else
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #first == 2 then wait = tonumber(first[2]) - now end
  local h = '1:'
  if tonumber(ARGV[4]) == 0 then h = '0:' end
  redis.call('ZADD', KEYS[2], now + ttl, h .. ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
end
local waiting, starved = count_waiters(KEYS[2], ARGV[3])
return {granted, expired, wait, waiting, starved}
)lua";

// KEYS: per limit its zset then its waiters. ARGV: ttl ms, this node, then
// per limit: how many ids, the ids. Every id gets a new expiry (re-added
// when it had expired: its connection is open). Returns per limit how many
// other nodes wait for it (refused within the last ttl) and how many of
// them hold none of it.
constexpr const char* kRenewScript = MAILGATE_COUNT_WAITERS R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local out = {}
local j = 3
for k = 1, #KEYS, 2 do
  local n = tonumber(ARGV[j])
  j = j + 1
  for i = 1, n do
    redis.call('ZADD', KEYS[k], now + ttl, ARGV[j])
    j = j + 1
  end
  redis.call('PEXPIRE', KEYS[k], ttl * 2)
  clean_waiters(KEYS[k + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now)
  local waiting, starved = count_waiters(KEYS[k + 1], ARGV[2])
  out[#out + 1] = waiting
  out[#out + 1] = starved
end
return out
)lua";
#undef MAILGATE_COUNT_WAITERS

// A spare lease nobody took within this long is given back at the next renewal.
constexpr std::int64_t kSpareKeepUs = 500'000;

const metrics::Family kShared{"mailgate_cluster_leases_shared", metrics::Type::Gauge,
                              "1 when connection limits are leased in Redis (0: local share)"};
const metrics::Family kHeld{"mailgate_cluster_leases_held", metrics::Type::Gauge,
                            "connection leases this node holds (open connections)"};
const metrics::Family kAcquired{"mailgate_cluster_leases_acquired_total", metrics::Type::Counter,
                                "connection leases Redis granted to this node"};
const metrics::Family kRefused{"mailgate_cluster_leases_refused_total", metrics::Type::Counter,
                               "lease requests Redis refused (the limit was full cluster-wide)"};
const metrics::Family kExpired{"mailgate_cluster_leases_expired_total", metrics::Type::Counter,
                               "expired leases (of dead or stalled nodes) this node dropped"};
const metrics::Family kRenewFailures{"mailgate_cluster_lease_renew_failures_total",
                                     metrics::Type::Counter, "lease renewals Redis did not answer"};
const metrics::Family kYielded{
    "mailgate_cluster_leases_yielded_total", metrics::Type::Counter,
    "connections retired after their message so waiting nodes get their share of a limit"};
const metrics::Family kLocalGrants{"mailgate_cluster_leases_local_total", metrics::Type::Counter,
                                   "connections admitted on the local share while Redis was down"};

// How many other nodes wait, from a script's reply (Redis content is
// untrusted: anything but a sane integer counts as nobody).
unsigned waiters_in(const redisReply* r) {
  if (r->type != REDIS_REPLY_INTEGER || r->integer <= 0) return 0;
  return static_cast<unsigned>(std::min<long long>(r->integer, 1'000'000));
}

}  // namespace

ConnectionLeases::ConnectionLeases(const ClusterConfig& cfg, Cluster& cluster, RedisLink& link,
                                   asio::io_context& ctx)
    : cfg_(cfg),
      cluster_(cluster),
      link_(link),
      ctx_(ctx),
      timer_(ctx),
      run_(fmt::format("{:x}", std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count())) {}

ConnectionLeases::~ConnectionLeases() = default;

void ConnectionLeases::start() {
  stopped_ = false;
  tick();
}

void ConnectionLeases::leave(const std::shared_ptr<void>& until) {
  stop();
  // Whatever the mode: leases written while shared may still be in Redis.
  mode_.store(Mode::Starting);  // nothing is granted any more
  std::map<std::string, Key, std::less<>> keys;
  {
    std::lock_guard lock(mu_);
    keys.swap(keys_);
  }
  for (auto& [name, k] : keys) {
    std::vector<std::string> ids = std::move(k.held);
    ids.insert(ids.end(), std::make_move_iterator(k.spare.begin()),
               std::make_move_iterator(k.spare.end()));
    if (!ids.empty()) remove_in_redis(std::move(ids), name, until);
  }
}

void ConnectionLeases::stop() {
  stopped_ = true;
  timer_.cancel();
}

std::string ConnectionLeases::next_id() {
  return cfg_.node + ":" + run_ + ":" +
         std::to_string(counter_.fetch_add(1, std::memory_order_relaxed) + 1);
}

unsigned ConnectionLeases::share(unsigned max) const {
  const unsigned live = std::max(1u, cluster_.live_nodes());
  return std::max(1u, (max + live - 1) / live);
}

bool ConnectionLeases::within_share(const std::string& key, unsigned max) const {
  std::lock_guard lock(mu_);
  auto it = keys_.find(key);
  return it == keys_.end() || it->second.held.size() <= share(std::max(1u, max));
}

unsigned ConnectionLeases::floor_share(unsigned max) const {
  return std::max(1u, max / std::max(1u, cluster_.live_nodes()));
}

bool ConnectionLeases::above_fair(const Key& k, unsigned max) const {
  max = std::max(1u, max);
  return (k.waiters > 0 && k.held.size() > share(max)) ||
         (k.starved > 0 && k.held.size() > floor_share(max));
}

bool ConnectionLeases::take_yield(const std::string& key, unsigned max) {
  if (mode_.load() != Mode::Shared) return false;
  std::lock_guard lock(mu_);
  auto it = keys_.find(key);
  if (it == keys_.end()) return false;
  auto& k = it->second;
  if (!k.yield_due || !above_fair(k, max)) return false;
  k.yield_due = false;
  yielded_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

LeaseTry ConnectionLeases::try_acquire(const std::string& key, unsigned max, unsigned want) {
  max = std::max(1u, max);
  const auto mode = mode_.load();
  std::lock_guard lock(mu_);
  auto& k = keys_[key];
  k.max = max;
  if (mode == Mode::Starting) return {false, kStartingRetryUs};
  if (mode == Mode::Local) {
    // This node's share of the limit, from the last live count seen.
    if (k.held.size() >= share(max)) return {false, kRefusedRetryUs};
    k.held.push_back(next_id());
    local_grants_.fetch_add(1, std::memory_order_relaxed);
    return {true, 0};
  }
  if (!k.spare.empty()) {
    k.held.push_back(std::move(k.spare.back()));
    k.spare.pop_back();
    return {true, 0};
  }
  if (k.pending) return {false, kPendingRetryUs};
  // Other nodes wait for this limit: no lease beyond this node's share (nor
  // beyond max ÷ live nodes, rounded down, while one of them holds none).
  if ((k.waiters > 0 && k.held.size() >= share(max)) ||
      (k.starved > 0 && k.held.size() >= floor_share(max)))
    return {false, kRefusedRetryUs};
  const auto now = ratelimit::steady_us();
  if (now < k.retry_at_us) return {false, k.retry_at_us - now};
  k.pending = true;
  asio::post(ctx_, [this, key, max, want = std::clamp(want, 1u, max), held = k.held.size()] {
    acquire(key, max, want, held);
  });
  return {false, kPendingRetryUs};
}

void ConnectionLeases::return_unused(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = keys_.find(key);
  if (it == keys_.end() || it->second.held.empty()) return;
  auto& k = it->second;
  if (mode_.load() == Mode::Shared) {
    k.spare.push_back(std::move(k.held.back()));
    k.spare_at_us = ratelimit::steady_us();
  }
  k.held.pop_back();
}

void ConnectionLeases::release(const std::string& key) {
  std::string id;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key);
    if (it == keys_.end() || it->second.held.empty()) return;
    id = std::move(it->second.held.back());
    it->second.held.pop_back();
    // A slot just came free: the next try asks Redis at once (the ZREM
    // below goes first on the one connection).
    it->second.retry_at_us = 0;
  }
  // Local mode: nothing in Redis counts it any more (it expires there).
  if (mode_.load() != Mode::Shared) return;
  asio::post(ctx_, [this, key, id = std::move(id)]() mutable {
    if (stopped_) return;
    remove_in_redis({std::move(id)}, key);
  });
}

void ConnectionLeases::remove_in_redis(std::vector<std::string> ids, const std::string& key,
                                       std::shared_ptr<void> until) {
  std::vector<std::string> args{"ZREM", kConnKeyPrefix + key};
  for (auto& id : ids) args.push_back(std::move(id));
  // A ZREM that misses costs a slot until the lease expires, nothing more.
  link_.command(std::move(args),
                [until = std::move(until)](const redisReply*, std::string_view) {});
}

void ConnectionLeases::acquire(std::string key, unsigned max, unsigned want, std::size_t held) {
  if (stopped_) return;
  std::vector<std::string> ids;
  std::vector<std::string> args{std::to_string(max), std::to_string(cfg_.lease_ttl.count()),
                                cfg_.node, std::to_string(held)};
  for (unsigned i = 0; i < want; ++i) {
    ids.push_back(next_id());
    args.push_back(ids.back());
  }
  link_.eval(kAcquireScript, {kConnKeyPrefix + key, kConnWaitKeyPrefix + key}, std::move(args),
             [this, key, ids = std::move(ids)](const redisReply* r, std::string_view error) {
               const auto now = ratelimit::steady_us();
               std::lock_guard lock(mu_);
               auto& k = keys_[key];
               k.pending = false;
               const bool ok = error.empty() && r->type == REDIS_REPLY_ARRAY && r->elements == 5 &&
                               r->element[0]->type == REDIS_REPLY_INTEGER &&
                               r->element[1]->type == REDIS_REPLY_INTEGER &&
                               r->element[2]->type == REDIS_REPLY_INTEGER &&
                               r->element[3]->type == REDIS_REPLY_INTEGER &&
                               r->element[4]->type == REDIS_REPLY_INTEGER;
               if (!ok) {  // Redis did not answer: ask again after a backoff
                 k.retry_at_us = now + kRefusedRetryUs;
                 return;
               }
               const auto granted = static_cast<std::size_t>(r->element[0]->integer);
               expired_.fetch_add(static_cast<std::uint64_t>(r->element[1]->integer),
                                  std::memory_order_relaxed);
               if (mode_.load() != Mode::Shared) {
                 // Gone local meanwhile: the grant is not counted here (it
                 // expires in Redis).
                 return;
               }
               k.waiters = waiters_in(r->element[3]);
               k.starved = std::min(k.waiters, waiters_in(r->element[4]));
               if (granted == 0) {
                 refused_.fetch_add(1, std::memory_order_relaxed);
                 const auto wait_ms = r->element[2]->integer;
                 k.retry_at_us =
                     now + std::clamp<std::int64_t>(wait_ms * 1000, 5'000, kRefusedRetryUs);
                 return;
               }
               acquired_.fetch_add(granted, std::memory_order_relaxed);
               for (std::size_t i = 0; i < granted && i < ids.size(); ++i)
                 k.spare.push_back(ids[i]);
               k.spare_at_us = now;
             });
}

void ConnectionLeases::tick() {
  if (stopped_) return;
  const auto now = ratelimit::steady_us();
  const bool up = cluster_.redis_up();
  const auto mode = mode_.load();
  if (mode == Mode::Starting && !up && cluster_.known()) {
    mode_.store(Mode::Local);
    spdlog::warn("cluster: Redis not reachable at start: connection limits are local (max / {})",
                 std::max(1u, cluster_.live_nodes()));
  } else if (mode == Mode::Shared && !up) {
    mode_.store(Mode::Local);
    std::lock_guard lock(mu_);
    for (auto& [name, k] : keys_) {
      k.spare.clear();            // they expire in Redis
      k.waiters = k.starved = 0;  // local shares: nobody is handed anything
      k.yield_due = false;
    }
    spdlog::warn(
        "cluster: connection limits are local while Redis is down (each limit / {} live "
        "node(s)); leases held are kept counted here",
        std::max(1u, cluster_.live_nodes()));
  }
  if (!renew_in_flight_ && up && mode_.load() != Mode::Shared) {
    renew(true);  // Redis answers (again): write back what is held, then share
  } else if (!renew_in_flight_ && mode_.load() == Mode::Shared && now >= next_renew_us_) {
    renew(false);
  }
  {  // Keys with nothing held, spare or asked for are forgotten (bounded map).
    std::lock_guard lock(mu_);
    std::erase_if(keys_, [now](const auto& kv) {
      const Key& k = kv.second;
      return k.held.empty() && k.spare.empty() && !k.pending && k.retry_at_us <= now;
    });
  }
  timer_.expires_after(cfg_.heartbeat_period());
  timer_.async_wait([this](std::error_code ec) {
    if (!ec) tick();
  });
}

void ConnectionLeases::renew(bool adopt) {
  const auto now = ratelimit::steady_us();
  next_renew_us_ = now + cfg_.lease_ttl.count() * 1000 / 3;
  std::vector<std::string> keys, names;
  std::vector<std::string> args{std::to_string(cfg_.lease_ttl.count()), cfg_.node};
  std::vector<std::pair<std::string, std::vector<std::string>>> give_back;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, k] : keys_) {
      if (!k.spare.empty() && now - k.spare_at_us > kSpareKeepUs) {
        give_back.emplace_back(name, std::move(k.spare));
        k.spare.clear();
      }
      if (k.held.empty() && k.spare.empty()) continue;
      keys.push_back(kConnKeyPrefix + name);
      keys.push_back(kConnWaitKeyPrefix + name);
      names.push_back(name);
      args.push_back(std::to_string(k.held.size() + k.spare.size()));
      for (const auto& id : k.held) args.push_back(id);
      for (const auto& id : k.spare) args.push_back(id);
    }
  }
  for (auto& [name, ids] : give_back) remove_in_redis(std::move(ids), name);
  renew_in_flight_ = true;
  link_.eval(kRenewScript, std::move(keys), std::move(args),
             [this, adopt, names = std::move(names)](const redisReply* r, std::string_view error) {
               renew_in_flight_ = false;
               if (stopped_) return;
               const bool ok =
                   error.empty() && r->type == REDIS_REPLY_ARRAY && r->elements == 2 * names.size();
               if (!ok) {
                 renew_failures_.fetch_add(1, std::memory_order_relaxed);
                 return;
               }
               {  // Who waits: a node above its share retires one connection per renewal.
                 std::lock_guard lock(mu_);
                 for (std::size_t i = 0; i < names.size(); ++i) {
                   auto it = keys_.find(names[i]);
                   if (it == keys_.end()) continue;
                   auto& k = it->second;
                   k.waiters = waiters_in(r->element[2 * i]);
                   k.starved = std::min(k.waiters, waiters_in(r->element[2 * i + 1]));
                   k.yield_due = above_fair(k, k.max);
                 }
               }
               if (adopt && mode_.load() != Mode::Shared) {
                 mode_.store(Mode::Shared);
                 spdlog::info("cluster: connection limits are leased in Redis (node {})",
                              cfg_.node);
               }
             });
}

LeaseStats ConnectionLeases::stats() const {
  LeaseStats s;
  s.shared = mode_.load() == Mode::Shared;
  s.acquired = acquired_.load();
  s.refused = refused_.load();
  s.expired = expired_.load();
  s.renew_failures = renew_failures_.load();
  s.local_grants = local_grants_.load();
  s.yielded = yielded_.load();
  std::lock_guard lock(mu_);
  for (const auto& [name, k] : keys_) {
    s.held += k.held.size();
    if (k.held.empty() && k.spare.empty()) continue;
    s.keys.push_back(
        {name, static_cast<unsigned>(k.held.size()), static_cast<unsigned>(k.spare.size()), k.max});
  }
  return s;
}

void ConnectionLeases::export_metrics(metrics::Exposition& e) const {
  const auto s = stats();
  e.add(kShared, s.shared ? 1 : 0);
  e.add(kHeld, static_cast<double>(s.held));
  e.add(kAcquired, static_cast<double>(s.acquired));
  e.add(kRefused, static_cast<double>(s.refused));
  e.add(kExpired, static_cast<double>(s.expired));
  e.add(kRenewFailures, static_cast<double>(s.renew_failures));
  e.add(kLocalGrants, static_cast<double>(s.local_grants));
  e.add(kYielded, static_cast<double>(s.yielded));
}

}  // namespace mailgate::cluster
