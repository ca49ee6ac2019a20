// delivery/engine_shared: the engine's side of the cluster's replicated
// tables (issue 16): tenant/campaign suspensions and traffic shaping
// actions made on other nodes, applied here as the local paths apply their
// own (every worker's shard, the spool), but without waiting on any worker
// (this runs on worker 0, the cluster's thread) and without reporting them
// back to the cluster.
// Promises: never blocks; a change is in force on worker 0 at once (so the
// next change, in the same poll, sees it) and on the others once their
// posted call runs; the spool write is asynchronous
// (a crash right after loses it, and the catch-up after the restart brings
// it back from Redis); every change applied goes to the process log.
#include <spdlog/spdlog.h>
#include <asio/post.hpp>

#include "delivery/delivery_worker.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"

namespace mailgate::delivery {

namespace {
// A hold (or its release) on every worker's shard: at once on the calling
// worker (worker 0, whose shard the next change reads, so two changes in
// one poll see each other), posted to the others.
void on_every_shard(const std::vector<DeliveryEngine::Worker*>& all, const tenancy::Suspension& h,
                    bool release) {
  for (DeliveryEngine::Worker* w : all) {
    auto act = [w, h, release] {
      if (!w->shard || w->shard->stopped()) return;
      if (release)
        w->shard->release(h);
      else
        w->shard->hold(h);
    };
    if (w->ctx.get_executor().running_in_this_thread())
      act();
    else
      asio::post(w->ctx, std::move(act));
  }
}
}  // namespace

void DeliveryEngine::apply_shared_suspension(const tenancy::Suspension& s, bool removed,
                                             std::int64_t ms) {
  if (all_.empty() || !all_.front()->shard) return;
  const auto now = queue::now_ms();
  if (!removed && s.expired(now)) return;
  const tenancy::Suspension* here = nullptr;
  for (const auto& h : all_.front()->shard->holds())
    if (h.same_rule(s)) here = &h;
  if (here && here->since_ms > ms) return;  // ours is newer
  if (removed && !here) return;
  if (!removed && here && here->since_ms == s.since_ms && here->until_ms == s.until_ms) return;
  if (deps_.store && deps_.writer) {
    spool::WriteSet set(*deps_.store);
    if (removed)
      set.remove_tenant_suspension(s);
    else
      set.put_tenant_suspension(s);
    deps_.writer->submit(std::move(set), true, [](std::error_code ec) {
      if (ec)
        spdlog::warn("delivery: a suspension from another node not saved in the spool: {}",
                     ec.message());
    });
  }
  on_every_shard(all_, s, removed);
  spdlog::info("delivery: {} {} (from another node)", removed ? "resumed" : "suspended",
               describe_suspension(s));
}

std::vector<tenancy::Suspension> DeliveryEngine::shared_suspensions() const {
  if (all_.empty() || !all_.front()->shard) return {};
  const auto now = queue::now_ms();
  const auto actions = shaping_.list(now);
  std::vector<tenancy::Suspension> out;
  for (const auto& h : all_.front()->shard->holds()) {
    if (h.expired(now)) continue;
    bool of_action = false;
    for (const auto& a : actions)
      of_action =
          of_action || (a.holds_tenant() && hold_of(a).same_rule(h) && a.until_ms == h.until_ms);
    if (!of_action) out.push_back(h);
  }
  return out;
}

std::size_t DeliveryEngine::tenant_holds_here() const {
  if (all_.empty() || !all_.front()->shard) return 0;
  return all_.front()->shard->holds().size();
}

void DeliveryEngine::apply_shared_destination(const std::string& destination, bool removed,
                                              std::int64_t ms) {
  if (workers_.empty()) return;
  {
    std::lock_guard lock(suspended_mu_);
    auto it = suspended_.find(destination);
    if (it != suspended_.end() && it->second > ms) return;  // ours is newer
    if (removed && it == suspended_.end()) return;
    if (!removed && it != suspended_.end() && it->second == ms) return;
    if (removed)
      suspended_.erase(it);
    else
      suspended_[destination] = ms;
  }
  if (deps_.store && deps_.writer) {
    spool::WriteSet set(*deps_.store);
    if (removed)
      set.remove_suspension(destination);
    else
      set.put_suspension(destination, ms);
    deps_.writer->submit(std::move(set), true, [](std::error_code ec) {
      if (ec)
        spdlog::warn("delivery: a destination suspension from another node not saved: {}",
                     ec.message());
    });
  }
  Worker* w = workers_[owner(destination)].get();
  auto act = [w, destination, removed] {
    if (!w->shard || w->shard->stopped()) return;
    if (removed)
      w->shard->resume(destination);
    else
      w->shard->suspend(destination);
  };
  if (w->ctx.get_executor().running_in_this_thread())
    act();
  else
    asio::post(w->ctx, std::move(act));
  spdlog::info("delivery: {} {} (from another node)", removed ? "resumed" : "suspended",
               destination);
}

std::vector<std::pair<std::string, std::int64_t>> DeliveryEngine::suspended_destinations() const {
  std::lock_guard lock(suspended_mu_);
  return {suspended_.begin(), suspended_.end()};
}

void DeliveryEngine::apply_shared_shaping(const egress::ShapingAction& a, bool removed,
                                          std::int64_t ms) {
  std::vector<egress::ShapingAction> gone;
  bool taken = false;
  if (removed)
    gone = shaping_.clear_target(a, ms);
  else
    taken = shaping_.adopt(a, queue::now_ms(), gone);
  if (gone.empty() && !taken) return;
  std::optional<spool::WriteSet> set;
  if (deps_.store && deps_.writer) set.emplace(*deps_.store);
  // In order, on every worker and in the spool: the replaced action's hold
  // goes before the new one's (the same rule, when the target is).
  for (const auto& g : gone) {
    spdlog::info("delivery: shaping action {} of rule '{}' {} on another node: {}", g.id, g.rule,
                 removed ? "cleared" : "replaced by " + a.id, describe_shaping(g));
    if (set) set->remove_shaping_action(egress::shaping_key(g.id));
    if (!g.holds_tenant()) continue;
    if (set) set->remove_tenant_suspension(hold_of(g));
    on_every_shard(all_, hold_of(g), true);
  }
  if (taken) {
    spdlog::info("delivery: shaping action {} of rule '{}' (from another node): {} until {} ms",
                 a.id, a.rule, describe_shaping(a), a.until_ms);
    if (set) set->put_shaping_action(egress::shaping_key(a.id), egress::encode_action(a));
    if (a.holds_tenant()) {
      if (set) set->put_tenant_suspension(hold_of(a));
      on_every_shard(all_, hold_of(a), false);
    }
  }
  if (!set) return;
  deps_.writer->submit(std::move(*set), true, [](std::error_code ec) {
    if (ec)
      spdlog::warn("delivery: a shaping action from another node not saved in the spool: {}",
                   ec.message());
  });
}

}  // namespace mailgate::delivery
