// delivery/notify: see notify.hpp.
#include "delivery/notify.hpp"

#include "text/ascii.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::delivery {

std::vector<eventlog::LogRecord> log_records(const DeliveryPlan& plan,
                                             const spool::Envelope& envelope,
                                             const AttemptContext& at) {
  std::vector<eventlog::LogRecord> records;
  records.reserve(plan.outcomes.size());
  const std::string id = at.id.hex();
  for (const auto& o : plan.outcomes) {
    auto& lr = records.emplace_back();
    lr.event = event_name(o.event);
    lr.time_ms = at.now_ms;
    lr.id = id;
    lr.sender = envelope.sender;
    lr.recipient = envelope.recipients[o.index].address;
    lr.destination = at.destination;
    lr.mx = at.mx;
    lr.code = o.reply.code;
    lr.enhanced = o.reply.enhanced;
    lr.text = one_line(o.reply);
    lr.bounce_class = smtp::to_string(o.bounce_class);
    lr.attempt = plan.attempt;
    lr.tls = at.tls;
    lr.size = envelope.size;
    lr.meta = envelope.meta;
    lr.auth_user = envelope.auth_user;
  }
  return records;
}

void publish(const DeliveryPlan& plan, const spool::Envelope& envelope, const AttemptContext& at,
             std::optional<DsnMessage> dsn, Listeners& to) {
  auto& c = to.counters;
  const auto label = to.labels.index(at.destination);
  const double age_s = static_cast<double>(at.now_ms - at.received_ms()) / 1000.0;
  for (const auto& o : plan.outcomes) {
    c.outcomes.add(outcome_of(o.event), label);
    if (o.event != DeliveryEvent::TransientFailure) c.queue_delay_seconds.observe(age_s);
  }
  auto records = log_records(plan, envelope, at);
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (auto tenant = eventlog::tenant_of(records[i]); !tenant.empty() && to.tenant_labels)
      c.tenant_outcomes.add(outcome_of(plan.outcomes[i].event),
                            to.tenant_labels->index(text::to_lower(tenant)));
    switch (plan.outcomes[i].event) {
      case DeliveryEvent::Delivery:
        c.delivered.fetch_add(1, std::memory_order_relaxed);
        break;
      case DeliveryEvent::TransientFailure:
        c.deferred.fetch_add(1, std::memory_order_relaxed);
        break;
      case DeliveryEvent::Expiration:
        c.expired.fetch_add(1, std::memory_order_relaxed);
        break;
      case DeliveryEvent::Bounce:
      case DeliveryEvent::AdminBounce:
        c.bounced.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    to.log.write(to.producer, std::move(records[i]));
  }
  if (dsn) {
    c.dsns.fetch_add(1, std::memory_order_relaxed);
    to.submit_dsn(std::move(*dsn));
  }
}

eventlog::LogRecord deferral_record(const std::string& destination, const smtp::Reply& last,
                                    TlsFailure tls_failure, std::int64_t now_ms) {
  eventlog::LogRecord rec;
  rec.event = event_name(DeliveryEvent::TransientFailure);
  rec.time_ms = now_ms;
  rec.destination = destination;
  rec.code = last.code;
  rec.enhanced = last.enhanced;
  rec.text = one_line(last);
  rec.bounce_class = smtp::to_string(smtp::BounceClass::Routing);
  rec.tls_error = to_string(tls_failure);
  return rec;
}

void publish_deferral(const std::string& destination, const smtp::Reply& last,
                      TlsFailure tls_failure, std::int64_t now_ms, Listeners& to) {
  auto rec = deferral_record(destination, last, tls_failure, now_ms);
  if (to.webhooks) to.webhooks->publish_uncommitted(rec);
  to.log.write(to.producer, std::move(rec));
  // Counted like the log line it matches (one per destination deferral).
  to.counters.outcomes.add(outcome_of(DeliveryEvent::TransientFailure),
                           to.labels.index(destination));
}

}  // namespace mailgate::delivery
