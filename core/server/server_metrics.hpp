// server/server_metrics: the metric families of inbound SMTP (connections,
// sessions, refusals before the greeting, time limits, TLS handshakes, AUTH)
// and of recipient admission, which HTTP inject shares (recipients accepted,
// refusals by stage, the submission stage's refusals of finished messages
// included).
#pragma once

#include "metrics/exposition.hpp"
#include "server/server_stats.hpp"
#include "submit/submit_metrics.hpp"

namespace mailgate::server {

// `s`: every worker's counters summed (SmtpServer::totals).
void export_metrics(metrics::Exposition& e, const ServerStats& s,
                    const submit::SubmitTotals& submitted);

}  // namespace mailgate::server
