// delivery/shaping_metrics: see shaping_metrics.hpp.
#include "delivery/shaping_metrics.hpp"

#include <map>

namespace mailgate::delivery {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kTaken{"mailgate_shaping_actions_total",
                        Type::Counter,
                        "Traffic shaping actions taken (a rule matched a remote reply)",
                        {"rule", "action"}};
constexpr Family kActive{"mailgate_shaping_actions_active",
                         Type::Gauge,
                         "Traffic shaping actions in force now",
                         {"action"}};
constexpr Family kRefused{"mailgate_shaping_actions_refused_total", Type::Counter,
                          "Traffic shaping actions not taken: too many in force"};
constexpr egress::ShapingKind kKinds[] = {
    egress::ShapingKind::Suspend, egress::ShapingKind::SuspendTenant,
    egress::ShapingKind::SuspendCampaign, egress::ShapingKind::Override};

}  // namespace

void export_shaping_metrics(metrics::Exposition& e, const DeliveryEngine& engine) {
  auto taken = engine.shaping().taken();
  for (const auto& r : engine.egress_plan()->shaping_rules())
    taken.try_emplace({r.name, r.kind}, 0);
  for (const auto& [key, n] : taken)
    e.add(kTaken, static_cast<double>(n), {key.first, std::string(egress::to_string(key.second))});
  std::map<egress::ShapingKind, std::size_t> active;
  for (auto k : kKinds) active[k] = 0;
  for (const auto& a : engine.shaping_actions()) ++active[a.kind];
  for (const auto& [k, n] : active)
    e.add(kActive, static_cast<double>(n), {std::string(egress::to_string(k))});
  e.add(kRefused, static_cast<double>(engine.shaping().refused()));
}

}  // namespace mailgate::delivery
