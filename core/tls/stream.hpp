// tls/stream: server-side TLS over a session's TCP socket (STARTTLS or
// implicit TLS). The OpenSSL and asio::ssl types stay in stream.cpp so the
// session's translation units do not compile them. Promises: every
// operation is a coroutine that completes with an error code (never
// throws); cancelling the socket's operations (a deadline, a drain) cancels
// a pending handshake, read or write; the context is kept alive as long as
// the stream.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace asio::ssl {
class context;
}

namespace mailgate::tls {

class ServerStream {
 public:
  ServerStream(asio::ip::tcp::socket& socket, std::shared_ptr<asio::ssl::context> context);
  ~ServerStream();
  ServerStream(const ServerStream&) = delete;
  ServerStream& operator=(const ServerStream&) = delete;

  asio::awaitable<std::error_code> handshake();
  // Reads what is available (at least one byte) into [data, data+size).
  asio::awaitable<std::pair<std::error_code, std::size_t>> read_some(char* data, std::size_t size);
  asio::awaitable<std::error_code> write(std::string_view data);

  // After a handshake: "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256.
  std::string version() const;
  std::string cipher() const;
  int cipher_bits() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mailgate::tls
