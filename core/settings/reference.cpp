// settings/reference: the Markdown reference of every key, generated from
// the sections (README's "Configuration" reference is this text, checked by
// the readme_config_reference test).
#include "config/reference.hpp"
#include "settings/gateway_config.hpp"
#include "settings/sections.hpp"

namespace mailgate::settings {

std::string reference_markdown() {
  std::vector<config::DocRow> configure, listen, webhook;
  configure_section().document(GatewayConfig{}, "", configure);
  server::listener_section().document(server::ListenerConfig{}, "", listen);
  webhooks::target_section().document(webhooks::TargetConfig{}, "", webhook);
  return "Units: sizes are bytes or strings with `KB`/`MB`/`GB`/`TB` (powers of 1000) or\n"
         "`KiB`/`MiB`/`GiB`/`TiB` (powers of 1024); durations are seconds or strings with\n"
         "`ms`/`s`/`m`/`h`/`d` (`\"500ms\"`, `\"5m\"`, `\"2d\"`); rates are `\"N/s\"`, "
         "`\"N/min\"`, `\"N/h\"`.\n"
         "A fraction must give a whole number of bytes or milliseconds.\n"
         "\n"
         "Keys of `mailgate.configure{}`:\n"
         "\n" +
         config::markdown_table(configure) +
         "\n"
         "Listener keys (`mailgate.listen{}`, one call per listener):\n"
         "\n" +
         config::markdown_table(listen) +
         "\n"
         "Webhook target keys (`mailgate.webhook{}`, one call per target):\n"
         "\n" +
         config::markdown_table(webhook);
}

}  // namespace mailgate::settings
