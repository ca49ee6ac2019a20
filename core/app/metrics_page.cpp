// app/metrics_page: GET /metrics. Each module declares its metric families
// and fills them from its counters summed over the workers (DESIGN §3, §9);
// this page gathers the parts and serialises them, nothing more. Labels are
// bounded: destination labels come from metrics.destinations (+ "other"),
// hook labels from the fixed event list.
#include <chrono>

#include "app/admin_api.hpp"
#include "cluster/cluster.hpp"
#include "cluster/connection_leases.hpp"
#include "cluster/leased_rates.hpp"
#include "cluster/replicated_table.hpp"
#include "cluster/shared_suppression.hpp"
#include "cluster/shared_warmup.hpp"
#include "delivery/delivery_engine.hpp"
#include "delivery/delivery_metrics.hpp"
#include "delivery/egress_metrics.hpp"
#include "delivery/shaping_metrics.hpp"
#include "dns/dns_metrics.hpp"
#include "eventlog/eventlog_metrics.hpp"
#include "metrics/exposition.hpp"
#include "policy/policy_metrics.hpp"
#include "queue/queue_metrics.hpp"
#include "server/server_metrics.hpp"
#include "server/smtp_server.hpp"
#include "settings/gateway_config.hpp"
#include "spool/spool_metrics.hpp"
#include "submit/submit_metrics.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::app {
namespace {

constexpr metrics::Family kBuildInfo{
    "mailgate_build_info", metrics::Type::Gauge, "mailgate version", {"version"}};

}  // namespace

std::string render_metrics(const AdminContext& ctx) {
  metrics::Exposition e;
  e.add(kBuildInfo, 1, {MAILGATE_VERSION});

  const auto submitted = submit::sum_stats(ctx.submitters);
  server::ServerStats smtp;
  ctx.smtp->totals(smtp);
  server::export_metrics(e, smtp, submitted);
  submit::export_metrics(e, submitted);
  spool::export_metrics(e, *ctx.writer, *ctx.store);
  // A busy worker: this scrape has no queue gauges rather than stale ones.
  if (auto totals = ctx.engine->queue_totals(std::chrono::seconds(1)))
    queue::export_metrics(e, *totals);
  const auto delivered = ctx.engine->metrics();
  delivery::export_metrics(e, delivered, ctx.engine->labels(), submitted);
  delivery::export_egress_metrics(e, *ctx.engine);
  delivery::export_shaping_metrics(e, *ctx.engine);
  eventlog::export_metrics(e, *ctx.log);
  dns::LookupTotals lookups;  // hooks' and delivery's: one resolver per worker
  for (const auto* r : ctx.resolvers) lookups.add(r->stats());
  dns::export_metrics(e, lookups);
  policy::export_metrics(e, *ctx.policy, ctx.config->workers);
  if (ctx.webhooks) ctx.webhooks->export_metrics(e);
  if (const auto* c = ctx.cluster.load()) c->export_metrics(e);
  if (const auto* l = ctx.leases.load()) l->export_metrics(e);
  if (const auto* s = ctx.shared_suppression.load()) s->export_metrics(e);
  if (const auto* t = ctx.shared_suspensions.load()) t->export_metrics(e);
  if (const auto* t = ctx.shared_shaping.load()) t->export_metrics(e);
  if (const auto* r = ctx.rates.load()) r->export_metrics(e);
  if (const auto* w = ctx.warmup.load()) w->export_metrics(e);
  return e.text();
}

}  // namespace mailgate::app
