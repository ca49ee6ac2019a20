// webhooks/webhook_metrics: the webhook families (per target; target names
// are operator-defined and few, so they are fine as labels).
#include "metrics/exposition.hpp"
#include "webhooks/impl.hpp"

namespace mailgate::webhooks {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kEvents{"mailgate_webhook_events_total",
                         Type::Counter,
                         "Webhook events: queued (committed for a target), sent (acknowledged), "
                         "failed (in a POST that failed and will be retried), dead (dead letters)",
                         {"target", "result"}};
constexpr Family kBacklogEvents{"mailgate_webhook_backlog_events",
                                Type::Gauge,
                                "Events waiting for their webhook target",
                                {"target"}};
constexpr Family kBacklogBytes{"mailgate_webhook_backlog_bytes",
                               Type::Gauge,
                               "Bytes of events waiting for their webhook target",
                               {"target"}};
constexpr Family kBacklogLimit{"mailgate_webhook_backlog_limit_bytes", Type::Gauge,
                               "webhooks.max_backlog: beyond it new events are dead letters"};
constexpr Family kDeadLetters{"mailgate_webhook_dead_letters",
                              Type::Gauge,
                              "Dead letters kept in the spool (replay requeues them)",
                              {"target"}};
constexpr Family kPostSeconds{"mailgate_webhook_post_seconds",
                              Type::Histogram,
                              "One webhook POST (connection included)",
                              {"target"}};

}  // namespace

void Webhooks::export_metrics(metrics::Exposition& e) const {
  if (impl_->targets.empty()) return;
  for (const auto& p : impl_->targets) {
    const auto& t = *p;
    const std::string_view name = t.cfg.name;
    e.add(kEvents, static_cast<double>(t.queued.load()), {name, "queued"});
    e.add(kEvents, static_cast<double>(t.sent.load()), {name, "sent"});
    e.add(kEvents, static_cast<double>(t.failed.load()), {name, "failed"});
    e.add(kEvents, static_cast<double>(t.dead.load()), {name, "dead"});
  }
  for (const auto& p : impl_->targets)
    e.add(kBacklogEvents, static_cast<double>(p->backlog_events.load()), {p->cfg.name});
  for (const auto& p : impl_->targets)
    e.add(kBacklogBytes, static_cast<double>(p->backlog_bytes.load()), {p->cfg.name});
  e.add(kBacklogLimit, static_cast<double>(impl_->deps.config->max_backlog));
  for (const auto& p : impl_->targets)
    e.add(kDeadLetters, static_cast<double>(p->dead_letters.load()), {p->cfg.name});
  for (const auto& p : impl_->targets) {
    metrics::HistogramSnapshot h;
    p->post_seconds.add_to(h);
    e.add(kPostSeconds, h, {p->cfg.name});
  }
}

}  // namespace mailgate::webhooks
