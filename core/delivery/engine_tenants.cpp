// delivery/engine_tenants: tenant and campaign actions of the delivery
// engine (issue 12 item 4): suspend / resume (persisted under
// suspend_tenant/ in the spool, in force on every worker's shard), flush and
// the list of rules in force. Every worker holds every rule, because a rule
// without a destination holds mail at destinations any worker owns.
// Promises: a suspension the caller was told is Done is synced in the spool
// first (a restart or kill -9 keeps it; start() reloads it); a failed spool
// write changes nothing; suspensions and resumptions go to the process log,
// never to the delivery log; in a cluster, a suspension or resumption once
// saved is told to EngineDeps::suspension_changed (the other nodes apply it
// through engine_shared.cpp).
#include <spdlog/spdlog.h>

#include "delivery/delivery_worker.hpp"
#include "delivery/worker_calls.hpp"
#include "spool/store.hpp"

namespace mailgate::delivery {

std::string describe_suspension(const tenancy::Suspension& s) {
  std::string d = "tenant " + s.tenant;
  if (!s.campaign.empty()) d += " campaign " + s.campaign;
  d += s.destination.empty() ? " everywhere" : " at " + s.destination;
  if (s.until_ms) d += " until " + std::to_string(s.until_ms) + " ms";
  return d;
}

std::vector<DeliveryEngine::Worker*> DeliveryEngine::targets(const std::string& destination) const {
  if (!destination.empty() && !workers_.empty()) return {workers_[owner(destination)].get()};
  return all_;
}

DeliveryEngine::ActResult DeliveryEngine::suspend_tenant(const tenancy::Suspension& s,
                                                         std::chrono::milliseconds deadline,
                                                         std::string& error) {
  if (workers_.empty()) return ActResult::NoQueue;
  spool::WriteSet set(*deps_.store);
  set.put_tenant_suspension(s);
  error = write_synced(*deps_.writer, std::move(set), deadline);
  if (!error.empty()) return ActResult::NotSaved;
  // Saved: the rule stands here (a restart reloads it), so it goes to the
  // other nodes even if a worker is slow to take it.
  if (deps_.suspension_changed) deps_.suspension_changed(s, false, s.since_ms);
  auto r = run_on<bool>(
      all_,
      [s](Worker& w) {
        if (w.shard) w.shard->hold(s);
        return true;
      },
      deadline);
  if (!r) return ActResult::Busy;
  spdlog::info("delivery: suspended {}", describe_suspension(s));
  return ActResult::Done;
}

DeliveryEngine::ActResult DeliveryEngine::resume_tenant(const tenancy::Suspension& s,
                                                        std::chrono::milliseconds deadline,
                                                        std::string& error) {
  return release_tenant(s, deadline, error, true);
}

DeliveryEngine::ActResult DeliveryEngine::release_tenant(const tenancy::Suspension& s,
                                                         std::chrono::milliseconds deadline,
                                                         std::string& error, bool share) {
  if (workers_.empty()) return ActResult::NoQueue;
  auto known = tenant_suspensions(deadline);
  if (!known) return ActResult::Busy;
  const tenancy::Suspension* rule = nullptr;
  for (const auto& k : *known)
    if (k.same_rule(s)) rule = &k;
  if (!rule) return ActResult::NoQueue;
  spool::WriteSet set(*deps_.store);
  set.remove_tenant_suspension(s);
  error = write_synced(*deps_.writer, std::move(set), deadline);
  if (!error.empty()) return ActResult::NotSaved;
  // Never dated before the rule it ends (another node's clock may be
  // behind): the removal must win over it in Redis.
  if (share && deps_.suspension_changed)
    deps_.suspension_changed(s, true, std::max(queue::now_ms(), rule->since_ms));
  auto r = run_on<bool>(
      all_, [s](Worker& w) { return w.shard ? w.shard->release(s) : false; }, deadline);
  if (!r) return ActResult::Busy;
  spdlog::info("delivery: resumed {}", describe_suspension(s));
  return ActResult::Done;
}

std::optional<std::vector<tenancy::Suspension>> DeliveryEngine::tenant_suspensions(
    std::chrono::milliseconds deadline) const {
  if (all_.empty()) return std::vector<tenancy::Suspension>{};
  auto r = run_on<std::vector<tenancy::Suspension>>(
      {all_.front()},
      [](Worker& w) { return w.shard ? w.shard->holds() : std::vector<tenancy::Suspension>{}; },
      deadline);
  if (!r) return std::nullopt;
  return std::move(r->front());
}

std::optional<std::size_t> DeliveryEngine::flush_tenant(const std::string& destination,
                                                        const queue::TenancyFilter& filter,
                                                        std::chrono::milliseconds deadline) {
  auto r = run_on<std::size_t>(
      targets(destination),
      [destination, filter](Worker& w) -> std::size_t {
        return w.shard ? w.shard->flush(destination, filter) : 0;
      },
      deadline);
  if (!r) return std::nullopt;
  std::size_t n = 0;
  for (auto c : *r) n += c;
  return n;
}

}  // namespace mailgate::delivery
