// app/config_load: the config of a command (serve, check-config, tls
// self-signed): loaded, or the error printed once, the same way for all, as
// "mailgate: config error: …" on stderr (the command then exits 1).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "settings/gateway_config.hpp"

namespace mailgate::app {

std::optional<settings::GatewayConfig> load_config_or_report(const std::string& path,
                                                             const std::vector<std::string>& sets);

}  // namespace mailgate::app
