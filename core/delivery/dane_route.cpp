// delivery/dane_route: the DNS half of outbound DANE (RFC 7672) in a
// delivery connection: for a target whose MX and address answers were
// DNSSEC-authentic, the TLSA lookup of _<port>._tcp.<mx-host> through the
// worker's resolver (AD + DO, cached per TTL like every answer: one query
// per MX host per TTL) and the decision of delivery/dane.hpp; the outcome
// counters (mailgate_dane_sessions_total). open_client() applies the plan.
#include <spdlog/spdlog.h>

#include "delivery/delivery_worker.hpp"

namespace mailgate::delivery {

void DeliveryEngine::Worker::count_dane(DaneResult r) {
  dane_sessions[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<DanePlan> DeliveryEngine::Worker::plan_dane_for(const Target& t) {
  if (!t.dnssec) {
    spdlog::debug("{} [{}]: DANE: insecure MX or address answer; opportunistic TLS", t.host,
                  t.endpoint.address().to_string());
    co_return insecure_plan();
  }
  auto answer = co_await resolver->tlsa(t.host, t.endpoint.port());
  auto plan = plan_dane(answer);
  spdlog::debug("{} [{}]: DANE: TLSA {} ({} records, {} usable, authentic {}): {}", t.host,
                t.endpoint.address().to_string(), dns::to_string(answer.status),
                answer.records.size(), plan.records.size(), answer.authentic,
                to_string(plan.result));
  co_return plan;
}

}  // namespace mailgate::delivery
