// submit/submit_metrics: mailgate_messages_received_total{protocol},
// mailgate_received_bytes_total.
#include "submit/submit_metrics.hpp"

namespace mailgate::submit {
namespace {

constexpr metrics::Family kReceived{"mailgate_messages_received_total",
                                    metrics::Type::Counter,
                                    "Messages accepted and spooled",
                                    {"protocol"}};
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
}

}  // namespace mailgate::submit
