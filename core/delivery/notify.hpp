// delivery/notify: tells the rest of the gateway what an attempt did, once its
// results are durable (record.hpp): the delivery log, the worker's counters
// and metrics, and the DSN hand-off to the submission stage. (The outcome
// hooks, which are coroutines, are in outcome_hooks.hpp.)
// Promises:
// - Called only after the results are synced, so nothing is logged,
//   counted or handed on that a restart could undo.
// - One log record and one count per recipient outcome, the event's name
//   taken from the typed event (classify.hpp) here, at the edge; a
//   connection-level deferral is one transient_failure record and count for
//   the destination (bounce_class "routing").
// - Counters have one writer (the worker settling) and are summed by scrapes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "delivery/classify.hpp"
#include "delivery/record.hpp"
#include "delivery/tls_client.hpp"
#include "eventlog/delivery_log.hpp"
#include "metrics/histogram.hpp"
#include "metrics/outcome_counters.hpp"

namespace mailgate::webhooks {
class Webhooks;
}

namespace mailgate::delivery {

// One worker's delivery counters.
struct DeliveryCounters {
  explicit DeliveryCounters(std::size_t labels, std::size_t tenant_labels = 1)
      : outcomes(labels), tenant_outcomes(tenant_labels) {}
  std::atomic<std::uint64_t> delivered{0}, deferred{0}, bounced{0}, expired{0}, dsns{0};
  metrics::OutcomeCounters outcomes;  // [result][destination label]
  // [result][tenant label] (metrics.tenants), for messages with a tenant only.
  metrics::OutcomeCounters tenant_outcomes;
  metrics::Histogram queue_delay_seconds{metrics::queue_delay_buckets()};  // final outcomes
};

// Where an attempt's news goes.
struct Listeners {
  eventlog::DeliveryLog& log;
  unsigned producer;  // the worker's log queue
  const metrics::DestinationLabels& labels;
  DeliveryCounters& counters;
  std::function<void(DsnMessage&&)> submit_dsn;  // the submission stage of the worker
  // Events without a commit (connection-level deferrals) go to the webhooks
  // from here; an attempt's outcomes are staged in its commit (settle.cpp).
  webhooks::Webhooks* webhooks = nullptr;
  const metrics::DestinationLabels* tenant_labels = nullptr;  // metrics.tenants (null: none)
};

// The delivery log records of `plan`, one per outcome, in order.
std::vector<eventlog::LogRecord> log_records(const DeliveryPlan& plan,
                                             const spool::Envelope& envelope,
                                             const AttemptContext& at);

// Logs and counts every outcome of `plan`, then hands `dsn` (if any) on.
void publish(const DeliveryPlan& plan, const spool::Envelope& envelope, const AttemptContext& at,
             std::optional<DsnMessage> dsn, Listeners& to);

// The log record of a connection-level deferral (no recipient, no attempt);
// `tls_failure` (not None) becomes its `tls_error`.
eventlog::LogRecord deferral_record(const std::string& destination, const smtp::Reply& last,
                                    TlsFailure tls_failure, std::int64_t now_ms);

// No MX of `destination` accepted a connection (`last` is the reply that
// decided, `tls_failure` why TLS policy refused it, if it did): the
// destination is deferred without counting attempts.
void publish_deferral(const std::string& destination, const smtp::Reply& last,
                      TlsFailure tls_failure, std::int64_t now_ms, Listeners& to);

}  // namespace mailgate::delivery
