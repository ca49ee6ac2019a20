// server/server_stats: the SMTP dialogue's counters, one block per worker
// (written only by that worker; read by anyone with relaxed loads), summed
// by the /metrics page at scrape time. What happens to finished messages is
// counted by the submission stage (submit::SubmitStats).
#pragma once

#include <atomic>
#include <cstdint>

namespace mailgate::server {

struct ServerStats {
  using Counter = std::atomic<std::uint64_t>;
  Counter connections{0};      // accepted TCP connections
  Counter sessions_active{0};  // gauge
  Counter recipients_accepted{0};
  Counter recipients_rejected_relay{0};
  Counter recipients_rejected_syntax{0};
  Counter recipients_rejected_limit{0};
  Counter errors{0};            // error replies sent
  Counter sessions_dropped{0};  // closed for too many errors / junk / forbidden command
  Counter timeouts{0};
  // Refused by a policy hook (errors included), by stage.
  Counter connections_rejected_policy{0};
  Counter helo_rejected_policy{0};
  Counter senders_rejected_policy{0};
  Counter recipients_rejected_policy{0};
  // Abuse limits: connections refused before the greeting, by reason, and
  // sessions ended by a time limit, by limit.
  Counter refused_listener_full{0}, refused_ip_cap{0}, refused_ip_rate{0}, early_talkers{0};
  Counter limit_session{0}, limit_transaction{0}, limit_data_rate{0};
  // TLS handshakes (STARTTLS and implicit TLS), by result.
  Counter tls_ok{0}, tls_failed{0}, tls_timeout{0};
  Counter tls_pipelined_discarded{0};  // STARTTLS with input after it (CVE-2011-0411 probes)
  // SMTP AUTH attempts, by result.
  Counter auth_ok{0}, auth_failed{0}, auth_tempfail{0}, auth_throttled{0};

  void add(const ServerStats& o);  // for summing per-worker blocks
};

inline void ServerStats::add(const ServerStats& o) {
  auto s = [](Counter& a, const Counter& b) {
    a.fetch_add(b.load(std::memory_order_relaxed), std::memory_order_relaxed);
  };
  s(connections, o.connections);
  s(sessions_active, o.sessions_active);
  s(recipients_accepted, o.recipients_accepted);
  s(recipients_rejected_relay, o.recipients_rejected_relay);
  s(recipients_rejected_syntax, o.recipients_rejected_syntax);
  s(recipients_rejected_limit, o.recipients_rejected_limit);
  s(errors, o.errors);
  s(sessions_dropped, o.sessions_dropped);
  s(timeouts, o.timeouts);
  s(connections_rejected_policy, o.connections_rejected_policy);
  s(helo_rejected_policy, o.helo_rejected_policy);
  s(senders_rejected_policy, o.senders_rejected_policy);
  s(recipients_rejected_policy, o.recipients_rejected_policy);
  s(refused_listener_full, o.refused_listener_full);
  s(refused_ip_cap, o.refused_ip_cap);
  s(refused_ip_rate, o.refused_ip_rate);
  s(early_talkers, o.early_talkers);
  s(limit_session, o.limit_session);
  s(limit_transaction, o.limit_transaction);
  s(limit_data_rate, o.limit_data_rate);
  s(tls_ok, o.tls_ok);
  s(tls_failed, o.tls_failed);
  s(tls_timeout, o.tls_timeout);
  s(tls_pipelined_discarded, o.tls_pipelined_discarded);
  s(auth_ok, o.auth_ok);
  s(auth_failed, o.auth_failed);
  s(auth_tempfail, o.auth_tempfail);
  s(auth_throttled, o.auth_throttled);
}

}  // namespace mailgate::server
