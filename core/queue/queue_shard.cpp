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
}

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

Destination& QueueShard::destination(const std::string& name) {
  auto it = dests_.find(name);
  if (it != dests_.end()) return *it->second;
  auto d = std::make_unique<Destination>();
  d->name = name;
  d->shaping = defaults_;
  return *dests_.emplace(name, std::move(d)).first->second;
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
  auto& d = destination(name);
  if (item.tls != spool::RouteTls::Default) d.route_tls = item.tls;
  if (item.auth) d.route_auth = item.auth;
  ++total_;
  const auto now = now_ms();
  const auto when = std::max(item.next_ms, d.backoff_until_ms);
  if (when > now) {
    schedule(d, std::move(item), when);
  } else {
    d.ready.push_back(std::move(item));
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
  if (d.suspended || d.ready.empty() || stopped_) return std::nullopt;
  const auto now = steady_us();
  if (auto wait = d.shaping.message_rate.acquire(now); wait > 0) {
    arm_rate_timer(d, now + wait);
    return std::nullopt;
  }
  Item it = std::move(d.ready.front());
  d.ready.pop_front();
  --total_;
  ++d.in_flight;
  return it;
}

void QueueShard::finished(Destination& d) {
  if (d.in_flight > 0) --d.in_flight;
}

void QueueShard::retry_later(Destination& d, Item item, std::int64_t when_ms) {
  finished(d);
  if (stopped_) return;
  ++total_;
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
  pump(d);
}

void QueueShard::defer_destination(Destination& d, std::int64_t until_ms) {
  d.backoff_until_ms = std::max(d.backoff_until_ms, until_ms);
  while (!d.ready.empty()) {
    schedule(d, std::move(d.ready.front()), d.backoff_until_ms);
    d.ready.pop_front();
  }
  arm();
}

bool QueueShard::suspend(const std::string& name) {
  // Creates the destination: an operator may suspend one before its mail comes.
  destination(name).suspended = true;
  return true;
}

bool QueueShard::resume(const std::string& name) {
  auto it = dests_.find(name);
  if (it == dests_.end()) return false;
  it->second->suspended = false;
  pump(*it->second);
  return true;
}

bool QueueShard::flush(const std::string& name) {
  auto it = dests_.find(name);
  if (it == dests_.end()) return false;
  Destination* d = it->second.get();
  d->backoff_until_ms = 0;
  // Rebuild the heap without this destination's items (flush is rare).
  std::vector<Scheduled> keep;
  while (!heap_.empty()) {
    auto s = heap_.top();
    heap_.pop();
    if (s.dest == d) {
      --d->scheduled;
      d->ready.push_back(std::move(s.item));
    } else {
      keep.push_back(std::move(s));
    }
  }
  for (auto& s : keep) heap_.push(std::move(s));
  pump(*d);
  arm();
  return true;
}

std::vector<DestinationSummary> QueueShard::summary() const {
  std::unordered_map<const Destination*, std::int64_t> oldest_scheduled;
  // The heap's container is not reachable through priority_queue: scan a copy
  // of the top-level view (admin and scrape only, never on the delivery path).
  auto heap = heap_;
  while (!heap.empty()) {
    const auto& s = heap.top();
    const auto ms = static_cast<std::int64_t>(s.item.id.millis());
    auto [it, fresh] = oldest_scheduled.emplace(s.dest, ms);
    if (!fresh && ms < it->second) it->second = ms;
    heap.pop();
  }
  std::vector<DestinationSummary> out;
  for (const auto& [name, d] : dests_) {
    DestinationSummary s{name, d->ready.size(), d->scheduled, d->in_flight, d->active, d->suspended,
                         0};
    for (const auto& it : d->ready) {
      const auto ms = static_cast<std::int64_t>(it.id.millis());
      if (s.oldest_ms == 0 || ms < s.oldest_ms) s.oldest_ms = ms;
    }
    if (auto it = oldest_scheduled.find(d.get()); it != oldest_scheduled.end())
      if (s.oldest_ms == 0 || it->second < s.oldest_ms) s.oldest_ms = it->second;
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<ItemView> QueueShard::items(const std::string& filter) const {
  std::vector<ItemView> out;
  for (const auto& [name, d] : dests_) {
    if (!filter.empty() && filter != name) continue;
    for (const auto& it : d->ready) out.push_back({name, it.id, it.attempts, it.next_ms, false});
  }
  auto heap = heap_;
  while (!heap.empty()) {
    const auto& s = heap.top();
    if (filter.empty() || filter == s.dest->name)
      out.push_back({s.dest->name, s.item.id, s.item.attempts, s.when, true});
    heap.pop();
  }
  return out;
}

std::vector<std::pair<Destination*, Item>> QueueShard::extract(const std::string& destination,
                                                               const spool::MessageId* id) {
  std::vector<std::pair<Destination*, Item>> out;
  auto match = [&](const Destination& d, const Item& it) {
    return (destination.empty() || d.name == destination) && (id == nullptr || it.id == *id);
  };
  for (auto& [name, d] : dests_) {
    for (auto it = d->ready.begin(); it != d->ready.end();) {
      if (match(*d, *it)) {
        out.emplace_back(d.get(), std::move(*it));
        it = d->ready.erase(it);
        --total_;
        ++d->in_flight;
      } else {
        ++it;
      }
    }
  }
  std::vector<Scheduled> keep;
  while (!heap_.empty()) {
    auto s = heap_.top();
    heap_.pop();
    if (match(*s.dest, s.item)) {
      --s.dest->scheduled;
      --total_;
      ++s.dest->in_flight;
      out.emplace_back(s.dest, std::move(s.item));
    } else {
      keep.push_back(std::move(s));
    }
  }
  for (auto& s : keep) heap_.push(std::move(s));
  return out;
}

void QueueShard::pump(Destination& d) {
  if (stopped_ || d.suspended || d.ready.empty()) return;
  if (shaper_ && !shaper_(d)) return;
  const auto now = steady_us();
  // Nothing may go before the message rate admits the next one: wake no
  // connection and open none until then.
  if (auto wait = d.shaping.message_rate.wait_us(now); wait > 0) {
    arm_rate_timer(d, now + wait);
    return;
  }
  // Reuse idle connections first (most recently parked: its TCP state is warmest).
  std::size_t woken = 0;
  while (!d.idle.empty() && woken < d.ready.size()) {
    wake(d.idle.back());
    d.idle.pop_back();
    ++woken;
  }
  // One more connection only while there is more ready work than busy connections.
  while (d.active < d.shaping.max_connections && d.ready.size() > d.active - d.idle.size()) {
    if (auto wait = d.shaping.connection_rate.acquire(now); wait > 0) {
      arm_rate_timer(d, now + wait);
      break;
    }
    ++d.active;
    start_(d);
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
    --s.dest->scheduled;
    s.dest->ready.push_back(std::move(s.item));
    touched.push_back(s.dest);
  }
  if (now >= next_sweep_) {
    sweep_expired(now);
    next_sweep_ = now + kSweepEveryMs;
  }
  for (auto* d : touched) pump(*d);
  arm();
}

void QueueShard::sweep_expired(std::int64_t now) {
  for (auto& [name, d] : dests_) {
    for (auto it = d->ready.begin(); it != d->ready.end();) {
      if (policy_.expired(static_cast<std::int64_t>(it->id.millis()), now)) {
        Item item = std::move(*it);
        it = d->ready.erase(it);
        --total_;
        ++d->in_flight;
        expire_(*d, std::move(item));
      } else {
        ++it;
      }
    }
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
