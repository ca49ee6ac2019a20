// app/metrics_page: GET /metrics. Sums every worker's counters and
// histograms at scrape time (DESIGN §3, §9) and renders them with
// prometheus-cpp. Labels are bounded: destination labels come from
// metrics.destinations (+ "other"), hook labels from the fixed event list.
#include <chrono>

#include "app/admin_api.hpp"
#include "delivery/delivery_engine.hpp"
#include "dns/resolver.hpp"
#include "metrics/exposition.hpp"
#include "policy/config.hpp"
#include "policy/runtime.hpp"
#include "queue/queue_shard.hpp"
#include "server/smtp_server.hpp"
#include "spool/spool_writer.hpp"
#include "submit/submitter.hpp"

namespace mailgate::app {

namespace {

// The submission stages' counters, summed over workers.
struct SubmitTotals {
  double received[submit::kSourceCount] = {};
  double bytes = 0, rejected_data = 0, rejected_message = 0, http_accepted = 0, http_rejected = 0;
};

SubmitTotals submit_totals(const AdminContext& ctx) {
  SubmitTotals t;
  auto v = [](const submit::SubmitStats::Counter& c) { return static_cast<double>(c.load()); };
  for (const auto* sub : ctx.submitters) {
    const auto& s = sub->stats();
    for (std::size_t i = 0; i < submit::kSourceCount; ++i) t.received[i] += v(s.received[i]);
    t.bytes += v(s.bytes_received);
    t.rejected_data += v(s.recipients_rejected_data);
    t.rejected_message += v(s.recipients_rejected_message);
    t.http_accepted += v(s.http_recipients_accepted);
    t.http_rejected += v(s.http_recipients_rejected);
  }
  return t;
}

void smtp_metrics(metrics::Exposition& e, const AdminContext& ctx) {
  server::ServerStats s;
  ctx.smtp->totals(s);
  const auto t = submit_totals(ctx);
  auto v = [](const server::ServerStats::Counter& c) { return static_cast<double>(c.load()); };
  e.counter("mailgate_smtp_connections_total", "SMTP connections accepted", v(s.connections));
  e.gauge("mailgate_smtp_sessions_active", "SMTP sessions open now", v(s.sessions_active));
  e.counter("mailgate_messages_received_total", "Messages accepted and spooled",
            t.received[static_cast<int>(submit::Source::Smtp)], {{"protocol", "smtp"}});
  e.counter("mailgate_messages_received_total", "Messages accepted and spooled",
            t.received[static_cast<int>(submit::Source::Http)], {{"protocol", "http"}});
  e.counter("mailgate_received_bytes_total", "Bytes of accepted messages", t.bytes);
  e.counter("mailgate_recipients_accepted_total", "Recipients accepted at RCPT",
            v(s.recipients_accepted) + t.http_accepted);
  const char* help =
      "Refusals by stage: recipients (rcpt_to, data, message), connections (connect), "
      "commands (helo, mail_from)";
  e.counter("mailgate_recipients_rejected_total", help, v(s.connections_rejected_policy),
            {{"stage", "connect"}});
  e.counter("mailgate_recipients_rejected_total", help, v(s.helo_rejected_policy),
            {{"stage", "helo"}});
  e.counter("mailgate_recipients_rejected_total", help, v(s.senders_rejected_policy),
            {{"stage", "mail_from"}});
  e.counter("mailgate_recipients_rejected_total", help,
            v(s.recipients_rejected_relay) + v(s.recipients_rejected_syntax) +
                v(s.recipients_rejected_limit) + v(s.recipients_rejected_policy) + t.http_rejected,
            {{"stage", "rcpt_to"}});
  const char* refused = "Connections refused before the greeting, by reason";
  e.counter("mailgate_smtp_connections_refused_total", refused, v(s.refused_listener_full),
            {{"reason", "listener_cap"}});
  e.counter("mailgate_smtp_connections_refused_total", refused, v(s.refused_ip_cap),
            {{"reason", "ip_cap"}});
  e.counter("mailgate_smtp_connections_refused_total", refused, v(s.refused_ip_rate),
            {{"reason", "ip_rate"}});
  e.counter("mailgate_smtp_connections_refused_total", refused, v(s.early_talkers),
            {{"reason", "early_talker"}});
  const char* limits = "Sessions closed by a time limit (421 4.4.2), by limit";
  e.counter("mailgate_smtp_time_limits_total", limits, v(s.timeouts), {{"limit", "read"}});
  e.counter("mailgate_smtp_time_limits_total", limits, v(s.limit_session), {{"limit", "session"}});
  e.counter("mailgate_smtp_time_limits_total", limits, v(s.limit_transaction),
            {{"limit", "transaction"}});
  e.counter("mailgate_smtp_time_limits_total", limits, v(s.limit_data_rate),
            {{"limit", "data_rate"}});
  const char* tls = "Inbound TLS handshakes (STARTTLS and implicit TLS), by result";
  e.counter("mailgate_smtp_tls_handshakes_total", tls, v(s.tls_ok), {{"result", "ok"}});
  e.counter("mailgate_smtp_tls_handshakes_total", tls, v(s.tls_failed), {{"result", "failed"}});
  e.counter("mailgate_smtp_tls_handshakes_total", tls, v(s.tls_timeout), {{"result", "timeout"}});
  const char* auth = "SMTP AUTH attempts, by result";
  e.counter("mailgate_smtp_auth_total", auth, v(s.auth_ok), {{"result", "success"}});
  e.counter("mailgate_smtp_auth_total", auth, v(s.auth_failed), {{"result", "failure"}});
  e.counter("mailgate_smtp_auth_total", auth, v(s.auth_tempfail), {{"result", "tempfail"}});
  e.counter("mailgate_smtp_auth_total", auth, v(s.auth_throttled), {{"result", "throttled"}});
  e.counter("mailgate_recipients_rejected_total", help, t.rejected_data, {{"stage", "data"}});
  e.counter("mailgate_recipients_rejected_total", help, t.rejected_message, {{"stage", "message"}});
}

void spool_metrics(metrics::Exposition& e, const AdminContext& ctx) {
  const auto& w = ctx.writer->stats();
  metrics::HistogramSnapshot write, batch;
  w.write_seconds.add_to(write);
  w.batch_size.add_to(batch);
  e.histogram("mailgate_spool_write_seconds", "One spool batch write (with fsync when synced)",
              write);
  e.histogram("mailgate_spool_batch_size", "Requests per spool batch", batch);
  e.counter("mailgate_spool_write_errors_total", "Failed spool writes",
            static_cast<double>(w.errors.load()));
  e.gauge("mailgate_spool_free_bytes", "Free disk space under the spool",
          static_cast<double>(w.free_bytes.load()));
  e.gauge("mailgate_spool_min_free_bytes", "spool.min_free_space",
          static_cast<double>(ctx.writer->min_free_space()));
}

void queue_metrics(metrics::Exposition& e, const AdminContext& ctx) {
  auto summary = ctx.engine->queue_summary(std::chrono::seconds(1));
  if (!summary) return;  // a busy worker: this scrape has no queue gauges
  double scheduled = 0, ready = 0, in_flight = 0, suspended = 0;
  std::int64_t oldest = 0;
  for (const auto& d : *summary) {
    // Each entry in exactly one state: a suspended destination's waiting messages are "suspended".
    in_flight += static_cast<double>(d.in_flight);
    if (d.suspended) {
      suspended += static_cast<double>(d.ready + d.scheduled);
    } else {
      scheduled += static_cast<double>(d.scheduled);
      ready += static_cast<double>(d.ready);
    }
    if (d.oldest_ms && (oldest == 0 || d.oldest_ms < oldest)) oldest = d.oldest_ms;
  }
  const char* help = "Queued messages (per destination entry) by state";
  e.gauge("mailgate_queue_messages", help, scheduled, {{"state", "scheduled"}});
  e.gauge("mailgate_queue_messages", help, ready, {{"state", "ready"}});
  e.gauge("mailgate_queue_messages", help, in_flight, {{"state", "in_flight"}});
  e.gauge("mailgate_queue_messages", help, suspended, {{"state", "suspended"}});
  e.gauge("mailgate_queue_oldest_message_age_seconds", "Age of the oldest queued message",
          oldest ? static_cast<double>(queue::now_ms() - oldest) / 1000.0 : 0.0);
}

void delivery_metrics(metrics::Exposition& e, const AdminContext& ctx) {
  const auto m = ctx.engine->metrics();
  std::vector<std::uint64_t> discards;
  for (const auto* sub : ctx.submitters) {
    const auto& d = sub->stats().discards;
    discards.resize(d.labels(), 0);
    for (std::size_t l = 0; l < d.labels(); ++l) discards[l] += d.get(metrics::Outcome::Discard, l);
  }
  const auto& labels = ctx.engine->labels();
  for (std::size_t l = 0; l < labels.size(); ++l) {
    for (std::size_t o = 0; o < metrics::kOutcomeCount; ++o) {
      const auto outcome = static_cast<metrics::Outcome>(o);
      double n = static_cast<double>(m.outcomes[l][o]);
      if (outcome == metrics::Outcome::Discard && l < discards.size())
        n += static_cast<double>(discards[l]);
      e.counter("mailgate_deliveries_total",
                "Delivery outcomes per recipient (delivery log event names)", n,
                {{"result", std::string(metrics::outcome_name(outcome))},
                 {"destination", std::string(labels.name(l))}});
    }
  }
  e.histogram("mailgate_delivery_seconds", "One delivery attempt (one message, one destination)",
              m.delivery_seconds);
  e.histogram("mailgate_queue_delay_seconds", "Reception to final outcome, per recipient",
              m.queue_delay_seconds);
  e.gauge("mailgate_outbound_connections_active", "Outbound SMTP connections open now",
          static_cast<double>(m.connections_active));
  e.counter("mailgate_outbound_connections_total", "Outbound SMTP connections established",
            static_cast<double>(m.opened_tls), {{"tls", "true"}});
  e.counter("mailgate_outbound_connections_total", "Outbound SMTP connections established",
            static_cast<double>(m.opened_plain), {{"tls", "false"}});
  e.counter("mailgate_bounces_generated_total", "DSNs generated (failed, delayed, relayed)",
            static_cast<double>(m.dsns));

  double ok = m.dns_ok, nx = m.dns_nxdomain, nodata = m.dns_nodata, temp = m.dns_tempfail,
         nullmx = m.dns_nullmx, bad = m.dns_badname;
  for (const auto* r : ctx.hook_resolvers) {
    const auto& s = r->stats();
    ok += s.ok.load();
    nx += s.nxdomain.load();
    nodata += s.nodata.load();
    temp += s.tempfail.load();
    nullmx += s.nullmx.load();
    bad += s.badname.load();
  }
  const char* help = "DNS lookups (MX or address) by result";
  e.counter("mailgate_dns_queries_total", help, ok, {{"result", "ok"}});
  e.counter("mailgate_dns_queries_total", help, nx, {{"result", "nxdomain"}});
  e.counter("mailgate_dns_queries_total", help, nodata, {{"result", "nodata"}});
  e.counter("mailgate_dns_queries_total", help, temp, {{"result", "tempfail"}});
  e.counter("mailgate_dns_queries_total", help, nullmx, {{"result", "nullmx"}});
  e.counter("mailgate_dns_queries_total", help, bad, {{"result", "badname"}});
}

void lua_metrics(metrics::Exposition& e, const AdminContext& ctx) {
  const unsigned workers = ctx.config->workers;
  for (int i = 0; i < policy::kEventCount; ++i) {
    const auto event = static_cast<policy::Event>(i);
    if (event == policy::Event::Auth) continue;  // no AUTH yet
    metrics::HistogramSnapshot h;
    double errors = 0;
    for (unsigned w = 0; w < workers; ++w) {
      const auto& s = ctx.policy->stats(w);
      s.seconds[i]->add_to(h);
      errors += static_cast<double>(s.errors[i].load());
    }
    const std::string hook(policy::event_name(event));
    e.histogram("mailgate_lua_hook_seconds", "Lua hook calls (waits included)", h,
                {{"hook", hook}});
    e.counter("mailgate_lua_errors_total",
              "Lua hook errors and timeouts (SMTP-stage hooks then answer 451 4.3.0)", errors,
              {{"hook", hook}});
  }
}

}  // namespace

std::string render_metrics(const AdminContext& ctx) {
  metrics::Exposition e;
  e.gauge("mailgate_build_info", "mailgate version", 1, {{"version", MAILGATE_VERSION}});
  smtp_metrics(e, ctx);
  spool_metrics(e, ctx);
  queue_metrics(e, ctx);
  delivery_metrics(e, ctx);
  lua_metrics(e, ctx);
  return e.text();
}

}  // namespace mailgate::app
