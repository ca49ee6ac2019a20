// delivery/shaping_engine: the engine's side of traffic shaping automation
// (DESIGN §6b): the actions in force restored from the spool at start
// (prefix "shaping/", expired ones deleted), expired once a second (their
// rows deleted, the end logged), listed and cleared by the admin API.
// Promises: an action cleared is deleted from the spool (synced) before the
// caller hears Done, and a tenant or campaign suspension it made is
// resumed; a failed write clears nothing; apply, expiry and clearing go to
// the process log, never to the delivery log; in a cluster a clear is told
// to EngineDeps::shaping_changed (every node clears it), an expiry is not
// (every node ends the action at the same `until` by itself).
#include <spdlog/spdlog.h>

#include "delivery/delivery_worker.hpp"
#include "delivery/worker_calls.hpp"
#include "spool/store.hpp"

namespace mailgate::delivery {

tenancy::Suspension hold_of(const egress::ShapingAction& a) {
  return {a.tenant, a.campaign, a.destination, a.since_ms, a.until_ms};
}

void DeliveryEngine::load_shaping() {
  if (!deps_.store) return;
  std::vector<egress::ShapingAction> rows;
  std::vector<std::string> bad;
  for (auto& [k, v] : deps_.store->read_prefix(egress::kShapingPrefix)) {
    egress::ShapingAction a;
    if (egress::decode_action(k, v, a))
      rows.push_back(std::move(a));
    else
      bad.push_back(k);
  }
  const auto read = rows.size();
  auto stale = shaping_.load(std::move(rows), queue::now_ms());
  if (read)
    spdlog::info("delivery: {} shaping action(s) in force (kept in the spool)",
                 read - stale.size());
  if (!bad.empty())
    spdlog::warn("delivery: {} unreadable shaping row(s) in the spool deleted", bad.size());
  if ((stale.empty() && bad.empty()) || !deps_.writer) return;
  spool::WriteSet set(*deps_.store);
  for (const auto& id : stale) set.remove_shaping_action(egress::shaping_key(id));
  for (const auto& k : bad) set.remove_shaping_action(k);
  deps_.writer->submit(std::move(set), true, [](std::error_code) {});
}

void DeliveryEngine::expire_shaping() {
  auto done = shaping_.expire(queue::now_ms());
  if (done.empty()) return;
  for (const auto& a : done)
    spdlog::info("delivery: shaping action {} of rule '{}' ended: {}", a.id, a.rule,
                 describe_shaping(a));
  if (!deps_.store || !deps_.writer) return;
  spool::WriteSet set(*deps_.store);
  for (const auto& a : done) {
    set.remove_shaping_action(egress::shaping_key(a.id));
    if (a.holds_tenant())
      set.remove_tenant_suspension(hold_of(a));  // the shards expire it themselves
  }
  deps_.writer->submit(std::move(set), true, [](std::error_code ec) {
    if (ec)
      spdlog::warn("delivery: ended shaping actions not deleted from the spool: {}", ec.message());
  });
}

std::vector<egress::ShapingAction> DeliveryEngine::shaping_actions() const {
  return shaping_.list(queue::now_ms());
}

DeliveryEngine::ActResult DeliveryEngine::clear_shaping(const std::string& id,
                                                        std::chrono::milliseconds deadline,
                                                        std::string& error, std::size_t& cleared) {
  cleared = 0;
  std::vector<egress::ShapingAction> gone;
  if (id.empty()) {
    gone = shaping_.list(queue::now_ms());
  } else {
    for (auto& a : shaping_.list(queue::now_ms()))
      if (a.id == id) gone.push_back(std::move(a));
  }
  if (gone.empty()) return ActResult::NoQueue;
  if (deps_.store && deps_.writer) {
    spool::WriteSet set(*deps_.store);
    for (const auto& a : gone) set.remove_shaping_action(egress::shaping_key(a.id));
    error = write_synced(*deps_.writer, std::move(set), deadline);
    if (!error.empty()) return ActResult::NotSaved;
  }
  for (const auto& a : gone) {
    if (!shaping_.clear(a.id)) continue;  // expired meanwhile
    ++cleared;
    spdlog::info("delivery: shaping action {} of rule '{}' cleared: {}", a.id, a.rule,
                 describe_shaping(a));
    // Cleared everywhere: dated no earlier than the action (clocks differ).
    if (deps_.shaping_changed)
      deps_.shaping_changed(a, true, std::max(queue::now_ms(), a.since_ms));
    if (!a.holds_tenant()) continue;
    std::string ignored;
    if (release_tenant(hold_of(a), deadline, ignored, false) == ActResult::Busy)
      return ActResult::Busy;
  }
  return ActResult::Done;
}

}  // namespace mailgate::delivery
