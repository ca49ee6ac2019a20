// app/config_load: see config_load.hpp.
#include "app/config_load.hpp"

#include <cstdio>

#include "policy/config.hpp"

namespace mailgate::app {

std::optional<settings::GatewayConfig> load_config_or_report(const std::string& path,
                                                             const std::vector<std::string>& sets) {
  try {
    return policy::load_config(path, sets);
  } catch (const policy::ConfigError& e) {
    std::fprintf(stderr, "mailgate: config error: %s\n", e.what());
    return std::nullopt;
  }
}

}  // namespace mailgate::app
