// server/connection_gate: the connection caps of DESIGN §6b, shared by every
// worker: sessions per listener (max_connections: 421 4.3.2 beyond),
// sessions per client IP over all listeners (max_connections_per_ip: 421
// 4.7.0 beyond) and new connections per client IP (connection_rate_per_ip:
// 421 4.7.0). A session holds a Ticket for its whole life; dropping it gives
// the places back.
// Promises: thread-safe (one short mutex per admission and per release, not
// per command); memory bounded by the sessions open (an IP's entry goes when
// its count is back to 0; the rate limiter bounds its own keys).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ratelimit/shared_limiter.hpp"
#include "server/listener_config.hpp"
#include "smtp/reply.hpp"

namespace mailgate::server {

class ConnectionGate {
 public:
  explicit ConnectionGate(const std::vector<ListenerConfig>& listeners);

  class Ticket {
   public:
    Ticket() = default;
    Ticket(ConnectionGate* gate, std::size_t listener, std::string ip)
        : gate_(gate), listener_(listener), ip_(std::move(ip)) {}
    Ticket(Ticket&& o) noexcept
        : gate_(std::exchange(o.gate_, nullptr)), listener_(o.listener_), ip_(std::move(o.ip_)) {}
    Ticket& operator=(Ticket&& o) noexcept {
      if (this != &o) {
        if (gate_) gate_->release(listener_, ip_);
        gate_ = std::exchange(o.gate_, nullptr);
        listener_ = o.listener_;
        ip_ = std::move(o.ip_);
      }
      return *this;
    }
    ~Ticket() {
      if (gate_) gate_->release(listener_, ip_);
    }

   private:
    ConnectionGate* gate_ = nullptr;
    std::size_t listener_ = 0;
    std::string ip_;
  };

  enum class Refusal { None, ListenerFull, TooManyFromIp, IpRateExceeded };
  struct Admission {
    Refusal refusal = Refusal::None;
    smtp::Reply reply;  // the 421 to send when refused
    Ticket ticket;      // held while the session lives (when admitted)
  };
  // Any thread.
  Admission admit(std::size_t listener, const std::string& ip);

 private:
  void release(std::size_t listener, const std::string& ip);

  const std::vector<ListenerConfig>& listeners_;
  std::mutex mu_;
  std::vector<std::uint32_t> per_listener_;
  std::unordered_map<std::string, std::uint32_t> per_ip_;
  ratelimit::SharedLimiter rate_;
};

}  // namespace mailgate::server
