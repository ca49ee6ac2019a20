// server/listener_config: one mailgate.listen{} call: an inbound SMTP
// listener's address, relay control, TLS/AUTH settings and limits.
// Promises: defaults are the initializers (relay_networks: loopback);
// check_listeners() refuses two listeners on one address (port 0 excepted).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/section.hpp"
#include "net/cidr.hpp"
#include "tls/tls_config.hpp"

namespace mailgate::server {

enum class AuthMode { Off, Optional, Required };

// 127.0.0.0/8 and ::1/128.
std::vector<net::Cidr> loopback_networks();

struct ListenerConfig {
  std::string address = "127.0.0.1:2525";  // "host:port", "[v6]:port"; port 0 = ephemeral
  std::vector<net::Cidr> relay_networks = loopback_networks();
  std::vector<std::string> relay_domains;  // normalized (lower case, A-labels)
  bool starttls = false;
  bool implicit_tls = false;  // TLS from the first byte (port 465 style)
  AuthMode auth = AuthMode::Off;
  bool auth_plaintext = false;  // allow AUTH without TLS (loopback test setups only)
  tls::TlsConfig tls;           // this listener's certificate; empty: the global tls
  std::uint64_t max_message_size = 25'000'000;
  std::uint32_t max_recipients = 1000;
  config::Duration command_timeout{5 * 60 * 1000};  // RFC 5321 §4.5.3.2.7
  config::Duration data_timeout{3 * 60 * 1000};     // §4.5.3.2.6 (data block)
  std::uint32_t max_errors = 20;          // error replies (DATA/BDAT's too) before 421 + close
  std::uint32_t max_junk_commands = 100;  // NOOP/RSET/VRFY/HELP/... before 421
  std::uint32_t max_line_length = 2048;   // command line, octets incl. CRLF
  // Abuse limits (DESIGN §6b). 0 / unset: no limit.
  std::uint32_t max_connections = 10000;       // sessions on this listener: 421 4.3.2 beyond
  std::uint32_t max_connections_per_ip = 200;  // per client IP, all listeners: 421 4.7.0 beyond
  std::optional<config::Rate> connection_rate_per_ip;  // new connections per client IP: 421 4.7.0
  config::Duration greet_pause{300};  // "220-", pause, "220 "; input before it: 554 5.5.1
  config::Duration session_timeout{30 * 60 * 1000};      // a whole session
  config::Duration transaction_timeout{15 * 60 * 1000};  // MAIL to the end of data
  std::uint64_t min_data_rate = 1000;  // bytes/s over a message's data (after 10 s); 0: off
};

const config::Section<ListenerConfig>& listener_section();

// Rules across listeners; `base` names the list in errors ("listen").
void check_listeners(const std::vector<ListenerConfig>& listeners, const std::string& base,
                     const config::Context& ctx);

}  // namespace mailgate::server
