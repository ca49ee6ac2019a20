// policy/policy_metrics: the Lua hooks' metric families: call durations and
// errors per event, summed over the workers' states.
#pragma once

#include "metrics/exposition.hpp"
#include "policy/runtime.hpp"

namespace mailgate::policy {

void export_metrics(metrics::Exposition& e, const PolicyRuntime& runtime, unsigned workers);

}  // namespace mailgate::policy
