// net/endpoint: "host:port" / "[v6]:port" parsing and SO_REUSEPORT listeners.
// Promises: parse_endpoint accepts only numeric addresses (no DNS at startup)
// and ports 0..65535; open_listener never throws (errors come back in ec).
#pragma once

#include <asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace mailgate::net {

std::optional<asio::ip::tcp::endpoint> parse_endpoint(std::string_view text);
std::string format_endpoint(const asio::ip::tcp::endpoint& ep);

// Why open_listener failed, with what an operator can do about it:
// "Permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE …)".
std::string describe_listen_error(const std::error_code& ec, const asio::ip::tcp::endpoint& ep);

// Fails with EADDRINUSE when any socket already listens on `ep`, also one
// that set SO_REUSEPORT (another mailgate running as the same user could
// otherwise join the port and take part of the connections): it binds a
// socket without SO_REUSEPORT, then closes it. Called once per listener
// before its SO_REUSEPORT acceptors are opened; port 0 needs no check.
std::error_code check_port_free(asio::io_context& ctx, const asio::ip::tcp::endpoint& ep);

// Opens, binds (SO_REUSEADDR + SO_REUSEPORT) and listens on `ep`.
asio::ip::tcp::acceptor open_listener(asio::io_context& ctx, const asio::ip::tcp::endpoint& ep,
                                      std::error_code& ec);

}  // namespace mailgate::net
