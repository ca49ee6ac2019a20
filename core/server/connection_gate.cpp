// server/connection_gate: see connection_gate.hpp.
#include "server/connection_gate.hpp"

#include <chrono>

#include "ratelimit/gcra.hpp"

namespace mailgate::server {

ConnectionGate::ConnectionGate(const std::vector<ListenerConfig>& listeners)
    : listeners_(listeners), per_listener_(listeners.size(), 0) {}

ConnectionGate::Admission ConnectionGate::admit(std::size_t listener, const std::string& ip) {
  const auto& l = listeners_[listener];
  Admission a;
  if (l.connection_rate_per_ip) {
    const auto now_us = ratelimit::steady_us();
    const auto& r = *l.connection_rate_per_ip;
    // Burst: one interval's worth (60/min admits 60 at once, then 1 a second).
    const auto burst = static_cast<std::uint32_t>(std::max(1.0, r.count));
    if (!rate_.check("connect:" + std::to_string(listener) + ":" + ip, r.per_second(), burst,
                     now_us)) {
      a.refusal = Refusal::IpRateExceeded;
      a.reply = {421, "4.7.0", "too many connections from " + ip + " recently, try again later"};
      return a;
    }
  }
  std::lock_guard lock(mu_);
  if (l.max_connections && per_listener_[listener] >= l.max_connections) {
    a.refusal = Refusal::ListenerFull;
    a.reply = {421, "4.3.2", "too many connections, try again later"};
    return a;
  }
  auto& n = per_ip_[ip];
  if (l.max_connections_per_ip && n >= l.max_connections_per_ip) {
    if (n == 0) per_ip_.erase(ip);
    a.refusal = Refusal::TooManyFromIp;
    a.reply = {421, "4.7.0", "too many connections from " + ip + ", try again later"};
    return a;
  }
  ++n;
  ++per_listener_[listener];
  a.ticket = Ticket(this, listener, ip);
  return a;
}

void ConnectionGate::release(std::size_t listener, const std::string& ip) {
  std::lock_guard lock(mu_);
  --per_listener_[listener];
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

}  // namespace mailgate::server
