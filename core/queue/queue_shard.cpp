// queue/queue_shard: see queue_shard.hpp.
#include "queue/queue_shard.hpp"

#include <algorithm>
#include <asio/post.hpp>
#include <chrono>

namespace mailgate::queue {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
constexpr std::int64_t kSweepEveryMs = 1000;
}

QueueShard::QueueShard(asio::io_context& ctx, RetryPolicy policy, unsigned max_connections,
                       Starter start, Expirer expire)
    : policy_(policy),
      max_connections_(std::max(1u, max_connections)),
      start_(std::move(start)),
      expire_(std::move(expire)),
      timer_(ctx) {}

Destination& QueueShard::destination(const std::string& name) {
  auto it = dests_.find(name);
  if (it != dests_.end()) return *it->second;
  auto d = std::make_unique<Destination>();
  d->name = name;
  return *dests_.emplace(name, std::move(d)).first->second;
}

void QueueShard::add(const std::string& name, Item item) {
  if (stopped_) return;
  auto& d = destination(name);
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
  Item it = std::move(d.ready.front());
  d.ready.pop_front();
  --total_;
  return it;
}

void QueueShard::retry_later(Destination& d, Item item, std::int64_t when_ms) {
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
  auto it = dests_.find(name);
  if (it == dests_.end()) return false;
  it->second->suspended = true;
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
  std::vector<DestinationSummary> out;
  for (const auto& [name, d] : dests_) {
    DestinationSummary s{name, d->ready.size(), d->scheduled, d->active, d->suspended, 0};
    for (const auto& it : d->ready) {
      const auto ms = static_cast<std::int64_t>(it.id.millis());
      if (s.oldest_ms == 0 || ms < s.oldest_ms) s.oldest_ms = ms;
    }
    out.push_back(std::move(s));
  }
  return out;
}

void QueueShard::pump(Destination& d) {
  if (stopped_ || d.suspended) return;
  // Reuse idle connections first (most recently parked: its TCP state is warmest).
  std::size_t woken = 0;
  while (!d.idle.empty() && woken < d.ready.size()) {
    wake(d.idle.back());
    d.idle.pop_back();
    ++woken;
  }
  // One more connection only while there is more ready work than busy connections.
  while (d.active < max_connections_ && d.ready.size() > d.active - d.idle.size()) {
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
    for (auto& t : d->idle) wake(t);
    d->idle.clear();
  }
}

}  // namespace mailgate::queue
