// config/host_port: the "ip:port" / "[ipv6]:port" syntax of listen addresses,
// http.listen and dns.servers. Promises: only IP literals (a listener binds,
// it does not resolve names), ports 0..65535, brackets exactly for IPv6.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace mailgate::config {

// An IPv4 or IPv6 literal ("127.0.0.1", "::1"; no brackets, no zone).
bool is_ip_literal(std::string_view s);

// Splits "ip:port" / "[ipv6]:port" into the host (brackets removed) and the
// port; nullopt for anything else (names, missing port, unbracketed IPv6).
std::optional<std::pair<std::string, std::uint16_t>> parse_host_port(std::string_view s);

}  // namespace mailgate::config
