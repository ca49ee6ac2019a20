// settings/sections: the configure{} table's section (the top-level keys and
// every module's section), shared by validation and the reference. A
// listen{} table is server::listener_section().
#pragma once

#include "config/schema.hpp"
#include "settings/gateway_config.hpp"

namespace mailgate::settings {

const config::Section<GatewayConfig>& configure_section();

}  // namespace mailgate::settings
