// Tests of loading a config file (policy/config + core/settings + every
// module's section): the shipped conf/mailgate.lua, defaults, every
// section, unknown keys, type and unit errors, --set overrides, merging of
// configure{} calls, several listeners and Lua load/run errors.
#include "policy/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <lua.hpp>

namespace mailgate::policy {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

// The repository root, given by the build (not __FILE__: ccache with a
// base_dir compiles with relative paths).
fs::path source_root() {
  return MAILGATE_SOURCE_DIR;
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mailgate-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text, const std::string& name = "test.lua") {
    const auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  static constexpr const char* kListen = "mailgate.listen { address = '127.0.0.1:2525' }\n";

  Config load(const std::string& text, const std::vector<std::string>& overrides = {}) {
    return load_config(write(text), overrides);
  }

  // The message of the ConfigError that loading `text` throws ("" if none).
  std::string error(const std::string& text, const std::vector<std::string>& overrides = {}) {
    try {
      load(text, overrides);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  fs::path dir_;
};

std::string machine_name() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }

TEST_F(ConfigTest, ShippedConfigLoads) {
  const auto path = (source_root() / "conf" / "mailgate.lua").string();
  Config c = load_config(path);
  EXPECT_EQ(c.hostname, machine_name());
  EXPECT_EQ(c.workers, cores());
  EXPECT_EQ(c.spool.path, "var/spool");
  EXPECT_EQ(c.spool.min_free_space, 1'000'000'000u);
  EXPECT_EQ(c.http.listen, "127.0.0.1:8025");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_EQ(c.log.deliveries, "var/log/deliveries.jsonl");
  EXPECT_EQ(c.delivery.port, 25);
  EXPECT_EQ(c.delivery.retry.first, 1min);
  EXPECT_EQ(c.delivery.retry.max, 1h);
  EXPECT_EQ(c.delivery.retry.max_age, 5 * 24h);
  EXPECT_EQ(c.delivery.tls, smtp::TlsMode::Opportunistic);
  ASSERT_EQ(c.listeners.size(), 1u);
  const auto& l = c.listeners[0];
  EXPECT_EQ(l.address, "127.0.0.1:2525");
  ASSERT_EQ(l.relay_networks.size(), 2u);
  EXPECT_EQ(l.relay_networks[0].str(), "127.0.0.0/8");
  EXPECT_EQ(l.relay_networks[1].str(), "::1/128");
  EXPECT_TRUE(l.relay_domains.empty());
  // STARTTLS out of the box, with a self-signed pair made on first start.
  EXPECT_TRUE(l.starttls);
  EXPECT_FALSE(l.implicit_tls);
  EXPECT_EQ(l.tls.cert, "var/tls/cert.pem");
  EXPECT_EQ(l.tls.key, "var/tls/key.pem");
  EXPECT_TRUE(l.tls.self_signed);
  EXPECT_EQ(l.auth, AuthMode::Off);
  EXPECT_EQ(l.max_message_size, 25'000'000u);
  EXPECT_EQ(l.max_recipients, 1000u);
  EXPECT_EQ(l.command_timeout, 5min);
  EXPECT_EQ(l.data_timeout, 3min);
  EXPECT_EQ(l.max_errors, 20u);
  EXPECT_TRUE(fs::path(c.config_dir).is_absolute());
  EXPECT_EQ(fs::path(c.config_dir).filename(), "conf");
  EXPECT_TRUE(fs::exists(fs::path(c.config_dir) / "mailgate.lua"));
}

TEST_F(ConfigTest, MinimalConfigGetsDefaults) {
  Config c = load(kListen);
  const Config d;
  const ListenerConfig dl;
  EXPECT_EQ(c.hostname, machine_name());
  EXPECT_EQ(c.workers, cores());
  EXPECT_EQ(c.spool.path, d.spool.path);
  EXPECT_EQ(c.spool.body_buffer, d.spool.body_buffer);
  EXPECT_EQ(c.spool.max_queue_bytes, d.spool.max_queue_bytes);
  EXPECT_EQ(c.http.listen, d.http.listen);
  EXPECT_TRUE(c.dns.servers.empty());
  EXPECT_EQ(c.policy.hook_timeout, 5s);
  EXPECT_EQ(c.delivery.retry.delay_warning, 4h);
  EXPECT_EQ(c.delivery.max_connections, 10u);
  ASSERT_EQ(c.listeners.size(), 1u);
  const auto& l = c.listeners[0];
  ASSERT_EQ(l.relay_networks.size(), 2u);  // default: loopback may relay
  EXPECT_TRUE(l.relay_networks[0].contains("127.0.0.1"));
  EXPECT_TRUE(l.relay_networks[1].contains("::1"));
  EXPECT_EQ(l.max_message_size, dl.max_message_size);
  EXPECT_EQ(l.max_junk_commands, dl.max_junk_commands);
  EXPECT_EQ(l.max_line_length, dl.max_line_length);
  EXPECT_EQ(c.config_dir, dir_.string());
}

TEST_F(ConfigTest, EverySectionParses) {
  Config c = load(R"(
    mailgate.configure {
      hostname = "gw.example.com",
      workers = 3,
      spool = { path = "/tmp/s", min_free_space = "2GiB", body_buffer = "64KiB",
                max_queue_bytes = 1048576 },
      http = { listen = "[::1]:0", token = "secret" },
      dns = { servers = { "127.0.0.1:5353", "::1", "[::1]:53", "10.0.0.1" } },
      log = { level = "debug", deliveries = "/tmp/d.jsonl" },
      delivery = {
        port = 2526,
        retry = { first = 30, max = "2h", max_age = "1d", delay_warning = 0.5 },
        max_connections = 5, max_messages_per_connection = 7, tls = "disabled",
      },
      policy = { hook_timeout = "250ms" },
      metrics = { destinations = { "gmail.com", "outlook.com" } },
    }
    mailgate.listen {
      address = "0.0.0.0:25",
      relay_networks = { "10.0.0.0/8", "2001:db8::/32" },
      relay_domains = { "Example.COM", "xn--bcher-kva.example" },
      starttls = false, auth = "off",
      max_message_size = "10 MB", max_recipients = 100,
      timeouts = { command = 60, data = "90s" },
      max_errors = 5, max_junk_commands = 10, max_line_length = 4096,
    }
  )");
  EXPECT_EQ(c.hostname, "gw.example.com");
  EXPECT_EQ(c.workers, 3u);
  EXPECT_EQ(c.spool.path, "/tmp/s");
  EXPECT_EQ(c.spool.min_free_space, 2ull << 30);
  EXPECT_EQ(c.spool.body_buffer, 64u * 1024);
  EXPECT_EQ(c.spool.max_queue_bytes, 1048576u);
  EXPECT_EQ(c.http.listen, "[::1]:0");
  EXPECT_EQ(c.http.token, "secret");
  EXPECT_THAT(c.dns.servers,
              ::testing::ElementsAre("127.0.0.1:5353", "::1", "[::1]:53", "10.0.0.1"));
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.deliveries, "/tmp/d.jsonl");
  EXPECT_EQ(c.delivery.port, 2526);
  EXPECT_EQ(c.delivery.retry.first, 30s);
  EXPECT_EQ(c.delivery.retry.max, 2h);
  EXPECT_EQ(c.delivery.retry.max_age, 24h);
  EXPECT_EQ(c.delivery.retry.delay_warning, 500ms);
  EXPECT_EQ(c.delivery.max_connections, 5u);
  EXPECT_EQ(c.delivery.max_messages_per_connection, 7u);
  EXPECT_EQ(c.delivery.tls, smtp::TlsMode::Disabled);
  EXPECT_EQ(c.policy.hook_timeout, 250ms);
  EXPECT_THAT(c.metrics.destinations, ::testing::ElementsAre("gmail.com", "outlook.com"));
  const auto& l = c.listeners.at(0);
  EXPECT_EQ(l.address, "0.0.0.0:25");
  ASSERT_EQ(l.relay_networks.size(), 2u);
  EXPECT_EQ(l.relay_networks[1].str(), "2001:db8::/32");
  EXPECT_THAT(l.relay_domains, ::testing::ElementsAre("example.com", "xn--bcher-kva.example"));
  EXPECT_EQ(l.max_message_size, 10'000'000u);
  EXPECT_EQ(l.max_recipients, 100u);
  EXPECT_EQ(l.command_timeout, 60s);
  EXPECT_EQ(l.data_timeout, 90s);
  EXPECT_EQ(l.max_errors, 5u);
  EXPECT_EQ(l.max_junk_commands, 10u);
  EXPECT_EQ(l.max_line_length, 4096u);
}

TEST_F(ConfigTest, WorkersZeroIsOnePerCore) {
  EXPECT_EQ(load(std::string("mailgate.configure { workers = 0 }\n") + kListen).workers, cores());
  EXPECT_EQ(load(std::string("mailgate.configure { workers = 1024 }\n") + kListen).workers, 1024u);
}

TEST_F(ConfigTest, DeliveryTlsModes) {
  for (auto mode : smtp::kTlsModes) {
    EXPECT_EQ(load(std::string("mailgate.configure { delivery = { tls = '") +
                   std::string(smtp::to_string(mode)) + "' } }\n" + kListen)
                  .delivery.tls,
              mode);
  }
}

TEST_F(ConfigTest, EmptyRelayNetworksMeansNobody) {
  Config c = load("mailgate.listen { address = '127.0.0.1:25', relay_networks = {} }");
  EXPECT_TRUE(c.listeners.at(0).relay_networks.empty());
}

TEST_F(ConfigTest, UnknownKeysAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mailgate.configure { hostnme = 'x' }", "configure: unknown key 'hostnme'"},
      {"mailgate.configure { spool = { pth = 'x' } }", "configure: unknown key 'spool.pth'"},
      {"mailgate.configure { http = { port = 1 } }", "configure: unknown key 'http.port'"},
      {"mailgate.configure { dns = { server = {} } }", "configure: unknown key 'dns.server'"},
      {"mailgate.configure { tls = { chain = 'x' } }", "configure: unknown key 'tls.chain'"},
      {"mailgate.configure { log = { file = 'x' } }", "configure: unknown key 'log.file'"},
      {"mailgate.configure { delivery = { retries = 1 } }",
       "configure: unknown key 'delivery.retries'"},
      {"mailgate.configure { delivery = { retry = { min = 1 } } }",
       "configure: unknown key 'delivery.retry.min'"},
      {"mailgate.configure { policy = { timeout = 1 } }",
       "configure: unknown key 'policy.timeout'"},
      {"mailgate.configure { metrics = { dest = {} } }", "configure: unknown key 'metrics.dest'"},
      {"mailgate.configure { 'positional' }", "configure: unknown key '[1]'"},
      {"mailgate.configure { spool = { 'x' } }", "configure: unknown key 'spool[1]'"},
      {"mailgate.configure { [true] = 1 }", "configure: unknown key '<boolean>'"},
  };
  for (const auto& [lua, want] : cases) {
    EXPECT_THAT(error(lua + "\n" + kListen), HasSubstr(want)) << lua;
  }
  EXPECT_THAT(error("mailgate.listen { address = '127.0.0.1:1', adress = 'x' }"),
              HasSubstr("listen: unknown key 'listen[1].adress'"));
  EXPECT_THAT(error("mailgate.listen { address = '127.0.0.1:1', timeouts = { idle = 1 } }"),
              HasSubstr("listen: unknown key 'listen[1].timeouts.idle'"));
  EXPECT_THAT(error(std::string(kListen) + "mailgate.listen { address = '127.0.0.1:2', tsl = 1 }"),
              HasSubstr("listen: unknown key 'listen[2].tsl'"));
  EXPECT_THAT(error(std::string(kListen) +
                    "mailgate.listen { address = '127.0.0.1:2', tls = { crt = 'x' } }"),
              HasSubstr("listen: unknown key 'listen[2].tls.crt'"));
  EXPECT_THAT(error(std::string(kListen) + "mailgate.listen { address = '127.0.0.1:2', tls = 1 }"),
              HasSubstr("listen[2].tls: expected a table, got 1"));
}

TEST_F(ConfigTest, ErrorsStartWithTheFile) {
  const auto path = write("mailgate.configure { spool = { pth = 'x' } }\n" + std::string(kListen));
  try {
    load_config(path);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": configure: unknown key 'spool.pth'");
  }
}

TEST_F(ConfigTest, TypeErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"hostname = 1", "hostname: expected a string, got 1"},
      {"hostname = 'has space'", "hostname: expected a host name"},
      {"hostname = ''", "hostname: expected a host name"},
      {"workers = 'many'", "workers: expected an integer from 0 to 1024, got \"many\""},
      {"workers = 2.5", "workers: expected an integer from 0 to 1024, got 2.5"},
      {"workers = -1", "workers: expected an integer from 0 to 1024, got -1"},
      {"workers = 1025", "workers: expected an integer from 0 to 1024, got 1025"},
      {"spool = 'var/spool'", "spool: expected a table, got \"var/spool\""},
      {"spool = { path = true }", "spool.path: expected a string, got boolean"},
      {"spool = { path = '' }", "spool.path: must not be empty"},
      {"spool = { min_free_space = true }",
       "spool.min_free_space: expected a size (e.g. \"1GB\"), got boolean"},
      {"spool = { min_free_space = {} }",
       "spool.min_free_space: expected a size (e.g. \"1GB\"), got table"},
      {"spool = { body_buffer = 100 }", "spool.body_buffer: must be at least 4096 bytes, got 100"},
      {"spool = { max_queue_bytes = 0 }", "spool.max_queue_bytes: must be at least 1 bytes"},
      {"http = { listen = 'localhost:8025' }",
       "http.listen: expected \"ip:port\" or \"[ipv6]:port\", got \"localhost:8025\""},
      {"http = { listen = '127.0.0.1' }", "http.listen: expected \"ip:port\""},
      {"http = { listen = '::1:8025' }", "http.listen: expected \"ip:port\""},
      {"http = { listen = '127.0.0.1:65536' }", "http.listen: expected \"ip:port\""},
      {"http = { token = {} }", "http.token: expected a string, got table"},
      {"http = { listen = '0.0.0.0:8025' }",
       "http.listen: 0.0.0.0:8025 is not a loopback address: set http.token"},
      {"http = { listen = '[::]:8025' }", "http.listen: [::]:8025 is not a loopback address"},
      {"http = { listen = '192.0.2.1:8025', token = '' }", "is not a loopback address"},
      {"dns = { servers = '1.1.1.1' }", "dns.servers: expected an array of"},
      {"dns = { servers = { 'resolver' } }",
       "dns.servers[1]: expected \"ip\", \"ip:port\" or \"[ipv6]:port\", got \"resolver\""},
      {"dns = { servers = { [2] = '1.1.1.1' } }", "dns.servers: expected an array of"},
      {"log = { level = 'verbose' }",
       "log.level: expected trace | debug | info | warn | error | off, got \"verbose\""},
      {"delivery = { port = 0 }", "delivery.port: expected an integer from 1 to 65535, got 0"},
      {"delivery = { port = 65536 }", "delivery.port: expected an integer from 1 to 65535"},
      {"delivery = { tls = 'always' }",
       "delivery.tls: expected opportunistic | required | verify | dane | disabled, got "
       "\"always\""},
      {"delivery = { tls_ca_file = '/nonexistent/ca.pem' }",
       "delivery.tls_ca_file: cannot read /nonexistent/ca.pem"},
      {"delivery = { max_connections = 0 }",
       "delivery.max_connections: expected an integer from 1"},
      {"delivery = { retry = 5 }", "delivery.retry: expected a table, got 5"},
      {"delivery = { retry = { first = '2h' } }",
       "delivery.retry.first: must not be longer than delivery.retry.max"},
      {"policy = { hook_timeout = 0 }", "policy.hook_timeout: must be longer than 0"},
      {"metrics = { destinations = { 1 } }", "metrics.destinations[1]: expected a string, got 1"},
      {"metrics = { destinations = { a = 'x' } }", "metrics.destinations: expected an array"},
      {"spool = { path = print }", "spool.path: expected a string, got function"},
  };
  for (const auto& [lua, want] : cases) {
    EXPECT_THAT(error("mailgate.configure { " + lua + " }\n" + kListen), HasSubstr(want)) << lua;
  }
}

TEST_F(ConfigTest, UnitErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"spool = { min_free_space = '1 GBB' }",
       "spool.min_free_space: expected a size (e.g. \"1GB\"), got \"1 GBB\""},
      {"spool = { min_free_space = '1gb' }", "got \"1gb\""},
      {"spool = { min_free_space = -1 }",
       "spool.min_free_space: expected a size (e.g. \"1GB\"), got -1"},
      {"spool = { min_free_space = 1.5 }", "got 1.5"},
      {"spool = { min_free_space = '' }", "got \"\""},
      {"delivery = { retry = { max = '1 week' } }",
       "delivery.retry.max: expected a duration (e.g. \"30s\", \"5m\"), got \"1 week\""},
      {"delivery = { retry = { max = -5 } }", "delivery.retry.max: expected a duration"},
      {"delivery = { retry = { max = '5M' } }", "delivery.retry.max: expected a duration"},
      {"delivery = { retry = { max = 1/0 } }", "delivery.retry.max: expected a duration"},
      {"delivery = { retry = { max = 0.0001 } }", "delivery.retry.max: expected a duration"},
      {"policy = { hook_timeout = true }", "policy.hook_timeout: expected a duration"},
  };
  for (const auto& [lua, want] : cases) {
    EXPECT_THAT(error("mailgate.configure { " + lua + " }\n" + kListen), HasSubstr(want)) << lua;
  }
  // Floating point seconds that are whole milliseconds up to rounding noise.
  EXPECT_EQ(
      load("mailgate.configure { policy = { hook_timeout = 0.1 + 0.2 } }\n" + std::string(kListen))
          .policy.hook_timeout,
      300ms);
  EXPECT_EQ(
      load("mailgate.configure { spool = { min_free_space = 2.0^40 } }\n" + std::string(kListen))
          .spool.min_free_space,
      1ull << 40);
}

TEST_F(ConfigTest, ListenerErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{ }", "listen[1].address: required"},
      {"{ address = 2525 }", "listen[1].address: expected a string, got 2525"},
      {"{ address = '127.0.0.1' }", "listen[1].address: expected \"ip:port\""},
      {"{ address = '[127.0.0.1]:25' }", "listen[1].address: expected \"ip:port\""},
      {"{ address = '127.0.0.1:25', relay_networks = { '10.0.0.0/33' } }",
       "listen[1].relay_networks[1]: expected a CIDR network (e.g. \"10.0.0.0/8\"), got "
       "\"10.0.0.0/33\""},
      {"{ address = '127.0.0.1:25', relay_networks = '10.0.0.0/8' }",
       "listen[1].relay_networks: expected an array of CIDR networks"},
      {"{ address = '127.0.0.1:25', relay_domains = { 'a@b.com' } }",
       "listen[1].relay_domains[1]: expected a domain (e.g. \"example.com\"), got \"a@b.com\""},
      {"{ address = '127.0.0.1:25', relay_domains = { '.example.com' } }",
       "listen[1].relay_domains[1]: expected a domain"},
      {"{ address = '127.0.0.1:25', starttls = 'yes' }",
       "listen[1].starttls: expected true or false, got \"yes\""},
      {"{ address = '127.0.0.1:25', auth = 'sometimes' }",
       "listen[1].auth: expected off | optional | required, got \"sometimes\""},
      {"{ address = '127.0.0.1:25', max_message_size = 0 }",
       "listen[1].max_message_size: must be at least 1 bytes"},
      {"{ address = '127.0.0.1:25', max_message_size = '25XB' }",
       "listen[1].max_message_size: expected a size"},
      {"{ address = '127.0.0.1:25', max_recipients = 0 }",
       "listen[1].max_recipients: expected an integer from 1 to 4294967295, got 0"},
      {"{ address = '127.0.0.1:25', max_recipients = 2^40 }",
       "listen[1].max_recipients: expected an integer from 1 to 4294967295"},
      {"{ address = '127.0.0.1:25', timeouts = { command = 'soon' } }",
       "listen[1].timeouts.command: expected a duration"},
      {"{ address = '127.0.0.1:25', timeouts = 5 }", "listen[1].timeouts: expected a table, got 5"},
      {"{ address = '127.0.0.1:25', max_line_length = 511 }",
       "listen[1].max_line_length: expected an integer from 512"},
      {"{ address = '127.0.0.1:25', max_errors = 0 }", "listen[1].max_errors: expected an integer"},
  };
  for (const auto& [lua, want] : cases) {
    EXPECT_THAT(error("mailgate.listen " + lua), HasSubstr(want)) << lua;
  }
  EXPECT_THAT(error(std::string(kListen) + "mailgate.listen { address = '127.0.0.1:2525' }"),
              HasSubstr("listen[2].address: 127.0.0.1:2525 is already used by listen[1]"));
  // Port 0 (ephemeral) may repeat.
  EXPECT_EQ(load("mailgate.listen { address = '127.0.0.1:0' } mailgate.listen { address = "
                 "'127.0.0.1:0' }")
                .listeners.size(),
            2u);
}

TEST_F(ConfigTest, NoListener) {
  EXPECT_THAT(error("mailgate.configure { workers = 1 }"),
              HasSubstr("no mailgate.listen{} in config"));
  EXPECT_THAT(error(""), HasSubstr("no mailgate.listen{} in config"));
}

TEST_F(ConfigTest, SeveralListeners) {
  Config c = load(R"(
    mailgate.listen { address = "127.0.0.1:25" }
    mailgate.listen { address = "[::1]:587", relay_networks = {}, max_recipients = 50 }
    local t = { address = "0.0.0.0:2525" }
    mailgate.listen(t)
    t.address = "junk"  -- listen{} keeps a copy
  )");
  ASSERT_EQ(c.listeners.size(), 3u);
  EXPECT_EQ(c.listeners[0].address, "127.0.0.1:25");
  EXPECT_EQ(c.listeners[0].relay_networks.size(), 2u);
  EXPECT_EQ(c.listeners[1].address, "[::1]:587");
  EXPECT_TRUE(c.listeners[1].relay_networks.empty());
  EXPECT_EQ(c.listeners[1].max_recipients, 50u);
  EXPECT_EQ(c.listeners[2].address, "0.0.0.0:2525");
}

TEST_F(ConfigTest, ConfigureCallsMerge) {
  Config c = load(R"(
    mailgate.configure { workers = 2, spool = { path = "a", min_free_space = "1MB" },
                         metrics = { destinations = { "a.com", "b.com", "c.com" } },
                         dns = { servers = { "1.1.1.1" } } }
    local t = { spool = { path = "b" }, metrics = { destinations = { "d.com" } } }
    mailgate.configure(t)
    t.spool.path = "changed after the call"
    mailgate.configure { workers = 4, dns = { servers = {} } }
    mailgate.listen { address = "127.0.0.1:25" }
  )");
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.spool.path, "b");
  EXPECT_EQ(c.spool.min_free_space, 1'000'000u);                         // kept from the first call
  EXPECT_THAT(c.metrics.destinations, ::testing::ElementsAre("d.com"));  // arrays replace
  EXPECT_TRUE(c.dns.servers.empty());                                    // {} clears an array
}

TEST_F(ConfigTest, Overrides) {
  const std::string base = R"(
    mailgate.configure { spool = { path = "var/spool", min_free_space = "1GB" }, workers = 3 }
    mailgate.listen { address = "127.0.0.1:2525", max_errors = 20 }
    mailgate.listen { address = "127.0.0.1:2526" }
  )";
  Config c =
      load(base, {"spool.path=/tmp/x", "spool.min_free_space=0", "workers=2",
                  "http.listen=127.0.0.1:0", "http.token=12345", "delivery.retry.first=30",
                  "delivery.retry.max=0.5h", "log.level=debug", "listen.address=127.0.0.1:0",
                  "listen.max_errors=3", "listen.2.address=[::1]:0", "listen.timeouts.data=10s",
                  "dns.servers.1=127.0.0.1:5353", "hostname=mx.example.org"});
  EXPECT_EQ(c.spool.path, "/tmp/x");
  EXPECT_EQ(c.spool.min_free_space, 0u);
  EXPECT_EQ(c.workers, 2u);
  EXPECT_EQ(c.http.listen, "127.0.0.1:0");
  EXPECT_EQ(c.http.token, "12345");  // a number given to a string key stays text
  EXPECT_EQ(c.delivery.retry.first, 30s);
  EXPECT_EQ(c.delivery.retry.max, 30min);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.hostname, "mx.example.org");
  EXPECT_EQ(c.listeners.at(0).address, "127.0.0.1:0");
  EXPECT_EQ(c.listeners.at(0).max_errors, 3u);
  EXPECT_EQ(c.listeners.at(0).data_timeout, 10s);
  EXPECT_EQ(c.listeners.at(1).address, "[::1]:0");
  EXPECT_THAT(c.dns.servers, ::testing::ElementsAre("127.0.0.1:5353"));

  // Value typing: true/false → boolean, digits → number, else string.
  EXPECT_THAT(error(base, {"listen.starttls=true"}),
              HasSubstr("listen[1].starttls: needs a certificate"));
  EXPECT_NO_THROW(load(base, {"listen.starttls=false"}));
  EXPECT_THAT(error(base, {"workers=two"}),
              HasSubstr("workers: expected an integer from 0 to 1024, got \"two\""));
  EXPECT_THAT(error(base, {"workers=1.5"}), HasSubstr("got 1.5"));
  EXPECT_THAT(error(base, {"workers=-1"}), HasSubstr("got -1"));
  EXPECT_THAT(error(base, {"listen.starttls=1"}), HasSubstr("expected true or false, got 1"));

  // Errors from a --set say so.
  EXPECT_THAT(error(base, {"spool.pth=/x"}),
              HasSubstr("configure: unknown key 'spool.pth' (from --set spool.pth=/x)"));
  EXPECT_THAT(error(base, {"spol.path=/x"}),
              HasSubstr("configure: unknown key 'spol' (from --set spol.path=/x)"));
  EXPECT_THAT(error(base, {"listen.adress=1"}),
              HasSubstr("listen: unknown key 'listen[1].adress' (from --set listen.adress=1)"));

  // Malformed --set.
  EXPECT_THAT(error(base, {"workers"}), HasSubstr("expected KEY=VALUE"));
  EXPECT_THAT(error(base, {"=1"}), HasSubstr("bad key"));
  EXPECT_THAT(error(base, {"spool..path=1"}), HasSubstr("bad key"));
  EXPECT_THAT(error(base, {"spool.path-x=1"}), HasSubstr("bad key"));
  EXPECT_THAT(error(base, {"spool.path.x=1"}),
              HasSubstr("'spool.path' is \"var/spool\", not a table"));
  EXPECT_THAT(error(base, {"listen=1"}), HasSubstr("name a listener key"));
  EXPECT_THAT(error(base, {"listen.3.address=127.0.0.1:1"}),
              HasSubstr("2 mailgate.listen{} call(s)"));
  EXPECT_THAT(error("mailgate.configure {}", {"listen.address=127.0.0.1:0"}),
              HasSubstr("0 mailgate.listen{} call(s)"));
}

TEST_F(ConfigTest, OverrideValueWithEquals) {
  Config c = load(kListen, {"http.token=a=b=c"});
  EXPECT_EQ(c.http.token, "a=b=c");
}

TEST_F(ConfigTest, OverridesCreateTables) {
  Config c = load(kListen, {"delivery.retry.max_age=2d", "policy.hook_timeout=1.5"});
  EXPECT_EQ(c.delivery.retry.max_age, 48h);
  EXPECT_EQ(c.policy.hook_timeout, 1500ms);
}

TEST_F(ConfigTest, TlsKeys) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"mailgate.listen { address = '127.0.0.1:25', starttls = true }",
       "listen[1].starttls: needs a certificate"},
      {"mailgate.listen { address = '127.0.0.1:25', implicit_tls = true }",
       "listen[1].implicit_tls: needs a certificate"},
      {std::string(kListen) + "mailgate.configure { tls = { cert = 'c.pem' } }",
       "tls.key: required with tls.cert"},
      {std::string(kListen) + "mailgate.configure { tls = { key = 'k.pem' } }",
       "tls.cert: required with tls.key"},
      {std::string(kListen) + "mailgate.configure { tls = { cert = 'c', key = 'k', x = 1 } }",
       "configure: unknown key 'tls.x'"},
      {std::string(kListen) + "mailgate.configure { tls = { cert = '', key = 'k' } }", "tls.cert"},
  };
  for (const auto& [lua, want] : cases) {
    EXPECT_THAT(error(lua), HasSubstr(want)) << lua;
  }
  // The global certificate serves every listener without its own.
  Config c = load(
      "mailgate.configure { tls = { cert = 'g.pem', key = 'g.key' } }\n"
      "mailgate.listen { address = '127.0.0.1:25', starttls = true }\n"
      "mailgate.listen { address = '127.0.0.1:465', implicit_tls = true,\n"
      "                  tls = { cert = 'own.pem', key = 'own.key' } }\n");
  EXPECT_EQ(c.listeners.at(0).tls.cert, "g.pem");
  EXPECT_EQ(c.listeners.at(1).tls.cert, "own.pem");
  EXPECT_TRUE(c.listeners.at(1).implicit_tls);
  EXPECT_FALSE(c.tls.self_signed);
}

TEST_F(ConfigTest, AuthNeedsTlsUnlessPlaintextIsAllowed) {
  EXPECT_THAT(error("mailgate.listen { address = '127.0.0.1:25', auth = 'optional' }"),
              HasSubstr("listen[1].auth: AUTH is offered only over TLS"));
  EXPECT_THAT(error("mailgate.listen { address = '127.0.0.1:25', auth = 'sometimes' }"),
              HasSubstr("listen[1].auth"));
  Config c = load(
      "mailgate.listen { address = '127.0.0.1:25', auth = 'required', auth_plaintext = true }");
  EXPECT_EQ(c.listeners.at(0).auth, AuthMode::Required);
  EXPECT_TRUE(c.listeners.at(0).auth_plaintext);
  c = load(
      "mailgate.configure { tls = { cert = 'c', key = 'k' } }\n"
      "mailgate.listen { address = '127.0.0.1:587', auth = 'optional', starttls = true }");
  EXPECT_EQ(c.listeners.at(0).auth, AuthMode::Optional);
  EXPECT_NO_THROW(
      load("mailgate.listen { address = '127.0.0.1:25', auth = 'off', starttls = false, "
           "implicit_tls = false, auth_plaintext = false }"));
  EXPECT_THAT(error(std::string(kListen), {"listen.auth=optional"}),
              HasSubstr("AUTH is offered only over TLS: set starttls or implicit_tls "
                        "(auth_plaintext = true allows it without, for loopback tests) (from --set "
                        "listen.auth=optional)"));
}

TEST_F(ConfigTest, HookRegistrationIsCheckedAtLoad) {
  EXPECT_NO_THROW(
      load(std::string(kListen) + "\nmailgate.on('rcpt_to', function(tx, rcpt) end)\n"));
  EXPECT_THAT(error("mailgate.on('rcpt', function() end)"), HasSubstr("unknown event 'rcpt'"));
  EXPECT_THAT(error("mailgate.on('rcpt_to', 42)"), HasSubstr("function expected"));
  EXPECT_NO_THROW(load(std::string(kListen) + "\nmailgate.on('auth', function() end)\n"));
  EXPECT_THAT(error("mailgate.use('no_such_plugin', {})"),
              ::testing::AllOf(HasSubstr("test.lua:1: "), HasSubstr("'no_such_plugin' not found")));
  EXPECT_THAT(error("mailgate.use('../etc/passwd')"), HasSubstr("bad plugin name"));
  EXPECT_THAT(error("mailgate.reject(250, 'no')"), HasSubstr("code must be 500..599"));
  // Calls that need a running hook say so.
  EXPECT_THAT(error("mailgate.dns.mx('example.com')"), HasSubstr("only be called inside a hook"));
  EXPECT_THAT(error("mailgate.ratelimit.check('k', '1/s')"),
              HasSubstr("only be called inside a hook"));
  EXPECT_THAT(error("mailgate.suppression.has('a@b')"), HasSubstr("only be called inside a hook"));
  EXPECT_THAT(error("mailgate.crypt_verify('pw', '$6$salt$hash')"),
              HasSubstr("only be called inside a hook"));
}

TEST_F(ConfigTest, LuaErrorsCarryFileAndLine) {
  const auto syntax = write("mailgate.configure {\n  workers = 1,\n  spool = { path = }\n}\n");
  try {
    load_config(syntax);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr(syntax + ":3:"));
  }
  EXPECT_THAT(error("\nerror('boom')\n"), HasSubstr("test.lua:2: boom"));
  EXPECT_THAT(error("\n\nlocal x = nil + 1\n"),
              HasSubstr("test.lua:3: attempt to perform arithmetic"));
  EXPECT_THAT(error("error({})"), HasSubstr("(error object is a table value)"));
  EXPECT_THAT(error("mailgate.configure('workers=1')"),
              ::testing::AllOf(HasSubstr("test.lua:1:"), HasSubstr("table expected, got string")));
  EXPECT_THAT(error("mailgate.listen()"), HasSubstr("table expected, got no value"));
  EXPECT_THAT(error("local t = {} t.t = t mailgate.configure { spool = t }"),
              HasSubstr("nested more than"));
}

TEST_F(ConfigTest, MissingFile) {
  try {
    load_config((dir_ / "nope.lua").string());
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot open"));
    EXPECT_THAT(e.what(), HasSubstr("nope.lua"));
  }
}

int write_chunk(lua_State*, const void* p, size_t size, void* ud) {
  static_cast<std::string*>(ud)->append(static_cast<const char*>(p), size);
  return 0;
}

TEST_F(ConfigTest, BytecodeIsRejected) {
  lua_State* L = luaL_newstate();
  ASSERT_EQ(luaL_loadstring(L, "mailgate.listen { address = '127.0.0.1:25' }"), LUA_OK);
  std::string bytecode;
  ASSERT_EQ(lua_dump(L, write_chunk, &bytecode, 1), 0);
  lua_close(L);
  const auto path = write(bytecode, "compiled.luac");
  try {
    load_config(path);
    FAIL() << "bytecode accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr("binary chunk"));
  }
}

TEST_F(ConfigTest, LogHelperWorksAtLoadTime) {
  EXPECT_NO_THROW(load(std::string("mailgate.log('info', 'loading test config')\n") + kListen));
  EXPECT_THAT(error("mailgate.log('loud', 'x')"), HasSubstr("level must be"));
}

TEST(HostPort, Parses) {
  EXPECT_EQ(parse_host_port("127.0.0.1:25"),
            std::make_pair(std::string("127.0.0.1"), std::uint16_t{25}));
  EXPECT_EQ(parse_host_port("[::1]:0"), std::make_pair(std::string("::1"), std::uint16_t{0}));
  EXPECT_EQ(parse_host_port("0.0.0.0:65535")->second, 65535);
  for (const char* bad : {"", ":25", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:2x", "::1:25", "[::1]", "[::1]25", "[127.0.0.1]:25",
                          "localhost:25", "[::1]:", "127.0.0.1:123456"}) {
    EXPECT_FALSE(parse_host_port(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace mailgate::policy

namespace mailgate::policy {
namespace {

TEST_F(ConfigTest, BounceRulesAreParsedAndChecked) {
  auto c = load(std::string(kListen) +
                "mailgate.configure { delivery = { bounce_rules = {\n"
                "  { class = 'quota', enhanced = '5.7.1', text = 'storage full' },\n"
                "  { class = 'policy', code_min = 550, code_max = 554 } } } }\n");
  ASSERT_EQ(c.delivery.bounce_rules.size(), 2u);
  EXPECT_EQ(c.delivery.bounce_rules[0].cls, smtp::BounceClass::Quota);
  EXPECT_EQ(c.delivery.bounce_rules[0].enhanced_prefix, "5.7.1");
  EXPECT_EQ(c.delivery.bounce_rules[0].text_pattern, "storage full");
  EXPECT_EQ(c.delivery.bounce_rules[1].code_min, 550);
  EXPECT_THAT(error(std::string(kListen) +
                    "mailgate.configure { delivery = { bounce_rules = { { text = 'x' } } } }"),
              HasSubstr("delivery.bounce_rules[1].class: required"));
  EXPECT_THAT(error(std::string(kListen) +
                    "mailgate.configure { delivery = { bounce_rules = { { class = 'nope' } } } }"),
              HasSubstr("delivery.bounce_rules[1].class"));
  EXPECT_THAT(error(std::string(kListen) + "mailgate.configure { delivery = { bounce_rules = "
                                           "{ { class = 'quota', bogus = 1 } } } }"),
              HasSubstr("bogus"));
}

TEST_F(ConfigTest, PolicyMemoryLimit) {
  EXPECT_EQ(load(kListen).policy.memory_limit, 64'000'000u);  // "64MB"
  EXPECT_EQ(
      load(std::string("mailgate.configure { policy = { memory_limit = '16MiB' } }\n") + kListen)
          .policy.memory_limit,
      16u << 20);
  EXPECT_EQ(
      load(std::string("mailgate.configure { policy = { memory_limit = 2000000 } }\n") + kListen)
          .policy.memory_limit,
      2'000'000u);
  EXPECT_EQ(load(kListen, {"policy.memory_limit=8MB"}).policy.memory_limit, 8'000'000u);
  EXPECT_THAT(
      error(std::string("mailgate.configure { policy = { memory_limit = '1KB' } }\n") + kListen),
      HasSubstr("policy.memory_limit: must be at least 1000000 bytes, got 1000"));
  EXPECT_THAT(
      error(std::string("mailgate.configure { policy = { memory_limit = true } }\n") + kListen),
      HasSubstr("policy.memory_limit: expected a size (e.g. \"1GB\"), got boolean"));
  EXPECT_THAT(
      error(std::string("mailgate.configure { policy = { memory_limit = '64 mb' } }\n") + kListen),
      HasSubstr("policy.memory_limit: expected a size"));
  EXPECT_THAT(error(kListen, {"policy.memory_limit=lots"}),
              HasSubstr("policy.memory_limit: expected a size"));
}

}  // namespace
}  // namespace mailgate::policy
