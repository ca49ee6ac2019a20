// app/service_notify: tells the service manager how the gateway is doing
// (systemd's sd_notify protocol, for `Type=notify` units): READY once every
// listener is open, STATUS lines while the spool is recovered, STOPPING when
// the drain begins. Outside systemd (no $NOTIFY_SOCKET) every call is a no-op.
#pragma once

#include <string>

namespace mailgate::app {

void notify_ready(const std::string& status);
void notify_status(const std::string& status);
void notify_stopping(const std::string& status);

}  // namespace mailgate::app
