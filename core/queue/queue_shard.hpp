// queue/queue_shard: the delivery queue of one worker: the destinations this
// worker owns (DESIGN §3), each with a ready queue, and one time-ordered
// scheduled queue (a binary heap: O(log n)) for everything waiting for its
// next attempt. Not thread-safe: every call runs on the owning worker.
// Promises: a destination never has more than max_connections connections
// started by this shard; a suspended destination starts none; a message past
// max_age is handed to the expiry callback even while it waits behind a
// throttle in a ready queue (swept about once a second); a destination with
// nothing ready, scheduled, in flight or connected, not suspended, not
// backing off, whose rate limiters are back to full and which has been idle
// for idle_removal() is removed (swept with the expiry), so the map holds
// the destinations in use, not every domain ever seen. What a removed
// destination loses is only what a new one rebuilds: its egress_path
// shaping (evaluated again by the next message) and the route hook's TLS
// mode and AUTH (carried again by the next item). Its summary and the
// shard's totals() are O(destinations): counts and the oldest reception are
// kept as items come and go, nothing is copied or sorted per scrape.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "queue/fair_queue.hpp"
#include "queue/item.hpp"
#include "queue/path_gate.hpp"
#include "queue/retry_policy.hpp"
#include "ratelimit/rate_limit.hpp"
#include "smtp/tls_mode.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "tenancy/tenancy.hpp"

namespace mailgate::queue {

// How a destination may be used (delivery.* defaults, or its egress_path).
struct Shaping {
  unsigned max_connections = 10;
  unsigned max_messages_per_connection = 100;
  // Unlimited by default; shared by the cluster's nodes when one is configured.
  ratelimit::RateLimit message_rate;
  ratelimit::RateLimit connection_rate;
  std::optional<smtp::TlsMode> tls;  // none: delivery.tls
  std::string source_address;        // "" = any
  std::string ehlo_name;             // "" = hostname
};

struct Destination {
  std::string name;
  // The egress source its connections use ("" = the default). Each source
  // of a destination has its own Destination (queue, limits, connections);
  // they share the name and, being keyed by it, the owner worker.
  std::string source;
  // The provider site (mailgate.site) its MX hosts belong to; "" = none.
  // Changed only while no connection runs (its site slots are counted by it).
  std::string site;
  bool site_pending = false;  // its MX lookup for the site is running
  unsigned site_slots = 0;    // its connections counted at (source, site) (PathGate)
  // Cluster leases its connections hold (PathGate): of the destination's
  // shared max_connections, and of its site's.
  unsigned destination_leases = 0, site_leases = 0;
  Shaping shaping;
  std::uint64_t shaping_version = 0;       // policy version it came from (0: defaults)
  bool shaping_pending = false;            // an egress_path call is running
  std::optional<smtp::TlsMode> route_tls;  // the route hook's, of the newest item that had one
  // The credentials its connections log in with: those of the newest item
  // added (every item of a "user@[host]:port" destination has that user).
  std::shared_ptr<const spool::RouteAuth> route_auth;
  // Wakes the destination when its rate limit admits the next message or connection.
  std::unique_ptr<asio::steady_timer> rate_timer;
  std::int64_t rate_timer_at_us = 0;
  // Ready items, fair between tenants (fair_queue.hpp); those of a
  // suspended tenant or campaign stay in it, held.
  FairQueue ready;
  std::size_t scheduled = 0;  // items of this destination in the scheduled heap
  std::size_t in_flight = 0;  // taken (or expiring) and not yet settled
  unsigned active = 0;        // connections running (idle ones included)
  // Connections waiting for work (LIFO reuse). A connection may run on another
  // worker: its timer is cancelled on its own executor, never from here.
  std::deque<std::shared_ptr<asio::steady_timer>> idle;
  bool suspended = false;
  std::int64_t backoff_until_ms = 0;
  // Reception time (ms) → how many waiting (ready or scheduled) items have it:
  // the oldest is the first key, kept as items come and go.
  std::map<std::int64_t, std::uint32_t> waiting_received;
  std::int64_t last_used_ms = 0;  // last add, take, settle or connection close
};

// The shard as the /metrics scrape sees it: sums over its destinations.
struct ShardTotals {
  std::size_t destinations = 0;
  std::size_t ready = 0, scheduled = 0, in_flight = 0;
  // Waiting items (ready + scheduled) of suspended destinations, and ready
  // items held by a tenant or campaign suspension.
  std::size_t suspended = 0;
  std::int64_t oldest_ms = 0;  // reception time of the oldest waiting message (0: none)
  void add(const ShardTotals& o);
};

struct DestinationSummary {
  std::string name;
  std::string source, site;
  std::size_t ready = 0, scheduled = 0, in_flight = 0;
  unsigned active = 0;
  bool suspended = false;
  std::size_t held = 0;        // ready items held by a tenant or campaign suspension
  std::int64_t oldest_ms = 0;  // reception time of the oldest queued message (0: none)
};

// One queued item as the admin API lists it.
struct ItemView {
  std::string destination;
  spool::MessageId id;
  std::uint32_t attempts = 0;
  std::int64_t next_ms = 0;
  bool scheduled = false;
  std::shared_ptr<const tenancy::Tenancy> tenancy;  // null: none
  bool held = false;                                // a tenant or campaign suspension holds it
};

// Which items an admin action is about: every item (empty tenant), or a
// tenant's (only one campaign's when set).
struct TenancyFilter {
  std::string tenant, campaign;
  bool matches(const Item& item) const {
    if (tenant.empty()) return true;
    const auto& t = item.tenancy_or_none();
    return t.tenant == tenant && (campaign.empty() || t.campaign == campaign);
  }
};

// Where one message waits at one destination (GET /api/v1/messages/ID).
struct ItemState {
  enum class Where { Ready, Scheduled, InFlight } where = Where::Ready;
  std::int64_t next_ms = 0;  // when it is attempted next (Ready: now, as soon as a connection can)
  bool suspended = false;    // its destination, tenant or campaign is suspended
};

class QueueShard {
 public:
  // Starts one connection for `d` (the callee increments nothing; the shard did).
  using Starter = std::function<void(Destination& d)>;
  // A message expired while waiting (bounce it).
  using Expirer = std::function<void(Destination& d, Item item)>;
  // true when `d.shaping` is current; false when it started updating it and
  // will call shaping_ready(d) (no connection starts meanwhile).
  using Shaper = std::function<bool(Destination& d)>;

  QueueShard(asio::io_context& ctx, RetryPolicy policy, Shaping defaults, Starter start,
             Expirer expire);
  void set_shaper(Shaper s) { shaper_ = std::move(s); }
  // Sources and sites (null: none). Not owned; outlives the shard.
  void set_gate(PathGate* g) { gate_ = g; }
  // How soon a destination refused a site slot asks again.
  static constexpr std::int64_t kPathRetryUs = PathGate::kOpenRetryUs;
  void shaping_ready(Destination& d);
  const Shaping& default_shaping() const { return defaults_; }

  void add(const std::string& destination, Item item);

  // For connections of `d`: the next ready item, or nothing (then the
  // connection should close, and call connection_closed()). Nothing also when
  // the destination's message rate does not admit one yet (it is woken when it does).
  std::optional<Item> take(Destination& d);
  void retry_later(Destination& d, Item item, std::int64_t when_ms);
  // A taken item is settled for good (delivered, bounced, or dropped).
  void finished(Destination& d);
  void connection_closed(Destination& d);
  // A connection with nothing to do waits on `t` (up to its own timeout) for
  // work: add() wakes it (cancels the timer) before starting new connections.
  void park(Destination& d, std::shared_ptr<asio::steady_timer> t);
  void unpark(Destination& d, const std::shared_ptr<asio::steady_timer>& t);
  // False when an idle connection of `d` should close at once (PathGate::may_linger).
  bool may_linger(const Destination& d) const {
    return !gate_ || !d.ready.empty() || gate_->may_linger(d);
  }
  // False when a connection of `d` that finished a message should close
  // rather than take the next (PathGate::keep_connection).
  bool keep_connection(Destination& d) { return !gate_ || gate_->keep_connection(d); }
  // A connection-level failure (refused, timeout, 421 greeting): the whole
  // destination waits until `until_ms`; its ready items move back together.
  void defer_destination(Destination& d, std::int64_t until_ms);

  bool suspend(const std::string& destination);  // creates it when unknown: always true
  bool resume(const std::string& destination);
  bool flush(const std::string& destination);  // scheduled → ready now
  // Scheduled items of `filter`'s tenant (and campaign) → ready now, at
  // `destination` or (empty) every destination of the shard. How many moved.
  std::size_t flush(const std::string& destination, const TenancyFilter& filter);
  // Tenant and campaign suspensions (tenancy::Suspension): every shard has
  // all of them (a rule without a destination holds mail everywhere). hold()
  // adds or replaces the same rule; release() removes it (false: there was
  // none); a rule whose `until` passed is released by the sweep.
  void hold(const tenancy::Suspension& s);
  bool release(const tenancy::Suspension& s);
  const std::vector<tenancy::Suspension>& holds() const { return holds_; }
  // Is an item of `t` at `d` held by a tenant or campaign suspension?
  bool held(const Destination& d, const tenancy::Tenancy& t) const;
  // Suspended destinations (persisted by the caller, reloaded at start).
  std::vector<std::string> suspended() const;

  std::vector<DestinationSummary> summary() const;
  ShardTotals totals() const;
  // Where `id` waits at `destination`: ready, scheduled (with the real next
  // attempt, destination backoff included) or, when it is neither, in flight
  // (being attempted or settled); nothing when the shard does not know the
  // destination. O(items of the shard) for a scheduled item: admin only.
  std::optional<ItemState> item_state(const std::string& destination,
                                      const spool::MessageId& id) const;
  // Every item waiting in a ready queue or the scheduled heap (admin listing).
  std::vector<ItemView> items(const std::string& destination_filter) const;
  // Removes waiting items that match (admin bounce); they count as in flight
  // until finished(). Items being attempted right now are not touched.
  std::vector<std::pair<Destination*, Item>> extract(const std::string& destination,
                                                     const spool::MessageId* id,
                                                     const TenancyFilter& filter = {});
  std::size_t size() const { return total_; }
  std::size_t destinations() const { return dests_.size(); }
  // How long an unused destination stays (see the header comment).
  static constexpr std::chrono::milliseconds kIdleRemoval{std::chrono::minutes(10)};
  void set_idle_removal(std::chrono::milliseconds after) { idle_removal_ms_ = after.count(); }
  bool stopped() const { return stopped_; }
  const RetryPolicy& policy() const { return policy_; }
  std::mt19937_64& rng() { return rng_; }
  void stop();

 private:
  struct Scheduled {
    std::int64_t when;
    Destination* dest;
    Item item;
    bool operator>(const Scheduled& o) const { return when > o.when; }
  };
  Destination& destination(const std::string& name, const std::string& source = {});
  static std::string key_of(const std::string& name, const std::string& source);
  template <class F>
  void each_named(const std::string& name, F&& f);  // every source's Destination of `name`
  void pump(Destination& d);
  bool take_through_gate(Destination& d, std::int64_t now_us);
  ItemState item_state_at(const Destination& d, const spool::MessageId& id) const;
  void schedule(Destination& d, Item item, std::int64_t when);
  void arm();
  void arm_rate_timer(Destination& d, std::int64_t at_us);
  void on_timer();
  void sweep_expired(std::int64_t now);
  void remove_idle(std::int64_t now);
  void expire_holds(std::int64_t now);
  void rehold_all();
  FairQueue::HoldTest hold_test(const Destination& d) const;
  static void note_waiting(Destination& d, const Item& item);
  static void note_left(Destination& d, const Item& item);
  // The heap's items, in no order (admin listings: no copy of the heap).
  struct Heap : std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> {
    const std::vector<Scheduled>& items() const { return c; }
  };

  RetryPolicy policy_;
  Shaping defaults_;
  Starter start_;
  Expirer expire_;
  Shaper shaper_;
  PathGate* gate_ = nullptr;
  asio::io_context& ctx_;
  asio::steady_timer timer_;
  std::int64_t armed_for_ = 0;
  std::int64_t next_sweep_ = 0;
  bool stopped_ = false;
  Heap heap_;
  std::int64_t idle_removal_ms_ = kIdleRemoval.count();
  std::unordered_map<std::string, std::unique_ptr<Destination>> dests_;
  std::size_t total_ = 0;
  std::vector<tenancy::Suspension> holds_;
  std::mt19937_64 rng_{std::random_device{}()};
};

std::int64_t now_ms();

}  // namespace mailgate::queue
