// metrics/metrics_config: the keys of the `metrics` section.
#include "metrics/metrics_config.hpp"

#include "config/schema.hpp"
#include "dns/idna.hpp"
#include "tenancy/tenancy.hpp"

namespace mailgate::metrics {

const config::Section<MetricsConfig>& metrics_section() {
  using C = MetricsConfig;
  static const config::Section<C> s{{
      config::list<C, std::string>(
          "destinations", &C::destinations,
          "destinations that get their own `destination` label in `/metrics` (e.g. `{ "
          "\"gmail.com\", \"[10.1.2.3]:2525\" }`); every other one counts as `other`",
          "strings",
          // Compared with destinations in the one normalized form.
          [](const config::Value& v, const std::string& key, const config::Context& ctx) {
            return dns::normalize_domain(config::read_string(v, key, ctx));
          },
          [](const std::string& x) { return x; }),
      config::list<C, std::string>(
          "tenants", &C::tenants,
          "tenants (`msg:set_tenant`) that get their own `tenant` label in "
          "`mailgate_tenant_messages_total` (e.g. `{ \"acme\", \"globex\" }`); every other "
          "tenant counts as `other` (compared case-insensitively)",
          "strings",
          [](const config::Value& v, const std::string& key, const config::Context& ctx) {
            auto name = config::read_string(v, key, ctx);
            if (!tenancy::valid_name(name))
              ctx.fail(key, key + ": a tenant is 1..64 bytes of letters, digits, '.', '_' or '-'");
            return name;
          },
          [](const std::string& x) { return x; }),
  }};
  return s;
}

}  // namespace mailgate::metrics
