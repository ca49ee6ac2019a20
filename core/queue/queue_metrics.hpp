// queue/queue_metrics: the queue gauges, from every shard's totals summed
// (DeliveryEngine::queue_totals): O(destinations) per worker per scrape.
#pragma once

#include "metrics/exposition.hpp"
#include "queue/queue_shard.hpp"

namespace mailgate::queue {

void export_metrics(metrics::Exposition& e, const ShardTotals& totals);

}  // namespace mailgate::queue
