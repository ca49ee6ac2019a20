// delivery/egress_metrics: the metric families of sources and sites
// (DESIGN §9, README "Metrics"): per (source, site) messages handed to
// connections, warm-up quota left today, connections per site, and
// messages held for a spent warm-up quota. Labels are bounded: sources and
// sites are declared; destinations no site covers count as site "other",
// the default source (no mailgate.source) as source "default".
#pragma once

#include "delivery/delivery_engine.hpp"
#include "metrics/exposition.hpp"

namespace mailgate::delivery {

void export_egress_metrics(metrics::Exposition& e, const DeliveryEngine& engine);

}  // namespace mailgate::delivery
