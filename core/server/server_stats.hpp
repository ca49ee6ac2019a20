// server/server_stats: inbound counters, one block per worker (written only by
// that worker; read by anyone with relaxed loads). The Prometheus exposition
// (a later issue) sums these blocks at scrape time.
#pragma once

#include <atomic>
#include <cstdint>

namespace mailgate::server {

struct ServerStats {
  using Counter = std::atomic<std::uint64_t>;
  Counter connections{0};        // accepted TCP connections
  Counter sessions_active{0};    // gauge
  Counter messages_received{0};  // 250 after end of data
  Counter messages_injected{0};  // ... of them, by HTTP inject
  Counter bytes_received{0};
  Counter recipients_accepted{0};
  Counter recipients_rejected_relay{0};
  Counter recipients_rejected_syntax{0};
  Counter recipients_rejected_limit{0};
  Counter messages_rejected{0};    // end of data answered 5xx
  Counter messages_tempfailed{0};  // end of data answered 4xx (spool errors)
  Counter bare_lf_rejected{0};
  Counter errors{0};            // error replies sent
  Counter sessions_dropped{0};  // closed for too many errors / junk / forbidden command
  Counter timeouts{0};
  // Refused by a policy hook (errors included), by stage.
  Counter connections_rejected_policy{0};
  Counter helo_rejected_policy{0};
  Counter senders_rejected_policy{0};
  Counter recipients_rejected_policy{0};
  Counter messages_rejected_policy{0};
  Counter recipients_discarded{0};         // route hook: {discard = true}
  Counter recipients_rejected_data{0};     // recipients of messages refused at end of data
  Counter recipients_rejected_message{0};  // ... refused by the message hook

  void add(const ServerStats& o);  // for summing per-worker blocks
};

inline void ServerStats::add(const ServerStats& o) {
  auto s = [](Counter& a, const Counter& b) {
    a.fetch_add(b.load(std::memory_order_relaxed), std::memory_order_relaxed);
  };
  s(connections, o.connections);
  s(sessions_active, o.sessions_active);
  s(messages_received, o.messages_received);
  s(messages_injected, o.messages_injected);
  s(bytes_received, o.bytes_received);
  s(recipients_accepted, o.recipients_accepted);
  s(recipients_rejected_relay, o.recipients_rejected_relay);
  s(recipients_rejected_syntax, o.recipients_rejected_syntax);
  s(recipients_rejected_limit, o.recipients_rejected_limit);
  s(messages_rejected, o.messages_rejected);
  s(messages_tempfailed, o.messages_tempfailed);
  s(bare_lf_rejected, o.bare_lf_rejected);
  s(errors, o.errors);
  s(sessions_dropped, o.sessions_dropped);
  s(timeouts, o.timeouts);
  s(connections_rejected_policy, o.connections_rejected_policy);
  s(helo_rejected_policy, o.helo_rejected_policy);
  s(senders_rejected_policy, o.senders_rejected_policy);
  s(recipients_rejected_policy, o.recipients_rejected_policy);
  s(messages_rejected_policy, o.messages_rejected_policy);
  s(recipients_discarded, o.recipients_discarded);
  s(recipients_rejected_data, o.recipients_rejected_data);
  s(recipients_rejected_message, o.recipients_rejected_message);
}

}  // namespace mailgate::server
