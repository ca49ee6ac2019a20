// settings/validate: --set, then configure{} and every listen{} read
// with their sections, then the rules that span sections.
#include "settings/gateway_config.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "config/overrides.hpp"
#include "settings/sections.hpp"

namespace mailgate::settings {
namespace {

// "listen.KEY" / "listen.N.KEY" go to a listener, anything else to configure{}.
config::Override apply_override(const std::string& text, ConfigTables& t) {
  const auto a = config::parse_assignment(text);
  if (a.segments.front() != "listen") return {text, config::assign(t.configure, a, 0, "")};
  std::size_t index = 1;
  std::size_t first = 1;
  if (a.segments.size() > 2 && config::is_index(a.segments[1])) {
    index = std::strtoull(a.segments[1].c_str(), nullptr, 10);
    first = 2;
  }
  if (a.segments.size() <= first) {
    throw config::Error(
        fmt::format("--set {}: name a listener key (e.g. listen.address=...)", text));
  }
  if (index == 0 || index > t.listen.size()) {
    throw config::Error(fmt::format("--set {}: the config has {} mailgate.listen{{}} call(s)", text,
                                    t.listen.size()));
  }
  return {text, config::assign(t.listen[index - 1], a, first,
                               config::item_path("listen", static_cast<long long>(index)))};
}

// A listener without a certificate of its own uses the global one, and a
// listener that speaks TLS needs one; http.tls = true is the global one.
void share_certificates(GatewayConfig& c, const config::Context& ctx) {
  if (c.http.tls_from_global) {
    if (c.tls.cert.empty()) {
      ctx.fail("http.tls",
               "http.tls: true needs a certificate: tls = { cert = \"...\", key = "
               "\"...\" } in configure{}, or http.tls = { cert = ..., key = ... }");
    }
    c.http.tls = c.tls;
  }
  for (std::size_t i = 0; i < c.listeners.size(); ++i) {
    auto& l = c.listeners[i];
    if (l.tls.cert.empty()) l.tls = c.tls;
    if ((l.starttls || l.implicit_tls) && l.tls.cert.empty()) {
      const auto key =
          config::field_path(config::item_path("listen", static_cast<long long>(i + 1)),
                             l.starttls ? "starttls" : "implicit_tls");
      ctx.fail(key, key +
                        ": needs a certificate: tls = { cert = \"...\", key = \"...\" } in "
                        "configure{} or in this listener");
    }
  }
}

}  // namespace

GatewayConfig validate(ConfigTables tables, const std::string& file,
                       const std::vector<std::string>& overrides) {
  std::vector<config::Override> applied;
  for (const auto& o : overrides) applied.push_back(apply_override(o, tables));
  const config::Context ctx(file, std::move(applied));

  GatewayConfig c;
  configure_section().read(tables.configure, c, "", ctx);

  if (tables.listen.empty()) ctx.fail("listen", "no mailgate.listen{} in config");
  const auto in_listen = ctx.in_call("listen");
  for (std::size_t i = 0; i < tables.listen.size(); ++i) {
    auto& l = c.listeners.emplace_back();
    server::listener_section().read(
        tables.listen[i], l, config::item_path("listen", static_cast<long long>(i + 1)), in_listen);
  }
  const auto in_webhook = ctx.in_call("webhook");
  for (std::size_t i = 0; i < tables.webhook.size(); ++i) {
    auto& t = c.webhooks.targets.emplace_back();
    webhooks::target_section().read(tables.webhook[i], t,
                                    config::item_path("webhook", static_cast<long long>(i + 1)),
                                    in_webhook);
  }
  webhooks::check_targets(c.webhooks.targets, ctx);
  share_certificates(c, ctx);
  server::check_listeners(c.listeners, "listen", ctx);
  return c;
}

}  // namespace mailgate::settings
