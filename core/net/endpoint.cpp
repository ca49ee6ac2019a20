// net/endpoint: see endpoint.hpp.
#include "net/endpoint.hpp"

#include <cerrno>

#include <sys/socket.h>
#include <asio/ip/v6_only.hpp>
#include <asio/socket_base.hpp>
#include <charconv>

namespace mailgate::net {

std::optional<asio::ip::tcp::endpoint> parse_endpoint(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // v6 needs brackets
  }
  unsigned p = 0;
  auto [ptr, err] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || err != std::errc() || ptr != port.data() + port.size() || p > 65535)
    return std::nullopt;
  std::error_code ec;
  auto addr = asio::ip::make_address(std::string(host), ec);
  if (ec) return std::nullopt;
  return asio::ip::tcp::endpoint(addr, static_cast<unsigned short>(p));
}

std::string format_endpoint(const asio::ip::tcp::endpoint& ep) {
  auto a = ep.address();
  if (a.is_v6()) return "[" + a.to_string() + "]:" + std::to_string(ep.port());
  return a.to_string() + ":" + std::to_string(ep.port());
}

std::string describe_listen_error(const std::error_code& ec, const asio::ip::tcp::endpoint& ep) {
  std::string text = ec.message();
  // Asio reports socket errors in its own category (errno values), which does
  // not compare equal to std::errc.
  const bool os_error = ec.category() == asio::error::get_system_category() ||
                        ec.category() == std::system_category();
  if (!os_error) return text;
  if ((ec.value() == EACCES || ec.value() == EPERM) && ep.port() < 1024) {
    text +=
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE: the systemd unit grants it; "
        "else `setcap cap_net_bind_service=+ep` on the binary)";
  } else if (ec.value() == EADDRINUSE) {
    text += " (another process listens there, e.g. another MTA: stop it or pick another port)";
  } else if (ec.value() == EADDRNOTAVAIL) {
    text += " (no network interface of this host has that address)";
  }
  return text;
}

std::error_code check_port_free(asio::io_context& ctx, const asio::ip::tcp::endpoint& ep) {
  std::error_code ec;
  asio::ip::tcp::acceptor probe(ctx);
  probe.open(ep.protocol(), ec);
  if (ec) return ec;
  // SO_REUSEADDR only: a restart must not be refused for our own connections
  // left in TIME_WAIT, but a listening socket still makes bind fail.
  probe.set_option(asio::socket_base::reuse_address(true), ec);
  if (ep.address().is_v6()) probe.set_option(asio::ip::v6_only(true), ec);
  probe.bind(ep, ec);
  std::error_code ignored;
  probe.close(ignored);
  return ec;
}

asio::ip::tcp::acceptor open_listener(asio::io_context& ctx, const asio::ip::tcp::endpoint& ep,
                                      std::error_code& ec) {
  asio::ip::tcp::acceptor acc(ctx);
  acc.open(ep.protocol(), ec);
  if (ec) return acc;
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  int one = 1;
  if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    ec = std::error_code(errno, std::system_category());
    return acc;
  }
  if (ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
  acc.bind(ep, ec);
  if (ec) return acc;
  acc.listen(asio::socket_base::max_listen_connections, ec);
  return acc;
}

}  // namespace mailgate::net
