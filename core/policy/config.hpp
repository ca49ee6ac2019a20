// policy/config: the validated configuration, loaded from the Lua config file
// (mailgate.configure{}, mailgate.listen{}) through the same Lua runtime that
// will run hooks. Promises: every key is checked; an unknown key, a wrong type
// or a bad unit is an error naming the dotted key (e.g. "spool.min_free_space:
// expected a size like \"1GB\"").
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/cidr.hpp"
#include "policy/units.hpp"
#include "smtp/bounce_class.hpp"

namespace mailgate::policy {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class AuthMode { Off, Optional, Required };

struct TlsConfig {
  std::string cert, key;     // PEM files; both empty: none
  bool self_signed = false;  // make a self-signed pair there if neither file exists
};

struct ListenerConfig {
  std::string address = "127.0.0.1:2525";  // "host:port", "[v6]:port"; port 0 = ephemeral
  std::vector<net::Cidr> relay_networks;   // default: 127.0.0.0/8, ::1/128
  std::vector<std::string> relay_domains;  // lower-cased
  bool starttls = false;                   // offer STARTTLS (RFC 3207; never once TLS is on)
  bool implicit_tls = false;               // TLS from the first byte (port 465 style)
  AuthMode auth = AuthMode::Off;
  bool auth_plaintext = false;  // allow AUTH without TLS (loopback test setups only)
  TlsConfig tls;                // this listener's certificate (after load: the global one if unset)
  std::uint64_t max_message_size = 25'000'000;
  std::uint32_t max_recipients = 1000;
  Duration command_timeout{5 * 60 * 1000};  // RFC 5321 §4.5.3.2.7
  Duration data_timeout{3 * 60 * 1000};     // §4.5.3.2.6 (data block)
  std::uint32_t max_errors = 20;            // error replies (DATA/BDAT's too) before 421 + close
  std::uint32_t max_junk_commands = 100;    // NOOP/RSET/VRFY/HELP/... before 421
  std::uint32_t max_line_length = 2048;     // command line, octets incl. CRLF
  // Abuse limits (DESIGN §6b). 0 / unset: no limit.
  std::uint32_t max_connections = 10000;       // sessions on this listener: 421 4.3.2 beyond
  std::uint32_t max_connections_per_ip = 200;  // per client IP, all listeners: 421 4.7.0 beyond
  std::optional<Rate> connection_rate_per_ip;  // new connections per client IP: 421 4.7.0
  Duration greet_pause{300};                   // "220-", pause, "220 "; input before it: 554 5.5.1
  Duration session_timeout{30 * 60 * 1000};    // a whole session
  Duration transaction_timeout{15 * 60 * 1000};  // MAIL to the end of data
  std::uint64_t min_data_rate = 1000;  // bytes/s over a message's data (after 10 s); 0: off
};

struct SpoolConfig {
  std::string path = "var/spool";
  std::uint64_t min_free_space = 1'000'000'000;
  std::uint64_t body_buffer = 256 * 1024;       // in-memory part of a message
  std::uint64_t max_queue_bytes = 64ull << 20;  // group-commit queue bound
};

struct HttpConfig {
  std::string listen = "127.0.0.1:8025";
  std::string token;
  // HTTPS with this certificate (http.tls = true: the global tls{}; or its
  // own { cert, key }); none (the default): plain HTTP.
  TlsConfig tls;
};

struct DnsConfig {
  std::vector<std::string> servers;  // empty: /etc/resolv.conf
};

struct LogConfig {
  std::string level = "info";
  std::string deliveries = "var/log/deliveries.jsonl";
};

struct RetryConfig {
  Duration first{60 * 1000};
  Duration max{60 * 60 * 1000};
  Duration max_age{5ll * 24 * 3600 * 1000};
  Duration delay_warning{4ll * 3600 * 1000};
};

struct DeliveryConfig {
  std::uint16_t port = 25;
  RetryConfig retry;
  std::uint32_t max_connections = 10;
  std::uint32_t max_messages_per_connection = 100;
  std::string tls = "opportunistic";  // opportunistic | required | disabled
  // Operator rules for the delivery log's bounce_class, tried before the built-ins.
  std::vector<smtp::BounceRule> bounce_rules;
};

struct PolicyConfig {
  Duration hook_timeout{5000};
  std::uint64_t memory_limit = 64'000'000;  // per Lua state (one per worker and version)
};

struct MetricsConfig {
  std::vector<std::string> destinations;
};

struct Config {
  std::string hostname;  // default: the machine's host name
  unsigned workers = 0;  // resolved: never 0 after load (0 in the file = one per core)
  SpoolConfig spool;
  HttpConfig http;
  DnsConfig dns;
  TlsConfig tls;
  LogConfig log;
  DeliveryConfig delivery;
  PolicyConfig policy;
  MetricsConfig metrics;
  std::vector<ListenerConfig> listeners;  // at least one
  std::string config_dir;                 // directory of the config file
};

// `overrides` are "dotted.key=value" strings from --set, applied to the
// configure{} table before validation (values: integer, number, true/false,
// or string). Throws ConfigError with a message naming the file/key.
//   - The key is split at the first '='; its dot-separated segments are
//     [A-Za-z0-9_]+; missing tables on the way are created; an all-digit
//     segment is an array index (--set dns.servers.1=127.0.0.1:5353).
//   - Value typing: "true"/"false" -> boolean, -?digits -> integer,
//     -?digits.digits -> number, else string. A string-typed key given a
//     number keeps the text (--set http.token=12345 is the string "12345").
//   - "listen.KEY=V" sets KEY of the first mailgate.listen{} (the config must
//     have one): --set listen.address=127.0.0.1:0. "listen.N.KEY=V" sets KEY
//     of the N-th listener (1-based).
// Validation errors start with the config path ("conf/mailgate.lua: spool.
// min_free_space: expected a size (e.g. \"1GB\"), got boolean"); an error about
// a key given by --set ends with " (from --set KEY=VALUE)". Lua load/run
// errors are Lua's message (with file:line). Relative paths in the result
// (spool.path, log.deliveries) are relative to the working directory.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Splits "ip:port" / "[ipv6]:port" (host: an IPv4/IPv6 literal, brackets
// removed; port 0..65535). nullopt for anything else (names, missing port,
// unbracketed IPv6). Listener, http.listen and dns.servers values pass this.
std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s);

}  // namespace mailgate::policy
