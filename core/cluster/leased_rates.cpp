// cluster/leased_rates: see leased_rates.hpp. A LeasedRate is one limit's
// state on this node: its reserve of leased tokens, the refill in flight,
// and the local GCRA used for its share while Redis is away.
#include "cluster/leased_rates.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/post.hpp>
#include <cmath>
#include <mutex>

#include "cluster/cluster.hpp"
#include "metrics/exposition.hpp"

namespace mailgate::cluster {
namespace {

std::int64_t steady_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class LeasedRate final : public ratelimit::SharedRate,
                         public std::enable_shared_from_this<LeasedRate> {
 public:
  LeasedRate(std::shared_ptr<LeasedRates> owner, ratelimit::RateKind kind, std::string_view key,
             double per_second, std::uint32_t burst)
      : owner_(std::move(owner)),
        kind_(kind),
        key_(std::string(ratelimit::rate_kind_name(kind)) + ":" + std::string(key)),
        per_second_(per_second),
        burst_(std::max<std::uint32_t>(1, burst)),
        max_ask_(std::max<std::uint32_t>(1, burst_ / 2)),
        lease_(std::clamp<std::uint32_t>(
            static_cast<std::uint32_t>(std::floor(per_second * LeasedRates::kLeaseSeconds)), 1,
            max_ask_)),
        token_life_us_(std::max<std::int64_t>(LeasedRates::kTokenLifeMs * 1000,
                                              std::llround(1e6 / per_second))) {}

  std::int64_t acquire(std::int64_t now_us) override { return check(now_us, true); }
  std::int64_t wait_us(std::int64_t now_us) override { return check(now_us, false); }
  std::int64_t idle_at_us() const override {
    std::lock_guard lock(mu_);
    // Nothing worth keeping once its tokens are stale and its local share full.
    return std::max(last_use_us_ + token_life_us_, local_.tat_us());
  }

  const std::string& key() const { return key_; }
  double per_second() const { return per_second_; }
  std::uint32_t burst() const { return burst_; }
  ratelimit::RateKind kind() const { return kind_; }

  // On the cluster's thread: what Redis said to a refill of `n` tokens sent at `sent_us`.
  void answered(const GcraAnswer& a, std::int64_t sent_us, std::uint32_t n) {
    const auto now = steady_now_us();
    auto& st = owner_->stats_of(kind_);
    std::lock_guard lock(mu_);
    refilling_ = false;
    if (!a.error.empty()) {
      ++st.refill_errors;
      return;
    }
    ++st.refills;
    st.refill_us += static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - sent_us));
    // From Redis's first answer on, this limit is leased; what the local
    // share admitted before it (debt) is a negative reserve, paid by leases.
    heard_ = true;
    reserve_ -= debt_;
    debt_ = 0;
    if (!a.granted) {
      ++st.refills_refused;
      next_refill_us_ = now + a.wait_us;
      // The shared limit is spent: smaller leases share it more evenly.
      ask_ = std::max(lease_, ask_ / 2);
      return;
    }
    // Tokens past their life go back (a debt is not).
    if (now >= reserve_until_us_) give_back_unspent();
    reserve_ += n;
    reserve_until_us_ = now + token_life_us_;
  }
  void failed() {
    std::lock_guard lock(mu_);
    refilling_ = false;
  }
  // Gives back the tokens past their life (all of them: `leaving`). True
  // while tokens are left.
  bool return_unspent(bool leaving, const std::shared_ptr<void>& until) {
    std::lock_guard lock(mu_);
    if (leaving || steady_now_us() >= reserve_until_us_) give_back_unspent(until);
    return reserve_ > 0;
  }
  bool listed = false;  // in LeasedRates::holders_ (the cluster's thread)

 private:
  std::int64_t check(std::int64_t now_us, bool admit) {
    auto& st = owner_->stats_of(kind_);
    std::lock_guard lock(mu_);
    last_use_us_ = std::max(last_use_us_, now_us);
    const bool fallback = owner_->fallback();
    if (fallback || !heard_) {
      // This node's share: rate ÷ live nodes (the count the heartbeats last saw).
      const unsigned nodes = std::max(1u, owner_->live_nodes());
      if (nodes != local_nodes_) {
        local_ = ratelimit::Gcra(per_second_ / nodes, std::max<std::uint32_t>(1, burst_ / nodes));
        local_nodes_ = nodes;
      }
      const auto wait = admit ? local_.acquire(now_us) : local_.wait_us(now_us);
      if (admit) {
        if (wait > 0)
          ++st.refused;
        else
          ++st.granted_local;
      }
      if (!fallback) {
        if (admit && wait == 0) ++debt_;
        start_refill(now_us);
      }
      return wait;
    }
    if (now_us >= reserve_until_us_ && reserve_ > 0) {
      give_back_unspent();  // stale tokens: demand is below the lease, ask for the base size again
      ask_ = lease_;
    }
    if (reserve_ > 0) {
      if (admit) {
        --reserve_;
        ++st.granted_shared;
        // Low: ask for more now, so they are here before they are needed.
        if (reserve_ <= static_cast<std::int64_t>(ask_ / 2)) start_refill(now_us);
      }
      return 0;
    }
    if (admit) {
      ++st.refused;
      // Demand outran the reserve while the shared limit had tokens (a
      // burst): larger leases, up to the burst.
      if (now_us >= next_refill_us_) ask_ = std::min(max_ask_, ask_ * 2);
    }
    start_refill(now_us);
    return std::max(next_refill_us_ - now_us, LeasedRates::kPollUs);
  }

  // Under mu_: the reserve goes back to Redis (nothing when it is a debt).
  void give_back_unspent(std::shared_ptr<void> until = {}) {
    if (reserve_ <= 0) return;
    owner_->give_back(shared_from_this(), static_cast<std::uint32_t>(reserve_), std::move(until));
    reserve_ = 0;
  }
  void start_refill(std::int64_t now_us) {
    if (refilling_ || now_us < next_refill_us_) return;
    refilling_ = true;
    owner_->refill(shared_from_this(), ask_);
  }

  std::shared_ptr<LeasedRates> owner_;
  const ratelimit::RateKind kind_;
  const std::string key_;  // in Redis: mailgate:rate:<kind>:<key>
  const double per_second_;
  const std::uint32_t burst_;
  // At most half the burst per lease: Redis grants n only when n fit in the
  // bucket, so a lease of the whole burst would wait for a full bucket and
  // lose the time between "full" and the next ask.
  const std::uint32_t max_ask_;
  const std::uint32_t lease_;
  const std::int64_t token_life_us_;
  mutable std::mutex mu_;
  std::uint32_t ask_ = lease_;  // tokens the next refill asks for: lease_..max_ask_
  std::int64_t reserve_ = 0;    // tokens leased and not spent (< 0: a debt to pay first)
  std::int64_t reserve_until_us_ = 0;
  std::int64_t debt_ = 0;  // admitted by the local share before Redis first answered
  bool heard_ = false;     // Redis has answered a refill of this limit
  bool refilling_ = false;
  std::int64_t next_refill_us_ = 0;  // Redis said "not before"
  std::int64_t last_use_us_ = 0;
  ratelimit::Gcra local_;
  unsigned local_nodes_ = 0;
};

LeasedRates::LeasedRates(const ClusterConfig& cfg, asio::io_context& ctx, const Cluster& cluster)
    : cfg_(cfg), ctx_(ctx), cluster_(&cluster), timer_(std::make_unique<asio::steady_timer>(ctx)) {
  const auto address = parse_redis_url(cfg.redis).value_or(RedisAddress{});
  link_ = std::make_unique<RedisLink>(ctx, address.host, address.port, cfg.timeout);
  gcra_ = std::make_unique<RedisGcra>(*link_);
  fallback_open_since_ = steady_now_us();
  fallback_since_us_ = fallback_open_since_;
}

LeasedRates::~LeasedRates() = default;

std::shared_ptr<ratelimit::SharedRate> LeasedRates::make(ratelimit::RateKind kind,
                                                         std::string_view key, double per_second,
                                                         std::uint32_t burst) {
  if (!(per_second > 0)) return nullptr;
  return std::make_shared<LeasedRate>(shared_from_this(), kind, key, per_second, burst);
}

unsigned LeasedRates::live_nodes() const {
  return stopped_.load(std::memory_order_acquire) ? 1u : std::max(1u, cluster_->live_nodes());
}

void LeasedRates::refill(std::shared_ptr<LeasedRate> rate, std::uint32_t n) {
  if (stopped_.load(std::memory_order_acquire)) {
    rate->failed();
    return;
  }
  asio::post(ctx_, [this, self = shared_from_this(), rate = std::move(rate), n] {
    if (!gcra_ || fallback()) {  // stopped, or Redis went away since
      rate->failed();
      return;
    }
    const auto sent = steady_now_us();
    gcra_->acquire(rate->key(), rate->per_second(), rate->burst(), n,
                   [this, self, rate, sent, n](const GcraAnswer& a) {
                     rate->answered(a, sent, n);
                     if (!a.error.empty()) refill_failed(a.error);
                     if (a.granted && !rate->listed) {
                       rate->listed = true;
                       holders_.push_back(rate);
                     }
                   });
  });
}

void LeasedRates::give_back(std::shared_ptr<LeasedRate> rate, std::uint32_t n,
                            std::shared_ptr<void> until) {
  if (stopped_.load(std::memory_order_acquire)) return;
  asio::post(
      ctx_, [this, self = shared_from_this(), rate = std::move(rate), n, until = std::move(until)] {
        // Redis gone: nothing to give back to (a new one starts with full buckets).
        if (!gcra_ || fallback()) return;
        stats_of(rate->kind()).returned += n;
        gcra_->give_back(rate->key(), rate->per_second(), n, [until](const GcraAnswer&) {});
      });
}

void LeasedRates::return_stale() {
  std::erase_if(holders_, [](const std::weak_ptr<LeasedRate>& w) {
    auto rate = w.lock();
    if (!rate) return true;
    rate->listed = rate->return_unspent(false, {});
    return !rate->listed;
  });
}

void LeasedRates::leave(const std::shared_ptr<void>& until) {
  for (auto& w : holders_)
    if (auto rate = w.lock()) rate->return_unspent(true, until);
}

void LeasedRates::refill_failed(const std::string& error) {
  if (stopped_) return;
  error_until_us_ = steady_now_us() + kErrorHoldMs * 1000;
  set_fallback(true, "a Redis call failed: " + error);
}

void LeasedRates::set_fallback(bool on, const std::string& why) {
  if (fallback_.load() == on) return;
  const auto now = steady_now_us();
  fallback_ = on;
  if (on) {
    fallback_since_us_ = now;
    fallback_open_since_ = now;
    // Drop the connection (a stalled server holds nothing); the first refill
    // after Redis is back opens a new one.
    if (link_) link_->reset();
    spdlog::warn(
        "cluster: rate limits are local now ({}): each limit runs at this node's share, "
        "rate / {} live node(s), until Redis answers again",
        why, live_nodes());
  } else {
    fallback_us_total_ += now - fallback_since_us_;
    fallback_open_since_ = 0;
    spdlog::info("cluster: rate limits are shared through Redis {}", cfg_.redis);
  }
}

void LeasedRates::start() {
  stopped_ = false;
  watch();
}

void LeasedRates::watch() {
  if (stopped_ || !timer_) return;
  const bool up = cluster_->redis_up() && steady_now_us() >= error_until_us_.load();
  if (up) {
    ever_shared_ = true;
    set_fallback(false, {});
    return_stale();
  } else if (ever_shared_ || !fallback()) {
    set_fallback(true, cluster_->redis_up() ? "a Redis call failed" : "Redis is down");
  }
  timer_->expires_after(kWatchPeriod);
  timer_->async_wait([this](std::error_code ec) {
    if (!ec && !stopped_) watch();
  });
}

void LeasedRates::stop() {
  stopped_.store(true, std::memory_order_release);
  fallback_ = true;
  timer_.reset();  // cancels the watch
  gcra_.reset();
  link_.reset();  // fails the refills still waiting: their limits go on locally
}

double LeasedRates::fallback_seconds() const {
  std::int64_t us = fallback_us_total_.load();
  if (const auto open = fallback_open_since_.load(); open != 0) us += steady_now_us() - open;
  return static_cast<double>(us) / 1e6;
}

namespace {

const metrics::Family kGranted{"mailgate_cluster_rate_granted_total",
                               metrics::Type::Counter,
                               "events admitted by shared rate limits, by limit kind and by "
                               "where the token came from (redis: a leased token; local: this "
                               "node's share, while Redis is down or the first lease is fetched)",
                               {"kind", "backend"}};
const metrics::Family kRefused{"mailgate_cluster_rate_refused_total",
                               metrics::Type::Counter,
                               "checks of shared rate limits told to wait (or refused)",
                               {"kind"}};
const metrics::Family kRefills{"mailgate_cluster_rate_refills_total",
                               metrics::Type::Counter,
                               "token leases asked of Redis (granted, refused: the shared "
                               "limit had none yet, error: no answer)",
                               {"kind", "result"}};
const metrics::Family kRefillSeconds{"mailgate_cluster_rate_refill_seconds_total",
                                     metrics::Type::Counter,
                                     "summed round trips of the token leases Redis answered",
                                     {"kind"}};
const metrics::Family kReturned{"mailgate_cluster_rate_tokens_returned_total",
                                metrics::Type::Counter,
                                "leased tokens given back to Redis unspent (past their life, "
                                "or at shutdown), for the other nodes to use",
                                {"kind"}};
const metrics::Family kFallback{"mailgate_cluster_rate_fallback", metrics::Type::Gauge,
                                "1 while rate limits are local (each at rate / live nodes) "
                                "because Redis is down or failing"};
const metrics::Family kFallbackSeconds{"mailgate_cluster_rate_fallback_seconds_total",
                                       metrics::Type::Counter,
                                       "time spent with local rate limits since start"};

}  // namespace

void LeasedRates::export_metrics(metrics::Exposition& e) const {
  for (std::size_t i = 0; i < ratelimit::kRateKindCount; ++i) {
    const auto kind = ratelimit::rate_kind_name(static_cast<ratelimit::RateKind>(i));
    const auto& s = stats_[i];
    e.add(kGranted, static_cast<double>(s.granted_shared.load()), {kind, "redis"});
    e.add(kGranted, static_cast<double>(s.granted_local.load()), {kind, "local"});
    e.add(kRefused, static_cast<double>(s.refused.load()), {kind});
    // Refused first: `refills` counts every answer and is bumped before it.
    const auto refused = s.refills_refused.load();
    const auto answered = s.refills.load();
    e.add(kRefills, static_cast<double>(answered - std::min(answered, refused)), {kind, "granted"});
    e.add(kRefills, static_cast<double>(refused), {kind, "refused"});
    e.add(kRefills, static_cast<double>(s.refill_errors.load()), {kind, "error"});
    e.add(kRefillSeconds, static_cast<double>(s.refill_us.load()) / 1e6, {kind});
    e.add(kReturned, static_cast<double>(s.returned.load()), {kind});
  }
  e.add(kFallback, fallback() ? 1 : 0);
  e.add(kFallbackSeconds, fallback_seconds());
}

}  // namespace mailgate::cluster
