// settings/sections: configure{} = the top-level keys + each module's section.
#include "settings/sections.hpp"

#include <unistd.h>

#include <algorithm>
#include <thread>

namespace mailgate::settings {
namespace {

using C = GatewayConfig;

void printable_name(const std::string& h, const std::string& key, const config::Context& ctx) {
  const bool ok = !h.empty() && h.size() <= 255 && std::all_of(h.begin(), h.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c > 0x20 && c < 0x7f;
  });
  if (!ok) ctx.expected(key, "a host name (printable, no spaces)", config::Value::of(h));
}

void machine_hostname(std::string& out) {
  char buf[256] = {};
  out = gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0' ? "localhost" : buf;
}

void one_worker_per_core(GatewayConfig& c, const std::string&, const config::Context&) {
  if (c.workers == 0) c.workers = std::max(1u, std::thread::hardware_concurrency());
  // A cluster node is named by the gateway's host name unless told otherwise.
  if (c.cluster.node.empty()) c.cluster.node = c.hostname;
}

}  // namespace

const config::Section<GatewayConfig>& configure_section() {
  static const config::Section<C> s{
      {
          config::string("hostname", &C::hostname, "banner, EHLO, `Received:`, DSNs")
              .check(printable_name)
              .otherwise(machine_hostname, "the machine's host name"),
          config::integer("workers", &C::workers, "worker threads, each with its own event loop", 0,
                          1024)
              .shown_default("`0` (one per core)"),
          config::section("spool", &C::spool, spool::spool_section(), "the spool"),
          config::section("http", &C::http, http::http_section(), "the admin HTTP API"),
          config::section("dns", &C::dns, dns::dns_section(), "DNS resolution"),
          config::section("tls", &C::tls, tls::tls_section(),
                          "certificate of the inbound listeners (STARTTLS, implicit TLS)"),
          config::section("log", &C::log, eventlog::log_section(), "logs"),
          config::section("delivery", &C::delivery, delivery::delivery_section(),
                          "outbound delivery defaults"),
          config::section("policy", &C::policy, policy::policy_section(),
                          "limits of Lua hook calls"),
          config::section("metrics", &C::metrics, metrics::metrics_section(), "`/metrics`"),
          config::section("feedback", &C::feedback, feedback::feedback_section(),
                          "inbound bounces and complaints (`route` results `{ consume = ... }`)"),
          config::section("webhooks", &C::webhooks, webhooks::webhooks_section(),
                          "limits of webhook targets (targets: `mailgate.webhook{}`)"),
          config::section("cluster", &C::cluster, cluster::cluster_section(),
                          "several nodes sharing one Redis (README \"Running several nodes\")"),
      },
      one_worker_per_core};
  return s;
}

}  // namespace mailgate::settings
