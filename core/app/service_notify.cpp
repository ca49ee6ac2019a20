// app/service_notify: see service_notify.hpp.
#include "app/service_notify.hpp"

#include <systemd/sd-daemon.h>

namespace mailgate::app {

namespace {
void send(const std::string& state) {
  // unset_environment = 0: a SIGHUP or a later stop notifies too.
  (void)sd_notify(0, state.c_str());
}
}  // namespace

void notify_ready(const std::string& status) { send("READY=1\nSTATUS=" + status); }
void notify_status(const std::string& status) { send("STATUS=" + status); }
void notify_stopping(const std::string& status) { send("STOPPING=1\nSTATUS=" + status); }

}  // namespace mailgate::app
