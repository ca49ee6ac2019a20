// app/fd_limit: see fd_limit.hpp.
#include "app/fd_limit.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cstdint>

namespace mailgate::app {

void check_fd_limit(const settings::GatewayConfig& cfg) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    const auto before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
      spdlog::debug("open-file limit raised from {} to {}", before, lim.rlim_cur);
    } else {
      lim.rlim_cur = before;
    }
  }
  // Sessions the listeners may hold, plus outbound connections and headroom
  // for the spool, logs and the admin listener.
  std::uint64_t sessions = 0;
  for (const auto& l : cfg.listeners) sessions += l.max_connections;
  const std::uint64_t need = sessions + 1024;
  if (sessions > 0 && lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < need) {
    spdlog::warn(
        "open-file limit is {} but the listeners allow {} sessions (max_connections): past "
        "~{} descriptors new connections fail; raise it to at least {} (LimitNOFILE= in the "
        "systemd unit, `ulimit -n`) or lower max_connections",
        lim.rlim_cur, sessions, lim.rlim_cur, need);
  }
}

}  // namespace mailgate::app
