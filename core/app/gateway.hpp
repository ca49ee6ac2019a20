// app/gateway: the running gateway as one object. start() brings the parts
// up in dependency order (spool, writer and reader, delivery log, workers,
// Lua policy, listeners bound, delivery engine, submission stages, admin
// HTTP, sessions, background recovery); the destructor is the ONE teardown
// path, whatever start() got to.
// Promises:
// - Ids never collide: the id counter floor is reserved before anything can
//   allocate an id.
// - Listeners open before recovery starts, so a big spool does not delay
//   accepting mail; sessions start only once the engine takes their messages.
// - Teardown: HTTP stops, sessions drain (every acknowledged message is
//   synced first), delivery stops and attempts in flight record their
//   results, recovery is cancelled and joined while the workers still run,
//   the workers stop, the spool writer flushes, and only then are the
//   objects living on the workers freed and the workers destroyed.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "settings/gateway_config.hpp"

namespace mailgate::app {

class Gateway {
 public:
  Gateway(settings::GatewayConfig config, std::string config_path,
          std::vector<std::string> overrides);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Returns "" or why the gateway cannot run (logged by the caller).
  std::string start();
  // Blocks until SIGTERM/SIGINT; SIGHUP reopens the delivery log and reloads
  // the policy. Logs recovery progress meanwhile.
  void run_until_signal();
  // The teardown (idempotent; the destructor calls it too).
  void stop();
  // Logs the run's totals (after stop()).
  void log_totals() const;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace mailgate::app
