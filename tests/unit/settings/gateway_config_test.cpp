// Tests of core/settings without a config file: validate() on value trees
// (defaults, --set into configure{} and listeners, the rules across
// sections) and the reference generated from the modules' sections.
#include "settings/gateway_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailgate::settings {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

ConfigTables one_listener(std::string address = "127.0.0.1:2525") {
  ConfigTables t;
  auto l = config::Value::new_table();
  l.table->fields["address"] = config::Value::of(std::move(address));
  t.listen.push_back(l);
  return t;
}

std::string error(ConfigTables t, const std::vector<std::string>& overrides = {}) {
  try {
    validate(std::move(t), "f.lua", overrides);
  } catch (const config::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Settings, DefaultsComeFromTheModulesInitializers) {
  const auto c = validate(one_listener(), "f.lua", {});
  EXPECT_FALSE(c.hostname.empty());
  EXPECT_GE(c.workers, 1u);
  EXPECT_EQ(c.spool.path, spool::SpoolConfig{}.path);
  EXPECT_EQ(c.delivery.retry.first, 1min);
  EXPECT_EQ(c.policy.memory_limit, 64'000'000u);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].relay_networks.size(), 2u);
  EXPECT_FALSE(c.listeners[0].implicit_tls);
  EXPECT_TRUE(c.listeners[0].tls.cert.empty());
}

TEST(Settings, OverridesReachConfigureAndListeners) {
  auto t = one_listener();
  t.listen.push_back(one_listener("127.0.0.1:2526").listen[0]);
  const auto c = validate(t, "f.lua",
                          {"delivery.retry.first=5s", "listen.max_errors=3",
                           "listen.2.timeouts.command=10", "metrics.destinations.1=GMail.com"});
  EXPECT_EQ(c.delivery.retry.first, 5s);
  EXPECT_EQ(c.listeners[0].max_errors, 3u);
  EXPECT_EQ(c.listeners[1].command_timeout, 10s);
  EXPECT_EQ(c.metrics.destinations.at(0), "gmail.com");
  EXPECT_THAT(error(one_listener(), {"listen.3.address=x"}),
              HasSubstr("--set listen.3.address=x: the config has 1 mailgate.listen{} call(s)"));
  EXPECT_THAT(error(one_listener(), {"listen=1"}), HasSubstr("name a listener key"));
}

TEST(Settings, RulesAcrossSections) {
  EXPECT_EQ(error(ConfigTables{}), "f.lua: no mailgate.listen{} in config");
  auto twice = one_listener();
  twice.listen.push_back(twice.listen[0]);
  EXPECT_EQ(error(twice), "f.lua: listen[2].address: 127.0.0.1:2525 is already used by listen[1]");
  EXPECT_THAT(error(one_listener(), {"http.listen=0.0.0.0:1"}),
              HasSubstr("http.listen: 0.0.0.0:1 is not a loopback address: set http.token"));
  EXPECT_EQ(error(one_listener(), {"http.listen=0.0.0.0:1", "http.token=t"}), "");
  EXPECT_THAT(error(one_listener(), {"delivery.retry.first=2h"}),
              HasSubstr("delivery.retry.first: must not be longer than delivery.retry.max"));
  EXPECT_THAT(error(one_listener(), {"listen.greet_pause=61"}),
              HasSubstr("listen[1].greet_pause: must not be longer than 60s"));
}

TEST(Settings, CertificatesAreSharedAndNeeded) {
  EXPECT_THAT(error(one_listener(), {"listen.starttls=true"}),
              HasSubstr("listen[1].starttls: needs a certificate"));
  EXPECT_THAT(error(one_listener(), {"listen.implicit_tls=true", "listen.tls.cert=c.pem"}),
              HasSubstr("listen[1].tls.key: required with listen[1].tls.cert"));
  const auto c = validate(one_listener(), "f.lua",
                          {"tls.cert=g.pem", "tls.key=g.key", "listen.starttls=true"});
  EXPECT_EQ(c.listeners.at(0).tls.cert, "g.pem");  // the global one
}

TEST(Settings, AuthOnlyOverTls) {
  EXPECT_THAT(error(one_listener(), {"listen.auth=optional"}),
              HasSubstr("listen[1].auth: AUTH is offered only over TLS"));
  const auto c =
      validate(one_listener(), "f.lua", {"listen.auth=required", "listen.auth_plaintext=true"});
  EXPECT_EQ(c.listeners.at(0).auth, server::AuthMode::Required);
}

TEST(Settings, ReferenceListsEveryKeyWithItsDefault) {
  const auto md = reference_markdown();
  for (const char* row : {
           "| `hostname` | string | the machine's host name |",
           "| `workers` | integer 0–1024 | `0` (one per core) |",
           "| `spool.min_free_space` | size | `1GB` |",
           "| `spool.body_buffer` | size ≥ 4KiB | `256KiB` |",
           "| `delivery.retry.max_age` | duration > 0 | `5d` |",
           "| `delivery.tls` | `opportunistic` \\| `required` \\| `disabled` | `opportunistic` |",
           "| `delivery.bounce_rules[].class` |",
           "| `policy.memory_limit` | size ≥ 1MB | `64MB` |",
           "| `address` | `ip:port` | (required) |",
           "| `relay_networks` | array of CIDR networks | `{ \"127.0.0.0/8\", \"::1/128\" }` |",
           "| `implicit_tls` | boolean | `false` | TLS from the first byte (port 465 style",
           "| `auth_plaintext` | boolean | `false` | offer AUTH without TLS too",
           "| `tls` | table |  | certificate for this listener; default: the global tls |",
           "| `tls.cert` | string | none |",
           "| `timeouts.min_data_rate` | size | `1KB` |",
           "| `connection_rate_per_ip` | rate or `0` | none |",
           "| `greet_pause` | duration | `300ms` |",
       }) {
    EXPECT_THAT(md, HasSubstr(row)) << row;
  }
}

}  // namespace
}  // namespace mailgate::settings
