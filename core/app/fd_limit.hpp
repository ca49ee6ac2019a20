// app/fd_limit: the open-file limit against what the config allows. Every
// SMTP session, outbound connection and spool file is a descriptor: a soft
// limit under the listeners' session caps turns load into failed accepts.
// Promises: raises the soft limit up to the hard one (never above it) and logs
// a warning with both numbers when it is still below the caps.
#pragma once

#include "settings/gateway_config.hpp"

namespace mailgate::app {

void check_fd_limit(const settings::GatewayConfig& cfg);

}  // namespace mailgate::app
