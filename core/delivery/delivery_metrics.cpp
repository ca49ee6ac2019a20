// delivery/delivery_metrics: the delivery families (see the header).
#include "delivery/delivery_metrics.hpp"

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
  e.add(kDeliverySeconds, m.delivery_seconds);
  e.add(kQueueDelay, m.queue_delay_seconds);
  e.add(kConnectionsActive, static_cast<double>(m.connections_active));
  e.add(kConnections, static_cast<double>(m.opened_tls), {"true"});
  e.add(kConnections, static_cast<double>(m.opened_plain), {"false"});
  e.add(kDsns, static_cast<double>(m.dsns));
}

}  // namespace mailgate::delivery
