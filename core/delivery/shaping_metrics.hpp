// delivery/shaping_metrics: the metric families of traffic shaping
// automation (DESIGN §9, README "Metrics"): actions taken per rule and
// action since start, actions in force per action, actions refused at the
// cap. Labels are bounded: rule names come from the config (every rule of
// the current policy is shown, at 0 until it fires), actions are four.
#pragma once

#include "delivery/delivery_engine.hpp"
#include "metrics/exposition.hpp"

namespace mailgate::delivery {

void export_shaping_metrics(metrics::Exposition& e, const DeliveryEngine& engine);

}  // namespace mailgate::delivery
