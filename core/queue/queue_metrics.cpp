// queue/queue_metrics: mailgate_queue_messages{state} and the age of the
// oldest waiting message.
#include "queue/queue_metrics.hpp"

namespace mailgate::queue {
namespace {

constexpr metrics::Family kMessages{"mailgate_queue_messages",
                                    metrics::Type::Gauge,
                                    "Queued messages (per destination entry) by state",
                                    {"state"}};
constexpr metrics::Family kOldest{"mailgate_queue_oldest_message_age_seconds", metrics::Type::Gauge,
                                  "Age of the oldest queued message"};

}  // namespace

void export_metrics(metrics::Exposition& e, const std::vector<DestinationSummary>& summary) {
  double scheduled = 0, ready = 0, in_flight = 0, suspended = 0;
  std::int64_t oldest = 0;
  for (const auto& d : summary) {
    // Each entry in exactly one state: a suspended destination's waiting messages are "suspended".
    in_flight += static_cast<double>(d.in_flight);
    if (d.suspended) {
      suspended += static_cast<double>(d.ready + d.scheduled);
    } else {
      scheduled += static_cast<double>(d.scheduled);
      ready += static_cast<double>(d.ready);
    }
    if (d.oldest_ms && (oldest == 0 || d.oldest_ms < oldest)) oldest = d.oldest_ms;
  }
  e.add(kMessages, scheduled, {"scheduled"});
  e.add(kMessages, ready, {"ready"});
  e.add(kMessages, in_flight, {"in_flight"});
  e.add(kMessages, suspended, {"suspended"});
  e.add(kOldest, oldest ? static_cast<double>(now_ms() - oldest) / 1000.0 : 0.0);
}

}  // namespace mailgate::queue
