// delivery/delivery_metrics: the delivery families (see the header).
#include "delivery/delivery_metrics.hpp"

#include "delivery/dane.hpp"
#include "delivery/tls_report.hpp"

namespace mailgate::delivery {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kDeliveries{"mailgate_deliveries_total",
                             Type::Counter,
                             "Delivery outcomes per recipient (delivery log event names)",
                             {"result", "destination"}};
constexpr Family kDeliverySeconds{"mailgate_delivery_seconds", Type::Histogram,
                                  "One delivery attempt (one message, one destination)"};
constexpr Family kQueueDelay{"mailgate_queue_delay_seconds", Type::Histogram,
                             "Reception to final outcome, per recipient"};
constexpr Family kConnectionsActive{"mailgate_outbound_connections_active", Type::Gauge,
                                    "Outbound SMTP connections open now"};
constexpr Family kConnections{"mailgate_outbound_connections_total",
                              Type::Counter,
                              "Outbound SMTP connections established",
                              {"tls"}};
constexpr Family kTlsSessions{"mailgate_tls_rpt_sessions_total",
                              Type::Counter,
                              "Outbound SMTP sessions by TLS policy type and result (RFC 8460 "
                              "TLS-RPT result types; success when TLS met the policy)",
                              {"destination", "policy", "result"}};
constexpr Family kDaneSessions{"mailgate_dane_sessions_total",
                               Type::Counter,
                               "Outbound sessions to MX hosts of destinations in TLS mode dane, "
                               "by what DANE (RFC 7672) made of them",
                               {"result"}};
constexpr Family kTenantMessages{"mailgate_tenant_messages_total",
                                 Type::Counter,
                                 "Delivery outcomes per recipient of messages with a tenant, by "
                                 "tenant (metrics.tenants, else other) and delivery log event name",
                                 {"tenant", "outcome"}};
constexpr Family kDsns{"mailgate_bounces_generated_total", Type::Counter,
                       "DSNs generated (failed, delayed, relayed)"};

}  // namespace

void export_metrics(metrics::Exposition& e, const DeliveryMetrics& m,
                    const metrics::DestinationLabels& labels,
                    const submit::SubmitTotals& submitted) {
  for (std::size_t l = 0; l < labels.size(); ++l) {
    for (std::size_t o = 0; o < metrics::kOutcomeCount; ++o) {
      const auto outcome = static_cast<metrics::Outcome>(o);
      double n = static_cast<double>(m.outcomes[l][o]);
      // A recipient the route hook dropped is counted by the submission stage.
      if (outcome == metrics::Outcome::Discard && l < submitted.discards.size())
        n += static_cast<double>(submitted.discards[l]);
      e.add(kDeliveries, n, {metrics::outcome_name(outcome), labels.name(l)});
    }
  }
  // Every listed tenant and "other", at 0 until it happens.
  for (std::size_t l = 0; l < m.tenant_outcomes.size() && l < m.tenant_names.size(); ++l)
    for (std::size_t o = 0; o < metrics::kOutcomeCount; ++o)
      e.add(kTenantMessages, static_cast<double>(m.tenant_outcomes[l][o]),
            {m.tenant_names[l], metrics::outcome_name(static_cast<metrics::Outcome>(o))});
  e.add(kDeliverySeconds, m.delivery_seconds);
  e.add(kQueueDelay, m.queue_delay_seconds);
  e.add(kConnectionsActive, static_cast<double>(m.connections_active));
  e.add(kConnections, static_cast<double>(m.opened_tls), {"true"});
  e.add(kConnections, static_cast<double>(m.opened_plain), {"false"});
  e.add(kDsns, static_cast<double>(m.dsns));
  for (std::size_t r = 0; r < kDaneResultCount; ++r) {
    const auto n = r < m.dane_sessions.size() ? m.dane_sessions[r] : 0;
    e.add(kDaneSessions, static_cast<double>(n), {to_string(static_cast<DaneResult>(r))});
  }
  // Every combination, at 0 until it happens (like every other series).
  for (std::size_t l = 0; l < labels.size(); ++l) {
    for (std::size_t t = 0; t < kTlsPolicyTypeCount; ++t) {
      for (std::size_t r = 0; r < kTlsFailureCount; ++r) {
        const auto type = static_cast<TlsPolicyType>(t);
        const auto result = static_cast<TlsFailure>(r);
        const auto i = TlsReportCounters::index(l, type, result);
        const auto n = i < m.tls_sessions.size() ? m.tls_sessions[i] : 0;
        e.add(kTlsSessions, static_cast<double>(n),
              {labels.name(l), to_string(type), result_name(result)});
      }
    }
  }
}

}  // namespace mailgate::delivery
