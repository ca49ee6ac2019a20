// queue/queue_metrics: the queue gauges, computed from a summary of every
// destination (DeliveryEngine::queue_summary) at each scrape.
#pragma once

#include <vector>

#include "metrics/exposition.hpp"
#include "queue/queue_shard.hpp"

namespace mailgate::queue {

void export_metrics(metrics::Exposition& e, const std::vector<DestinationSummary>& summary);

}  // namespace mailgate::queue
