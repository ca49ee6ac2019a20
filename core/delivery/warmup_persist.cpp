// delivery/warmup_persist: the warm-up counts of the engine's
// egress::PathRegistry in the spool (default family, keys "warmup/<source>"
// for a source's day 1 and "warmup/<source>/<site>/<utc-day>" for a day's
// count). Read once at start; written through the spool writer (never
// a store write on a worker) once a second when something changed, and at stop.
// Promises: after a crash at most the last second's counts are forgotten
// (so a source may send that many more on the day of the crash); earlier
// days' rows are deleted once read.
#include <spdlog/spdlog.h>

#include "delivery/delivery_worker.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"

namespace mailgate::delivery {

namespace {
constexpr std::chrono::seconds kFlushEvery{1};
}

void DeliveryEngine::load_warmup() {
  if (!deps_.store) return;
  std::vector<egress::WarmupRow> rows;
  for (auto& [k, v] : deps_.store->read_prefix(egress::kWarmupPrefix))
    rows.push_back({std::move(k), std::move(v)});
  paths_.load(rows, queue::now_ms());
  if (!rows.empty()) spdlog::info("delivery: {} warm-up row(s) read from the spool", rows.size());
}

void DeliveryEngine::flush_warmup() {
  if (!deps_.store || !deps_.writer) return;
  auto dirty = paths_.take_dirty();
  if (dirty.empty()) return;
  spool::WriteSet set(*deps_.store);
  for (const auto& row : dirty.put) set.put_warmup(row.key, row.value);
  for (const auto& key : dirty.remove) set.remove_warmup(key);
  auto* registry = &paths_;
  deps_.writer->submit(std::move(set), true,
                       [registry, rows = std::move(dirty.put)](std::error_code ec) {
                         if (ec) {
                           spdlog::warn("delivery: warm-up counts not saved: {}", ec.message());
                           return;
                         }
                         registry->mark_persisted(rows);
                       });
}

void DeliveryEngine::arm_warmup_flush() {
  if (workers_.empty() || !workers_[0]) return;
  if (!warmup_timer_) warmup_timer_ = std::make_unique<asio::steady_timer>(workers_[0]->ctx);
  warmup_timer_->expires_after(kFlushEvery);
  warmup_timer_->async_wait([this](std::error_code ec) {
    if (ec || !workers_[0] || workers_[0]->shard->stopped()) return;
    flush_warmup();
    expire_shaping();  // shaping_engine.cpp: the same once-a-second beat
    arm_warmup_flush();
  });
}

std::vector<egress::PathView> DeliveryEngine::paths() const { return paths_.view(queue::now_ms()); }

std::shared_ptr<const egress::Plan> DeliveryEngine::egress_plan() const { return paths_.plan(); }

std::uint64_t DeliveryEngine::warmup_holds() const {
  std::uint64_t n = 0;
  for (const auto& w : workers_)
    if (w && w->paths) n += w->paths->warmup_holds.load(std::memory_order_relaxed);
  return n;
}

}  // namespace mailgate::delivery
