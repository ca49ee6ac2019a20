// delivery/egress_metrics: see egress_metrics.hpp.
#include "delivery/egress_metrics.hpp"

#include <map>

namespace mailgate::delivery {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kSourceMessages{"mailgate_egress_source_messages_total",
                                 Type::Counter,
                                 "Messages handed to connections, per source and site",
                                 {"source", "site"}};
constexpr Family kQuotaRemaining{"mailgate_warmup_quota_remaining",
                                 Type::Gauge,
                                 "Warm-up quota left today (UTC) per source and site (in a "
                                 "cluster: over every node, as last seen in Redis)",
                                 {"source", "site"}};
constexpr Family kSiteConnections{"mailgate_site_connections",
                                  Type::Gauge,
                                  "Outbound connections open now per site (all sources)",
                                  {"site"}};
constexpr Family kWarmupHeld{"mailgate_warmup_held_total", Type::Counter,
                             "Messages held until 00:00 UTC for a spent warm-up quota"};

}  // namespace

void export_egress_metrics(metrics::Exposition& e, const DeliveryEngine& engine) {
  std::map<std::string, unsigned> per_site;
  for (const auto& p : engine.paths()) {
    const std::string source = p.source.empty() ? "default" : p.source;
    e.add(kSourceMessages, static_cast<double>(p.messages), {source, p.site});
    if (const auto left = p.remaining())
      e.add(kQuotaRemaining, static_cast<double>(*left), {source, p.site});
    per_site[p.site] += p.connections;
  }
  for (const auto& [site, n] : per_site) e.add(kSiteConnections, static_cast<double>(n), {site});
  e.add(kWarmupHeld, static_cast<double>(engine.warmup_holds()));
}

}  // namespace mailgate::delivery
