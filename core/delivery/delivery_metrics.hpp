// delivery/delivery_metrics: the metric families of outbound delivery:
// outcomes per recipient (the delivery log's event names, by destination
// label; the submission stage's route discards included), attempt and queue
// delay histograms, outbound connections, generated DSNs, TLS-RPT sessions
// and DANE outcomes (mailgate_dane_sessions_total).
#pragma once

#include "delivery/delivery_engine.hpp"
#include "metrics/exposition.hpp"
#include "submit/submit_metrics.hpp"

namespace mailgate::delivery {

void export_metrics(metrics::Exposition& e, const DeliveryMetrics& m,
                    const metrics::DestinationLabels& labels,
                    const submit::SubmitTotals& submitted);

}  // namespace mailgate::delivery
