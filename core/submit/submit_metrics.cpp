// submit/submit_metrics: mailgate_messages_received_total{protocol},
// mailgate_received_bytes_total, mailgate_dkim_signatures_total{result}.
#include "submit/submit_metrics.hpp"

namespace mailgate::submit {
namespace {

constexpr metrics::Family kReceived{"mailgate_messages_received_total",
                                    metrics::Type::Counter,
                                    "Messages accepted and spooled",
                                    {"protocol"}};
constexpr metrics::Family kDkim{"mailgate_dkim_signatures_total",
                                metrics::Type::Counter,
                                "DKIM signatures asked for by msg:dkim_sign: signed, failed "
                                "(message tempfailed), sent_unsigned (on_error = send_unsigned)",
                                {"result"}};
constexpr metrics::Family kFeedback{
    "mailgate_feedback_reports_total",
    metrics::Type::Counter,
    "inbound feedback events (async_bounce, complaint records) by kind and whether they matched "
    "a message this gateway sent",
    {"kind", "matched"}};
constexpr metrics::Family kFeedbackUnparsed{
    "mailgate_feedback_unparsed_total",
    metrics::Type::Counter,
    "consumed reports that were not used: unreadable, no failed recipient, or too large",
    {"kind"}};
constexpr metrics::Family kFeedbackTenant{
    "mailgate_feedback_tenant_reports_total",
    metrics::Type::Counter,
    "matched inbound feedback events by the tenant of the original message (msg meta `tenant`; "
    "at most 256 tenants per worker, then \"other\")",
    {"kind", "tenant"}};
constexpr metrics::Family kBytes{"mailgate_received_bytes_total", metrics::Type::Counter,
                                 "Bytes of accepted messages"};

double count(Source s, const SubmitTotals& t) {
  return static_cast<double>(t.received[static_cast<int>(s)]);
}

}  // namespace

SubmitTotals sum_stats(const std::vector<Submitter*>& submitters) {
  SubmitTotals t;
  auto v = [](const SubmitStats::Counter& c) { return c.load(std::memory_order_relaxed); };
  for (const auto* sub : submitters) {
    const auto& s = sub->stats();
    for (std::size_t i = 0; i < kSourceCount; ++i) t.received[i] += v(s.received[i]);
    t.bytes += v(s.bytes_received);
    t.rejected_data += v(s.recipients_rejected_data);
    t.rejected_message += v(s.recipients_rejected_message);
    t.http_accepted += v(s.http_recipients_accepted);
    t.http_rejected += v(s.http_recipients_rejected);
    t.dkim_signed += v(s.dkim_signed);
    t.dkim_failed += v(s.dkim_failed);
    t.dkim_sent_unsigned += v(s.dkim_sent_unsigned);
    for (int k = 0; k < 2; ++k) {
      for (int m = 0; m < 2; ++m) t.feedback_events[k][m] += v(s.feedback_events[k][m]);
      t.feedback_unparsed[k] += v(s.feedback_unparsed[k]);
    }
    {
      std::lock_guard lk(s.feedback_tenants_mu);
      for (const auto& [tenant, n] : s.feedback_tenants)
        for (int k = 0; k < 2; ++k) t.feedback_tenants[tenant][k] += n[k];
    }
    t.discards.resize(s.discards.labels(), 0);
    for (std::size_t l = 0; l < s.discards.labels(); ++l)
      t.discards[l] += s.discards.get(metrics::Outcome::Discard, l);
  }
  return t;
}

void export_metrics(metrics::Exposition& e, const SubmitTotals& t) {
  // Generated messages (DSNs) are not "received".
  e.add(kReceived, count(Source::Smtp, t), {"smtp"});
  e.add(kReceived, count(Source::Http, t), {"http"});
  e.add(kBytes, static_cast<double>(t.bytes));
  e.add(kDkim, static_cast<double>(t.dkim_signed), {"signed"});
  e.add(kDkim, static_cast<double>(t.dkim_failed), {"failed"});
  e.add(kDkim, static_cast<double>(t.dkim_sent_unsigned), {"sent_unsigned"});
  const char* kinds[2] = {"bounce", "complaint"};
  for (int k = 0; k < 2; ++k) {
    e.add(kFeedback, static_cast<double>(t.feedback_events[k][0]), {kinds[k], "false"});
    e.add(kFeedback, static_cast<double>(t.feedback_events[k][1]), {kinds[k], "true"});
    e.add(kFeedbackUnparsed, static_cast<double>(t.feedback_unparsed[k]), {kinds[k]});
    for (const auto& [tenant, n] : t.feedback_tenants)
      e.add(kFeedbackTenant, static_cast<double>(n[k]), {kinds[k], tenant});
  }
}

}  // namespace mailgate::submit
