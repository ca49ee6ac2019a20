// queue/queue_shard: see queue_shard.hpp.
#include "queue/queue_shard.hpp"

#include <algorithm>
#include <asio/post.hpp>
#include <chrono>

namespace mailgate::queue {

std::int64_t now_ms() { return spool::wall_clock_ms(); }

std::int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {
constexpr std::int64_t kSweepEveryMs = 1000;
// A destination under a message rate whose every connection is busy looks
// again this much later: a token still free then is waiting on connections.
constexpr std::int64_t kAllBusyRecheckUs = 20'000;
}  // namespace

QueueShard::QueueShard(asio::io_context& ctx, RetryPolicy policy, Shaping defaults, Starter start,
                       Expirer expire)
    : policy_(policy),
      defaults_(std::move(defaults)),
      start_(std::move(start)),
      expire_(std::move(expire)),
      ctx_(ctx),
      timer_(ctx) {
  defaults_.max_connections = std::max(1u, defaults_.max_connections);
  defaults_.max_messages_per_connection = std::max(1u, defaults_.max_messages_per_connection);
}

void ShardTotals::add(const ShardTotals& o) {
  destinations += o.destinations;
  ready += o.ready;
  scheduled += o.scheduled;
  in_flight += o.in_flight;
  suspended += o.suspended;
  if (o.oldest_ms && (oldest_ms == 0 || o.oldest_ms < oldest_ms)) oldest_ms = o.oldest_ms;
}

std::string QueueShard::key_of(const std::string& name, const std::string& source) {
  // No domain or route name holds a control character.
  return source.empty() ? name : name + '\x1f' + source;
}

Destination& QueueShard::destination(const std::string& name, const std::string& source) {
  auto key = key_of(name, source);
  auto it = dests_.find(key);
  if (it != dests_.end()) return *it->second;
  auto d = std::make_unique<Destination>();
  d->name = name;
  d->source = source;
  d->shaping = defaults_;
  d->last_used_ms = now_ms();
  if (!source.empty()) {  // a suspension of the name holds for every source
    auto plain = dests_.find(name);
    d->suspended = plain != dests_.end() && plain->second->suspended;
  }
  return *dests_.emplace(std::move(key), std::move(d)).first->second;
}

template <class F>
void QueueShard::each_named(const std::string& name, F&& f) {
  for (auto& [key, d] : dests_)
    if (d->name == name) f(*d);
}

void QueueShard::note_waiting(Destination& d, const Item& item) {
  ++d.waiting_received[static_cast<std::int64_t>(item.id.millis())];
}

void QueueShard::note_left(Destination& d, const Item& item) {
  auto it = d.waiting_received.find(static_cast<std::int64_t>(item.id.millis()));
  if (it != d.waiting_received.end() && --it->second == 0) d.waiting_received.erase(it);
}

void QueueShard::shaping_ready(Destination& d) { pump(d); }

void QueueShard::arm_rate_timer(Destination& d, std::int64_t at_us) {
  if (d.rate_timer_at_us != 0 && d.rate_timer_at_us <= at_us) return;
  if (!d.rate_timer) d.rate_timer = std::make_unique<asio::steady_timer>(ctx_);
  d.rate_timer_at_us = at_us;
  d.rate_timer->expires_after(
      std::chrono::microseconds(std::max<std::int64_t>(0, at_us - steady_us())));
  d.rate_timer->async_wait([this, dp = &d](std::error_code ec) {
    if (ec || stopped_) return;
    dp->rate_timer_at_us = 0;
    pump(*dp);
  });
}

void QueueShard::add(const std::string& name, Item item) {
  if (stopped_) return;
  if (gate_ && !item.source_set) {
    item.source = gate_->pick_source(name, item);
    item.source_set = true;
  }
  auto& d = destination(name, item.source);
  if (item.tls) d.route_tls = item.tls;
  if (item.auth) d.route_auth = item.auth;
  ++total_;
  const auto now = now_ms();
  d.last_used_ms = now;
  note_waiting(d, item);
  const auto when = std::max(item.next_ms, d.backoff_until_ms);
  if (when > now) {
    schedule(d, std::move(item), when);
  } else {
    d.ready.push(std::move(item), hold_test(d));
    pump(d);
  }
  arm();
}

void QueueShard::schedule(Destination& d, Item item, std::int64_t when) {
  item.next_ms = when;
  ++d.scheduled;
  heap_.push({when, &d, std::move(item)});
}

std::optional<Item> QueueShard::take(Destination& d) {
  if (d.suspended || d.ready.takeable() == 0 || stopped_) return std::nullopt;
  const auto now = steady_us();
  if (gate_ && !take_through_gate(d, now)) return std::nullopt;
  if (auto wait = d.shaping.message_rate.acquire(now); wait > 0) {
    // A shared rate may change between the gate's wait_us() and this
    // acquire() (a lease answered, Redis went away): the quota taken goes back.
    if (gate_) gate_->refund_quota(d);
    arm_rate_timer(d, now + wait);
    return std::nullopt;
  }
  Item it = std::move(*d.ready.take());
  --total_;
  ++d.in_flight;
  note_left(d, it);
  d.last_used_ms = now_ms();
  // pump() opens a connection for a paced destination only when the rate
  // wakes it and none is idle; connections that never wait for the rate (each
  // slower than the tokens come) would never wake it, and the tokens would
  // age unspent (a shared rate gives them back, this node's share is lost).
  if (!d.shaping.message_rate.unlimited() && d.idle.empty() && d.ready.takeable() > 0 &&
      d.active < d.shaping.max_connections)
    arm_rate_timer(d, now + kAllBusyRecheckUs);
  return it;
}

// Warm-up first (items this source may not send today go to another source
// of their pool, or wait for 00:00 UTC; a quota not known yet waits a
// moment, like a rate), then the destination's and the
// site's rates. True: the front item may be taken (its quota counted).
bool QueueShard::take_through_gate(Destination& d, std::int64_t now_us) {
  if (auto held = gate_->held_us(d, now_us); held > 0) {
    arm_rate_timer(d, now_us + held);
    return false;
  }
  while (const Item* next = d.ready.peek()) {
    auto q = gate_->take_quota(d, *next);
    if (q.kind == PathGate::Quota::Kind::Go) break;
    if (q.kind == PathGate::Quota::Kind::Wait) {  // shared quota on its way: the item stays
      arm_rate_timer(d, now_us + std::max<std::int64_t>(1, q.wait_us));
      return false;
    }
    Item it = std::move(*d.ready.take());  // the item peek() showed
    if (q.kind == PathGate::Quota::Kind::Move) {
      note_left(d, it);
      --total_;
      it.source = std::move(q.source);
      it.source_set = true;
      it.next_ms = 0;
      add(d.name, std::move(it));  // may create a Destination: `d` stays valid (unique_ptr)
    } else {
      schedule(d, std::move(it), q.until_ms);  // not an attempt: its count stays
      arm();
    }
  }
  if (d.ready.takeable() == 0) return false;
  std::int64_t wait = d.shaping.message_rate.wait_us(now_us);
  if (wait == 0) wait = gate_->admit_message(d, now_us);
  if (wait > 0) {
    gate_->refund_quota(d);
    arm_rate_timer(d, now_us + wait);
    return false;
  }
  return true;
}

void QueueShard::finished(Destination& d) {
  if (d.in_flight > 0) --d.in_flight;
  d.last_used_ms = now_ms();
}

void QueueShard::retry_later(Destination& d, Item item, std::int64_t when_ms) {
  finished(d);
  if (stopped_) return;
  ++total_;
  note_waiting(d, item);
  schedule(d, std::move(item), std::max(when_ms, d.backoff_until_ms));
  arm();
}

namespace {
void wake(const std::shared_ptr<asio::steady_timer>& t) {
  asio::post(t->get_executor(), [t] { t->cancel(); });
}
}  // namespace

void QueueShard::park(Destination& d, std::shared_ptr<asio::steady_timer> t) {
  d.idle.push_back(std::move(t));
}

void QueueShard::unpark(Destination& d, const std::shared_ptr<asio::steady_timer>& t) {
  auto it = std::find(d.idle.begin(), d.idle.end(), t);
  if (it != d.idle.end()) d.idle.erase(it);
}

void QueueShard::connection_closed(Destination& d) {
  if (d.active > 0) --d.active;
  if (gate_) gate_->close_connection(d);
  d.last_used_ms = now_ms();
  pump(d);
}

void QueueShard::defer_destination(Destination& d, std::int64_t until_ms) {
  d.backoff_until_ms = std::max(d.backoff_until_ms, until_ms);
  d.ready.erase_if([](const Item&) { return true; },
                   [&](Item&& item) { schedule(d, std::move(item), d.backoff_until_ms); });
  arm();
}

bool QueueShard::suspend(const std::string& name) {
  // Creates the destination: an operator may suspend one before its mail comes.
  destination(name).suspended = true;
  each_named(name, [](Destination& d) { d.suspended = true; });  // every source's
  return true;
}

bool QueueShard::resume(const std::string& name) {
  bool any = false;
  std::vector<Destination*> named;
  each_named(name, [&](Destination& d) { named.push_back(&d); });
  for (auto* d : named) {
    d->suspended = false;
    pump(*d);
    any = true;
  }
  return any;
}

bool QueueShard::flush(const std::string& name) {
  std::vector<Destination*> named;
  each_named(name, [&](Destination& d) { named.push_back(&d); });
  if (named.empty()) return false;
  for (auto* d : named) d->backoff_until_ms = 0;
  flush(name, TenancyFilter{});
  return true;
}

std::size_t QueueShard::flush(const std::string& name, const TenancyFilter& filter) {
  // Rebuild the heap without the matching items (flush is rare). An empty
  // name: every destination (a tenant's flush); each source's destination
  // of a name is matched by the name.
  std::vector<Scheduled> keep;
  std::vector<Destination*> touched;
  std::size_t moved = 0;
  while (!heap_.empty()) {
    auto s = heap_.top();
    heap_.pop();
    if ((name.empty() || s.dest->name == name) && filter.matches(s.item) &&
        s.dest->backoff_until_ms == 0) {
      --s.dest->scheduled;
      s.dest->ready.push(std::move(s.item), hold_test(*s.dest));
      touched.push_back(s.dest);
      ++moved;
    } else {
      keep.push_back(std::move(s));
    }
  }
  for (auto& s : keep) heap_.push(std::move(s));
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (auto* d : touched) pump(*d);
  arm();
  return moved;
}

bool QueueShard::held(const Destination& d, const tenancy::Tenancy& t) const {
  if (t.tenant.empty()) return false;
  for (const auto& h : holds_)
    if (h.holds(t.tenant, t.campaign, d.name)) return true;
  return false;
}

FairQueue::HoldTest QueueShard::hold_test(const Destination& d) const {
  if (holds_.empty()) return {};
  return [this, &d](const tenancy::Tenancy& t) { return held(d, t); };
}

void QueueShard::rehold_all() {
  for (auto& [name, d] : dests_) {
    if (d->ready.empty()) continue;
    if (d->ready.rehold(hold_test(*d))) pump(*d);
  }
}

void QueueShard::hold(const tenancy::Suspension& s) {
  auto it = std::find_if(holds_.begin(), holds_.end(),
                         [&](const tenancy::Suspension& h) { return h.same_rule(s); });
  if (it != holds_.end())
    *it = s;
  else
    holds_.push_back(s);
  rehold_all();
}

bool QueueShard::release(const tenancy::Suspension& s) {
  auto it = std::find_if(holds_.begin(), holds_.end(),
                         [&](const tenancy::Suspension& h) { return h.same_rule(s); });
  if (it == holds_.end()) return false;
  holds_.erase(it);
  rehold_all();
  return true;
}

void QueueShard::expire_holds(std::int64_t now) {
  const auto n = holds_.size();
  std::erase_if(holds_, [now](const tenancy::Suspension& h) { return h.expired(now); });
  if (holds_.size() != n) rehold_all();
}

std::vector<std::string> QueueShard::suspended() const {
  std::vector<std::string> out;
  for (const auto& [key, d] : dests_)
    if (d->suspended && d->source.empty()) out.push_back(d->name);
  return out;
}

namespace {
std::int64_t oldest_waiting(const Destination& d) {
  return d.waiting_received.empty() ? 0 : d.waiting_received.begin()->first;
}
}  // namespace

std::vector<DestinationSummary> QueueShard::summary() const {
  std::vector<DestinationSummary> out;
  out.reserve(dests_.size());
  for (const auto& [key, d] : dests_)
    out.push_back({d->name, d->source, d->site, d->ready.size(), d->scheduled, d->in_flight,
                   d->active, d->suspended, d->ready.held(), oldest_waiting(*d)});
  return out;
}

ShardTotals QueueShard::totals() const {
  ShardTotals t;
  t.destinations = dests_.size();
  for (const auto& [name, d] : dests_) {
    // Each waiting item in exactly one state: a suspended destination's are "suspended".
    // A ready item held by a tenant suspension is "suspended" too.
    t.suspended += d->suspended ? d->ready.size() : d->ready.held();
    if (!d->suspended) t.ready += d->ready.takeable();
    (d->suspended ? t.suspended : t.scheduled) += d->scheduled;
    t.in_flight += d->in_flight;
    const auto oldest = oldest_waiting(*d);
    if (oldest && (t.oldest_ms == 0 || oldest < t.oldest_ms)) t.oldest_ms = oldest;
  }
  return t;
}

std::optional<ItemState> QueueShard::item_state(const std::string& destination,
                                                const spool::MessageId& id) const {
  // The item waits at one of the name's sources, or none: in flight.
  std::optional<ItemState> found;
  for (const auto& [key, dp] : dests_) {
    if (dp->name != destination) continue;
    auto st = item_state_at(*dp, id);
    if (st.where != ItemState::Where::InFlight) return st;
    if (!found) found = st;
  }
  return found;
}

ItemState QueueShard::item_state_at(const Destination& d, const spool::MessageId& id) const {
  ItemState st;
  st.suspended = d.suspended;
  bool found = false;
  d.ready.for_each([&](const Item& item, bool held) {
    if (found || item.id != id) return;
    found = true;
    st.where = ItemState::Where::Ready;
    st.next_ms = std::max(now_ms(), d.backoff_until_ms);
    st.suspended = st.suspended || held;
  });
  if (found) return st;
  if (d.scheduled) {
    for (const auto& s : heap_.items()) {
      if (s.dest == &d && s.item.id == id) {
        st.where = ItemState::Where::Scheduled;
        st.next_ms = std::max(s.when, d.backoff_until_ms);  // a due item waits out the backoff
        st.suspended = st.suspended || held(d, s.item.tenancy_or_none());
        return st;
      }
    }
  }
  st.where = ItemState::Where::InFlight;
  st.next_ms = 0;
  return st;
}

std::vector<ItemView> QueueShard::items(const std::string& filter) const {
  std::vector<ItemView> out;
  for (const auto& [key, d] : dests_) {
    if (!filter.empty() && filter != d->name) continue;
    d->ready.for_each([&](const Item& it, bool held) {
      out.push_back({d->name, it.id, it.attempts, it.next_ms, false, it.tenancy, held});
    });
  }
  for (const auto& s : heap_.items())
    if (filter.empty() || filter == s.dest->name)
      out.push_back({s.dest->name, s.item.id, s.item.attempts,
                     std::max(s.when, s.dest->backoff_until_ms), true, s.item.tenancy,
                     held(*s.dest, s.item.tenancy_or_none())});
  return out;
}

std::vector<std::pair<Destination*, Item>> QueueShard::extract(const std::string& destination,
                                                               const spool::MessageId* id,
                                                               const TenancyFilter& filter) {
  std::vector<std::pair<Destination*, Item>> out;
  auto match = [&](const Destination& d, const Item& it) {
    return (destination.empty() || d.name == destination) && (id == nullptr || it.id == *id) &&
           filter.matches(it);
  };
  for (auto& [key, d] : dests_) {
    Destination* dp = d.get();
    if (!destination.empty() && dp->name != destination) continue;
    dp->ready.erase_if([&](const Item& it) { return match(*dp, it); },
                       [&](Item&& it) {
                         note_left(*dp, it);
                         out.emplace_back(dp, std::move(it));
                         --total_;
                         ++dp->in_flight;
                       });
  }
  std::vector<Scheduled> keep;
  while (!heap_.empty()) {
    auto s = heap_.top();
    heap_.pop();
    if (match(*s.dest, s.item)) {
      --s.dest->scheduled;
      --total_;
      ++s.dest->in_flight;
      note_left(*s.dest, s.item);
      out.emplace_back(s.dest, std::move(s.item));
    } else {
      keep.push_back(std::move(s));
    }
  }
  for (auto& s : keep) heap_.push(std::move(s));
  return out;
}

void QueueShard::pump(Destination& d) {
  if (stopped_ || d.suspended || d.ready.takeable() == 0) return;
  if (shaper_ && !shaper_(d)) return;
  const auto now = steady_us();
  // Nothing may go before the message rate admits the next one: wake no
  // connection and open none until then.
  if (auto wait = d.shaping.message_rate.wait_us(now); wait > 0) {
    arm_rate_timer(d, now + wait);
    return;
  }
  if (gate_) {  // a path held by traffic shaping: nothing opens or leaves until asked again
    if (auto held = gate_->held_us(d, now); held > 0) {
      arm_rate_timer(d, now + held);
      return;
    }
  }
  // Reuse idle connections first (most recently parked: its TCP state is warmest).
  std::size_t woken = 0;
  const auto ready = d.ready.takeable();
  const bool had_idle = !d.idle.empty();
  while (!d.idle.empty() && woken < ready) {
    wake(d.idle.back());
    d.idle.pop_back();
    ++woken;
  }
  // Under a message rate the queue is not the work there is: the rate is.
  // Such a destination opens another connection only when none was idle, one
  // per pump (each pump follows a token or a finished message), so it opens
  // what the rate keeps busy, not max_connections for a queue the rate
  // drains slowly (with cluster leases, that churn cost the shared rate 14%).
  const bool paced = !d.shaping.message_rate.unlimited();
  if (paced && had_idle) return;
  // One more connection only while there is more ready work than busy connections.
  while (d.active < d.shaping.max_connections && ready > d.active - d.idle.size()) {
    if (auto wait = d.shaping.connection_rate.wait_us(now); wait > 0) {
      arm_rate_timer(d, now + wait);
      break;
    }
    if (gate_ && !gate_->open_connection(d)) {  // the site's (or the cluster's) slots are in use
      arm_rate_timer(d, now + gate_->open_retry_us(d));
      break;
    }
    d.shaping.connection_rate.acquire(now);
    ++d.active;
    start_(d);
    if (paced) break;
  }
}

void QueueShard::arm() {
  if (stopped_) return;
  std::int64_t next = next_sweep_ ? next_sweep_ : now_ms() + kSweepEveryMs;
  if (!heap_.empty()) next = std::min(next, heap_.top().when);
  if (armed_for_ != 0 && armed_for_ <= next) return;
  armed_for_ = next;
  timer_.expires_after(std::chrono::milliseconds(std::max<std::int64_t>(0, next - now_ms())));
  timer_.async_wait([this](std::error_code ec) {
    if (ec || stopped_) return;
    on_timer();
  });
}

void QueueShard::on_timer() {
  armed_for_ = 0;
  const auto now = now_ms();
  std::vector<Destination*> touched;
  while (!heap_.empty() && heap_.top().when <= now) {
    auto s = heap_.top();
    heap_.pop();
    if (s.dest->backoff_until_ms > now) {  // due, but its destination was deferred since
      s.when = s.item.next_ms = s.dest->backoff_until_ms;
      heap_.push(std::move(s));
      continue;
    }
    --s.dest->scheduled;
    s.dest->ready.push(std::move(s.item), hold_test(*s.dest));
    touched.push_back(s.dest);
  }
  if (now >= next_sweep_) {
    sweep_expired(now);
    expire_holds(now);
    remove_idle(now);
    next_sweep_ = now + kSweepEveryMs;
  }
  for (auto* d : touched) pump(*d);
  arm();
}

void QueueShard::sweep_expired(std::int64_t now) {
  for (auto& [name, d] : dests_) {
    Destination* dp = d.get();
    if (dp->ready.empty()) continue;
    // Held items expire too: a suspension does not make mail immortal.
    std::vector<Item> expired;
    dp->ready.erase_if(
        [&](const Item& it) {
          return policy_.expired(static_cast<std::int64_t>(it.id.millis()), now);
        },
        [&](Item&& it) { expired.push_back(std::move(it)); });
    for (auto& item : expired) {
      note_left(*dp, item);
      --total_;
      ++dp->in_flight;
      expire_(*dp, std::move(item));
    }
  }
}

// Nothing refers to a destination removed here: no item (ready, scheduled or
// in flight) and no connection (active, parked) holds it, no egress_path
// evaluation or rate timer is pending; and nothing it knows would be missed:
// no suspension or backoff in force, its rate limiters are full again.
void QueueShard::remove_idle(std::int64_t now) {
  const auto now_us = steady_us();
  for (auto it = dests_.begin(); it != dests_.end();) {
    const Destination& d = *it->second;
    const bool unused = d.ready.empty() && d.scheduled == 0 && d.in_flight == 0 && d.active == 0 &&
                        d.idle.empty() && !d.suspended && !d.shaping_pending && !d.site_pending &&
                        d.rate_timer_at_us == 0 && d.backoff_until_ms <= now &&
                        d.shaping.message_rate.idle_at_us() <= now_us &&
                        d.shaping.connection_rate.idle_at_us() <= now_us;
    if (unused && now - d.last_used_ms >= idle_removal_ms_)
      it = dests_.erase(it);
    else
      ++it;
  }
}

void QueueShard::stop() {
  stopped_ = true;
  timer_.cancel();
  for (auto& [name, d] : dests_) {
    if (d->rate_timer) d->rate_timer->cancel();
    for (auto& t : d->idle) wake(t);
    d->idle.clear();
  }
}

}  // namespace mailgate::queue
