// queue/queue_metrics: mailgate_queue_messages{state}, the age of the oldest
// waiting message and the number of destinations the shards hold.
#include "queue/queue_metrics.hpp"

namespace mailgate::queue {
namespace {

constexpr metrics::Family kMessages{"mailgate_queue_messages",
                                    metrics::Type::Gauge,
                                    "Queued messages (per destination entry) by state",
                                    {"state"}};
constexpr metrics::Family kOldest{"mailgate_queue_oldest_message_age_seconds", metrics::Type::Gauge,
                                  "Age of the oldest queued message"};
constexpr metrics::Family kDestinations{"mailgate_queue_destinations", metrics::Type::Gauge,
                                        "Destinations held by the delivery queues (idle ones are "
                                        "removed)"};

}  // namespace

void export_metrics(metrics::Exposition& e, const ShardTotals& t) {
  e.add(kMessages, static_cast<double>(t.scheduled), {"scheduled"});
  e.add(kMessages, static_cast<double>(t.ready), {"ready"});
  e.add(kMessages, static_cast<double>(t.in_flight), {"in_flight"});
  e.add(kMessages, static_cast<double>(t.suspended), {"suspended"});
  e.add(kOldest, t.oldest_ms ? static_cast<double>(now_ms() - t.oldest_ms) / 1000.0 : 0.0);
  e.add(kDestinations, static_cast<double>(t.destinations));
}

}  // namespace mailgate::queue
