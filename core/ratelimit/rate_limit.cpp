// ratelimit/rate_limit: see rate_limit.hpp.
#include "ratelimit/rate_limit.hpp"

#include <algorithm>

namespace mailgate::ratelimit {

std::string_view rate_kind_name(RateKind k) {
  switch (k) {
    case RateKind::Lua:
      return "lua";
    case RateKind::MessageRate:
      return "message_rate";
    case RateKind::ConnectionRate:
      return "connection_rate";
    case RateKind::SiteRate:
      return "site_rate";
  }
  return "unknown";
}

RateLimit::RateLimit(double per_second, std::uint32_t burst, RateBackend* backend, RateKind kind,
                     std::string_view key) {
  if (!(per_second > 0)) return;
  if (backend) {
    shared_ = backend->make(kind, key, per_second, std::max<std::uint32_t>(1, burst));
    if (shared_) return;
  }
  local_ = Gcra(per_second, burst);
}

std::int64_t RateLimit::acquire(std::int64_t now_us) {
  return shared_ ? shared_->acquire(now_us) : local_.acquire(now_us);
}

std::int64_t RateLimit::wait_us(std::int64_t now_us) const {
  return shared_ ? shared_->wait_us(now_us) : local_.wait_us(now_us);
}

std::int64_t RateLimit::idle_at_us() const {
  return shared_ ? shared_->idle_at_us() : local_.tat_us();
}

}  // namespace mailgate::ratelimit
