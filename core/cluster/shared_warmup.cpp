// cluster/shared_warmup: see shared_warmup.hpp. The scripts keep every
// decision that needs the day's count in Redis (one atomic call each); this
// node only spends what they granted.
#include "cluster/shared_warmup.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/post.hpp>
#include <cmath>
#include <cstdlib>
#include <memory>

#include "cluster/cluster.hpp"
#include "cluster/redis_link.hpp"
#include "egress/egress_plan.hpp"
#include "metrics/exposition.hpp"

namespace mailgate::cluster {
namespace {

constexpr std::int64_t kDayMs = 86'400'000;

// KEYS[1]: "mailgate:warmup:<source>/<site>/" (the day is appended here, from
// Redis's clock). A value that is not a count (text, another type: GET by
// pcall) is taken as the whole quota and overwritten. ARGV: quota, n, divisor, add, add_day. Adds
// `add` (counted while Redis was away) when add_day is today, then grants min(n, left, ceil(left /
// divisor)) (at least 1 while any is left). Returns {granted, count, day, ms left in the day,
// repaired, pushed}.
constexpr const char* kTakeScript = R"lua(
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day = math.floor(now_ms / 86400000)
local key = KEYS[1] .. string.format('%d', day)
local quota = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local divisor = tonumber(ARGV[3])
local add = tonumber(ARGV[4])
local repaired = 0
local count = 0
local raw = redis.pcall('GET', key)
if type(raw) == 'table' then raw = 'not a string' end
if raw then
  count = tonumber(raw)
  if count == nil or count < 0 or count ~= math.floor(count) or count > 1e15 then
    count = quota
    repaired = 1
  end
end
local pushed = 0
if add > 0 and tonumber(ARGV[5]) == day then
  count = count + add
  pushed = add
end
local left = quota - count
if left < 0 then left = 0 end
local cap = math.ceil(left / divisor)
if cap < 1 then cap = 1 end
local grant = math.min(n, left, cap)
count = count + grant
if grant > 0 or pushed > 0 or repaired == 1 then
  redis.call('SET', key, string.format('%d', count), 'PX', 172800000)
end
return {grant, count, day, (day + 1) * 86400000 - now_ms, repaired, pushed}
)lua";

// KEYS[1]: a day's count. ARGV[1]: unused quota to give back. The count
// never goes below 0 and keeps its expiry. Returns the new count (-1: no
// readable count there, nothing given back).
constexpr const char* kGiveBackScript = R"lua(
local raw = redis.pcall('GET', KEYS[1])
if type(raw) ~= 'string' then return -1 end
local count = tonumber(raw)
if count == nil or count < 0 or count ~= math.floor(count) or count > 1e15 then return -1 end
local left = count - tonumber(ARGV[1])
if left < 0 then left = 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 1 then ttl = 172800000 end
redis.call('SET', KEYS[1], string.format('%d', left), 'PX', ttl)
return left
)lua";

// KEYS[1]: a source's day 1. ARGV: this node's day 1, the lowest and the
// highest day believable. Keeps the earliest; a value that is not a
// believable day is replaced. Returns {day 1, replaced an invalid value}.
constexpr const char* kStartScript = R"lua(
local d = tonumber(ARGV[1])
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'table' then raw = 'not a string' end
local v = tonumber(raw or '')
local invalid = 0
if raw and (v == nil or v ~= math.floor(v) or v < tonumber(ARGV[2]) or v > tonumber(ARGV[3])) then
  invalid = 1
  v = nil
end
if v == nil or d < v then
  redis.call('SET', KEYS[1], string.format('%d', d))
  v = d
end
return {v, invalid}
)lua";

std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool integers(const redisReply* r, std::size_t n) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) return false;
  for (std::size_t i = 0; i < n; ++i)
    if (r->element[i]->type != REDIS_REPLY_INTEGER) return false;
  return true;
}

}  // namespace

SharedWarmup::SharedWarmup(const ClusterConfig& cfg, const Cluster& cluster, RedisLink& link,
                           asio::io_context& ctx)
    : cfg_(cfg), cluster_(cluster), link_(link), ctx_(ctx), timer_(ctx) {}

SharedWarmup::~SharedWarmup() = default;

unsigned SharedWarmup::live_nodes() const { return std::max(1u, cluster_.live_nodes()); }

void SharedWarmup::start() {
  stopped_ = false;
  watch();
}

void SharedWarmup::stop() {
  stopped_ = true;
  mode_ = Mode::Local;
  leaving_until_.reset();
  timer_.cancel();
}

// Every kWatchPeriod: the mode from Redis's health (each change logged
// once), then what waits for Redis to answer again: counts made while it
// was away, day 1s not yet pushed; and reserves idle for kIdleGiveBack.
void SharedWarmup::watch() {
  if (stopped_) return;
  const auto now = steady_us();
  const bool up = cluster_.redis_up() && now >= error_until_us_;
  const auto was = mode_.load();
  if (up && was != Mode::Shared) {
    mode_ = Mode::Shared;
    spdlog::info("cluster: warm-up quotas are shared through Redis {}", cfg_.redis);
  } else if (!up && cluster_.known() && was != Mode::Local) {
    mode_ = Mode::Local;
    spdlog::warn(
        "cluster: warm-up quotas are local now ({}): each (source, site) sends at most its quota "
        "/ {} live node(s) today, less what this node counted, until Redis answers again",
        cluster_.redis_up() ? "a Redis call failed" : "Redis is down", live_nodes());
  }
  if (mode_.load() == Mode::Shared) {
    struct Idle {
      std::string path;
      std::int64_t day, n;
    };
    std::vector<Idle> idle;
    std::vector<std::pair<std::string, std::int64_t>> starts;
    {
      std::lock_guard lock(mu_);
      for (auto& [path, s] : slots_) {
        if (s.unpushed > 0 && !s.refilling) start_refill(path, s, now);
        if (s.reserve > 0 && !s.refilling && now < s.day_end_us &&
            now - s.last_take_us >=
                std::chrono::duration_cast<std::chrono::microseconds>(kIdleGiveBack).count()) {
          idle.push_back({path, s.day, s.reserve});
          s.reserve = 0;
          s.spent = false;  // what it gives back may be leased again, here too
        }
      }
      for (auto& [source, st] : starts_)
        if (!st.pushed && !st.pushing) {
          st.pushing = true;
          starts.emplace_back(source, st.local);
        }
    }
    for (auto& i : idle) return_reserve(i.path, i.day, i.n, {});
    for (auto& [source, day] : starts) push_start(source, day);
  }
  timer_.expires_after(kWatchPeriod);
  timer_.async_wait([this](std::error_code ec) {
    if (!ec) watch();
  });
}

std::uint32_t SharedWarmup::lease_size(Slot& s, std::int64_t now_us, std::uint64_t wanted) {
  // Recent use: granted messages since the last refill over at least 250 ms
  // (a burst right after a refill does not read as thousands a second).
  if (s.since_us != 0) {
    const double seconds = std::max(0.25, static_cast<double>(now_us - s.since_us) / 1e6);
    const double rate = static_cast<double>(s.granted_since) / seconds;
    s.per_second = s.per_second == 0 ? rate : (s.per_second + rate) / 2;
  }
  s.granted_since = 0;
  s.since_us = now_us;
  const double by_use = std::ceil(s.per_second * kLeaseSeconds);
  return static_cast<std::uint32_t>(
      std::clamp<double>(std::min(by_use, static_cast<double>(wanted)), 1, kMaxLease));
}

void SharedWarmup::start_refill(const std::string& path, Slot& s, std::int64_t now_us,
                                std::uint64_t wanted) {
  if (s.refilling || now_us < s.retry_at_us || stopped_) return;
  s.refilling = true;
  const auto n = lease_size(s, now_us, wanted);
  asio::post(ctx_, [this, path, n, quota = s.quota, add = s.unpushed, add_day = s.unpushed_day] {
    refill(path, n, quota, add, add_day);
  });
}

egress::WarmupTake SharedWarmup::take(const std::string& source, const std::string& site,
                                      std::int64_t day, std::uint64_t quota,
                                      std::uint64_t local_today, std::uint64_t ready) {
  using Kind = egress::WarmupTake::Kind;
  const auto now = steady_us();
  const auto mode = mode_.load();
  const auto path = path_of(source, site);
  std::lock_guard lock(mu_);
  auto& s = slots_[path];
  if (s.day != -1 && now >= s.day_end_us) {
    // Redis's day is over: what was leased and not spent is lost. (Until
    // then the reserve is spent even if this node's clock has rolled over:
    // Redis's day is the one that counts.)
    lost_ += static_cast<std::uint64_t>(std::max<std::int64_t>(0, s.reserve));
    s.reserve = 0;
    s.spent = false;
    s.day = -1;
  }
  if (quota != s.quota) {  // a reload, or the schedule's next day: Redis decides again
    s.quota = quota;
    s.spent = false;
  }
  s.last_take_us = now;
  if (mode == Mode::Local) {
    // This node's share of the day, less what it counted already (leased or not).
    const auto share = std::max<std::uint64_t>(1, quota / live_nodes());
    if (local_today >= share) {
      ++waits_;
      return {Kind::Wait, kLocalWaitUs, 0};
    }
    if (s.unpushed_day != day) s.unpushed = 0;  // an earlier day's: no longer counts
    s.unpushed_day = day;
    ++s.unpushed;
    ++granted_local_;
    return {};
  }
  if (s.reserve > 0) {
    --s.reserve;
    ++s.granted_since;
    ++granted_shared_;
    // Half used and more mail ready than the reserve covers: ask for more
    // now, so it is here before it is needed.
    const auto beyond = static_cast<std::int64_t>(ready) - 1 - s.reserve;
    if (!s.spent && beyond > 0 &&
        s.reserve * 2 <=
            static_cast<std::int64_t>(std::max<double>(1, s.per_second * kLeaseSeconds)))
      start_refill(path, s, now, static_cast<std::uint64_t>(beyond));
    return {};
  }
  if (s.spent) {
    if (s.day >= day) return {Kind::Spent, 0, 0};
    // This node's clock is on the next day already (within kClockSlackMs),
    // Redis's is not: ask again when Redis's day ends, not at 00:00 UTC tomorrow.
    ++waits_;
    return {Kind::Wait,
            std::clamp<std::int64_t>(s.day_end_us - now, kWaitUs, 2 * kClockSlackMs * 1000), 0};
  }
  if (mode == Mode::Shared) start_refill(path, s, now, std::max<std::uint64_t>(1, ready));
  ++waits_;
  return {Kind::Wait, mode == Mode::Shared ? kWaitUs : kStartingWaitUs, 0};
}

void SharedWarmup::refund(const std::string& source, const std::string& site, std::int64_t day) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(path_of(source, site));
  if (it == slots_.end()) return;
  auto& s = it->second;
  if (mode_.load() == Mode::Local) {
    if (s.unpushed > 0 && s.unpushed_day == day) --s.unpushed;
  } else if (s.day == day || s.day == -1) {
    ++s.reserve;  // spent again by the next take, on this node
  }
}

bool SharedWarmup::spent(const std::string& source, const std::string& site, std::int64_t day) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(path_of(source, site));
  if (it == slots_.end()) return false;
  const auto& s = it->second;
  return s.spent && s.reserve <= 0 && s.day == day && steady_us() < s.day_end_us;
}

std::optional<std::uint64_t> SharedWarmup::shared_count(const std::string& source,
                                                        const std::string& site, std::int64_t day) {
  std::lock_guard lock(mu_);
  auto it = slots_.find(path_of(source, site));
  if (it == slots_.end() || it->second.day != day) return std::nullopt;
  return it->second.count;
}

std::optional<std::int64_t> SharedWarmup::first_day(const std::string& source,
                                                    std::int64_t local_first_day) {
  std::lock_guard lock(mu_);
  auto [it, made] = starts_.try_emplace(source);
  auto& st = it->second;
  if (made || local_first_day < st.local) {
    st.local = local_first_day;
    st.pushed = false;
    if (!st.pushing && mode_.load() == Mode::Shared) {
      st.pushing = true;
      asio::post(ctx_, [this, source, local_first_day] { push_start(source, local_first_day); });
    }
  }
  return st.shared;
}

void SharedWarmup::push_start(std::string source, std::int64_t day) {
  if (stopped_) return;
  const auto today = egress::utc_day(wall_ms() + offset_ms_.load());
  link_.eval(
      kStartScript, {kWarmupStartPrefix + source},
      {std::to_string(day), std::to_string(today - kMaxStartAgeDays), std::to_string(today + 1)},
      [this, source](const redisReply* r, std::string_view error) {
        const bool ok = error.empty() && integers(r, 2);
        const auto today = egress::utc_day(wall_ms() + offset_ms_.load());
        std::lock_guard lock(mu_);
        auto& st = starts_[source];
        st.pushing = false;
        if (!ok) return;  // pushed again by watch() once Redis answers
        st.pushed = true;
        if (r->element[1]->integer != 0) ++invalid_;
        const auto v = r->element[0]->integer;
        if (v < today - kMaxStartAgeDays || v > today + 1) {
          ++invalid_;
          return;
        }
        st.shared = v;
      });
}

void SharedWarmup::refill(std::string path, std::uint32_t n, std::uint64_t quota, std::uint64_t add,
                          std::int64_t add_day) {
  if (stopped_ || mode_.load() != Mode::Shared) {  // Redis went away since: local
    std::lock_guard lock(mu_);
    slots_[path].refilling = false;
    return;
  }
  const auto sent_us = steady_us();
  const auto sent_ms = wall_ms();
  const auto divisor = kLeftDivisor * live_nodes();
  ++refills_in_flight_;
  link_.eval(
      kTakeScript, {kWarmupKeyPrefix + path + "/"},
      {std::to_string(quota), std::to_string(n), std::to_string(divisor), std::to_string(add),
       std::to_string(add_day)},
      [this, path, n, quota, add, sent_us, sent_ms](const redisReply* r, std::string_view error) {
        const auto now = steady_us();
        --refills_in_flight_;
        // Shape and bounds: anything else is an error (nothing granted is used).
        bool ok = error.empty() && integers(r, 6);
        std::int64_t granted = 0, count = 0, day = 0, left_ms = 0, pushed = 0;
        if (ok) {
          granted = r->element[0]->integer;
          count = r->element[1]->integer;
          day = r->element[2]->integer;
          left_ms = r->element[3]->integer;
          pushed = r->element[5]->integer;
          const auto local_day = egress::utc_day(sent_ms);
          ok = granted >= 0 && granted <= n && count >= 0 && left_ms > 0 && left_ms <= kDayMs &&
               day >= local_day - 2 && day <= local_day + 2 && pushed >= 0 &&
               static_cast<std::uint64_t>(pushed) <= add;
        }
        if (!ok) {
          ++refill_errors_;
          {
            std::lock_guard lock(mu_);
            auto& s = slots_[path];
            s.refilling = false;
            s.retry_at_us = now + kErrorHoldMs * 1000;
          }
          if (refills_in_flight_ == 0) leaving_until_.reset();
          if (stopped_) return;
          failed(error.empty() ? "unexpected reply to the warm-up script" : std::string(error));
          return;
        }
        // Redis's clock at the call's midpoint: the day every node uses. A
        // clock within kClockSlackMs of it is taken as the same (the
        // measure itself is only as good as the round trip).
        const auto redis_ms = (day + 1) * kDayMs - left_ms;
        const auto offset = redis_ms - (sent_ms + (now - sent_us) / 2000);
        offset_ms_ = std::abs(offset) < kClockSlackMs ? 0 : offset;
        if (r->element[4]->integer != 0) {
          ++invalid_;
          if (!invalid_logged_) {
            invalid_logged_ = true;
            spdlog::warn(
                "cluster: the warm-up count {}{}/{} in Redis was not a count: taken as "
                "the whole quota for the day (no more sent on that path today)",
                kWarmupKeyPrefix, path, day);
          }
        }
        ++refills_;
        if (granted == 0 && n > 0) ++refills_refused_;
        pushed_ += static_cast<std::uint64_t>(pushed);
        if (stopped_) {
          // Answered after leave(): what it granted goes back too.
          // (`until` may hold a null pointer: only its owner block counts.)
          if (leaving_ && granted > 0) return_reserve(path, day, granted, leaving_until_);
          if (refills_in_flight_ == 0) leaving_until_.reset();
          return;
        }
        std::lock_guard lock(mu_);
        auto& s = slots_[path];
        s.refilling = false;
        // What was counted while Redis was away has been added (or its day is over).
        s.unpushed -= std::min(s.unpushed, add);
        if (s.day != day) {
          lost_ += static_cast<std::uint64_t>(std::max<std::int64_t>(0, s.reserve));
          s.reserve = 0;
          s.day = day;
        }
        s.day_end_us = now + left_ms * 1000;
        s.count = static_cast<std::uint64_t>(count);
        s.reserve += granted;
        // Nothing more to lease today (for the quota asked with).
        s.spent = s.quota == quota && static_cast<std::uint64_t>(count) >= quota;
      });
}

void SharedWarmup::failed(const std::string& error) {
  error_until_us_ = steady_us() + kErrorHoldMs * 1000;
  if (mode_.load() == Mode::Local) return;
  mode_ = Mode::Local;
  spdlog::warn(
      "cluster: warm-up quotas are local now (a Redis call failed: {}): each (source, site) "
      "sends at most its quota / {} live node(s) today, less what this node counted, until "
      "Redis answers again",
      error, live_nodes());
}

void SharedWarmup::return_reserve(const std::string& path, std::int64_t day, std::int64_t n,
                                  std::shared_ptr<void> until) {
  link_.eval(kGiveBackScript, {kWarmupKeyPrefix + path + "/" + std::to_string(day)},
             {std::to_string(n)},
             [this, n, until = std::move(until)](const redisReply* r, std::string_view error) {
               if (error.empty() && r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
                 returned_ += static_cast<std::uint64_t>(n);
             });
}

void SharedWarmup::leave(const std::shared_ptr<void>& until) {
  struct Back {
    std::string path;
    std::int64_t day, n;
  };
  std::vector<Back> back;
  {
    const auto now = steady_us();
    std::lock_guard lock(mu_);
    if (mode_.load() == Mode::Shared)
      for (auto& [path, s] : slots_) {
        if (s.reserve > 0 && s.day != -1 && now < s.day_end_us)
          back.push_back({path, s.day, s.reserve});
        s.reserve = 0;
      }
  }
  stopped_ = true;  // no refill from here on; takes go by the local share
  mode_ = Mode::Local;
  leaving_ = true;
  for (auto& b : back) return_reserve(b.path, b.day, b.n, until);
  // Refills on their way: what they grant is given back when they answer.
  if (refills_in_flight_ > 0) leaving_until_ = until;
}

WarmupStats SharedWarmup::stats() const {
  WarmupStats s;
  s.shared = mode_.load() == Mode::Shared;
  s.granted_shared = granted_shared_.load();
  s.granted_local = granted_local_.load();
  s.waits = waits_.load();
  s.refills = refills_.load();
  s.refills_refused = refills_refused_.load();
  s.refill_errors = refill_errors_.load();
  s.pushed = pushed_.load();
  s.returned = returned_.load();
  s.lost = lost_.load();
  s.invalid = invalid_.load();
  return s;
}

namespace {

const metrics::Family kGranted{"mailgate_cluster_warmup_granted_total",
                               metrics::Type::Counter,
                               "messages granted warm-up quota, by where it came from (redis: a "
                               "lease of the shared count; local: this node's share while Redis "
                               "is down or failing)",
                               {"backend"}};
const metrics::Family kWaits{"mailgate_cluster_warmup_waits_total", metrics::Type::Counter,
                             "warm-up takes told to wait a moment (a lease being fetched, Redis "
                             "not known yet, or this node's local share used while Redis is down)"};
const metrics::Family kRefills{"mailgate_cluster_warmup_refills_total",
                               metrics::Type::Counter,
                               "warm-up leases asked of Redis (granted; refused: the day's "
                               "quota is used; error: no valid answer)",
                               {"result"}};
const metrics::Family kFallback{"mailgate_cluster_warmup_fallback", metrics::Type::Gauge,
                                "1 while warm-up quotas are local (each path at quota / live "
                                "nodes) because Redis is down or failing"};
const metrics::Family kPushed{"mailgate_cluster_warmup_pushed_total", metrics::Type::Counter,
                              "messages counted locally while Redis was away and added to the "
                              "shared count when it answered again"};
const metrics::Family kReturned{"mailgate_cluster_warmup_returned_total", metrics::Type::Counter,
                                "leased warm-up quota given back unused (idle, or at shutdown)"};
const metrics::Family kLost{"mailgate_cluster_warmup_lost_total", metrics::Type::Counter,
                            "leased warm-up quota unused when its UTC day ended"};
const metrics::Family kInvalid{"mailgate_cluster_warmup_invalid_total", metrics::Type::Counter,
                               "warm-up counts or day 1s in Redis that were not valid "
                               "(taken as spent, or replaced)"};

}  // namespace

void SharedWarmup::export_metrics(metrics::Exposition& e) const {
  const auto s = stats();
  e.add(kGranted, static_cast<double>(s.granted_shared), {"redis"});
  e.add(kGranted, static_cast<double>(s.granted_local), {"local"});
  e.add(kWaits, static_cast<double>(s.waits));
  // Refused first: `refills` counts every answer and is bumped before it.
  e.add(kRefills, static_cast<double>(s.refills - std::min(s.refills, s.refills_refused)),
        {"granted"});
  e.add(kRefills, static_cast<double>(s.refills_refused), {"refused"});
  e.add(kRefills, static_cast<double>(s.refill_errors), {"error"});
  e.add(kFallback, fallback() ? 1 : 0);
  e.add(kPushed, static_cast<double>(s.pushed));
  e.add(kReturned, static_cast<double>(s.returned));
  e.add(kLost, static_cast<double>(s.lost));
  e.add(kInvalid, static_cast<double>(s.invalid));
}

}  // namespace mailgate::cluster
