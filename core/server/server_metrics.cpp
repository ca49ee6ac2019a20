// server/server_metrics: the SMTP and recipient families (see the header).
#include "server/server_metrics.hpp"

namespace mailgate::server {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kConnections{"mailgate_smtp_connections_total", Type::Counter,
                              "SMTP connections accepted"};
constexpr Family kSessions{"mailgate_smtp_sessions_active", Type::Gauge, "SMTP sessions open now"};
constexpr Family kAccepted{"mailgate_recipients_accepted_total", Type::Counter,
                           "Recipients accepted at RCPT"};
constexpr Family kRejected{"mailgate_recipients_rejected_total",
                           Type::Counter,
                           "Refusals by stage: recipients (rcpt_to, data, message), connections "
                           "(connect), commands (helo, mail_from)",
                           {"stage"}};
constexpr Family kRefused{"mailgate_smtp_connections_refused_total",
                          Type::Counter,
                          "Connections refused before the greeting, by reason",
                          {"reason"}};
constexpr Family kTimeLimits{"mailgate_smtp_time_limits_total",
                             Type::Counter,
                             "Sessions closed by a time limit (421 4.4.2), by limit",
                             {"limit"}};
constexpr Family kTlsHandshakes{"mailgate_smtp_tls_handshakes_total",
                                Type::Counter,
                                "Inbound TLS handshakes (STARTTLS and implicit TLS), by result",
                                {"result"}};
constexpr Family kAuth{
    "mailgate_smtp_auth_total", Type::Counter, "SMTP AUTH attempts, by result", {"result"}};

double v(const ServerStats::Counter& c) { return static_cast<double>(c.load()); }
double v(std::uint64_t n) { return static_cast<double>(n); }

}  // namespace

void export_metrics(metrics::Exposition& e, const ServerStats& s,
                    const submit::SubmitTotals& submitted) {
  e.add(kConnections, v(s.connections));
  e.add(kSessions, v(s.sessions_active));
  e.add(kAccepted, v(s.recipients_accepted) + v(submitted.http_accepted));
  e.add(kRejected, v(s.connections_rejected_policy), {"connect"});
  e.add(kRejected, v(s.helo_rejected_policy), {"helo"});
  e.add(kRejected, v(s.senders_rejected_policy), {"mail_from"});
  e.add(kRejected,
        v(s.recipients_rejected_relay) + v(s.recipients_rejected_syntax) +
            v(s.recipients_rejected_limit) + v(s.recipients_rejected_policy) +
            v(submitted.http_rejected),
        {"rcpt_to"});
  e.add(kRejected, v(submitted.rejected_data), {"data"});
  e.add(kRejected, v(submitted.rejected_message), {"message"});
  e.add(kRefused, v(s.refused_listener_full), {"listener_cap"});
  e.add(kRefused, v(s.refused_ip_cap), {"ip_cap"});
  e.add(kRefused, v(s.refused_ip_rate), {"ip_rate"});
  e.add(kRefused, v(s.early_talkers), {"early_talker"});
  e.add(kTimeLimits, v(s.timeouts), {"read"});
  e.add(kTimeLimits, v(s.limit_session), {"session"});
  e.add(kTimeLimits, v(s.limit_transaction), {"transaction"});
  e.add(kTimeLimits, v(s.limit_data_rate), {"data_rate"});
  e.add(kTlsHandshakes, v(s.tls_ok), {"ok"});
  e.add(kTlsHandshakes, v(s.tls_failed), {"failed"});
  e.add(kTlsHandshakes, v(s.tls_timeout), {"timeout"});
  e.add(kAuth, v(s.auth_ok), {"success"});
  e.add(kAuth, v(s.auth_failed), {"failure"});
  e.add(kAuth, v(s.auth_tempfail), {"tempfail"});
  e.add(kAuth, v(s.auth_throttled), {"throttled"});
}

}  // namespace mailgate::server
