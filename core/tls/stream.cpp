// tls/stream: asio::ssl::stream over a borrowed socket, behind a pimpl.
#include "tls/stream.hpp"

#include <openssl/ssl.h>

#include <asio/redirect_error.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

namespace mailgate::tls {

struct ServerStream::Impl {
  std::shared_ptr<asio::ssl::context> context;
  asio::ssl::stream<asio::ip::tcp::socket&> stream;
  Impl(asio::ip::tcp::socket& socket, std::shared_ptr<asio::ssl::context> ctx)
      : context(std::move(ctx)), stream(socket, *context) {}
};

ServerStream::ServerStream(asio::ip::tcp::socket& socket,
                           std::shared_ptr<asio::ssl::context> context)
    : impl_(std::make_unique<Impl>(socket, std::move(context))) {}

ServerStream::~ServerStream() = default;

asio::awaitable<std::error_code> ServerStream::handshake() {
  std::error_code ec;
  co_await impl_->stream.async_handshake(asio::ssl::stream_base::server,
                                         asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

asio::awaitable<std::pair<std::error_code, std::size_t>> ServerStream::read_some(char* data,
                                                                                 std::size_t size) {
  std::error_code ec;
  const std::size_t n = co_await impl_->stream.async_read_some(
      asio::buffer(data, size), asio::redirect_error(asio::use_awaitable, ec));
  co_return std::pair{ec, n};
}

asio::awaitable<std::error_code> ServerStream::write(std::string_view data) {
  std::error_code ec;
  co_await asio::async_write(impl_->stream, asio::buffer(data),
                             asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

std::string ServerStream::version() const { return SSL_get_version(impl_->stream.native_handle()); }

std::string ServerStream::cipher() const {
  const char* name = SSL_get_cipher_name(impl_->stream.native_handle());
  return name ? name : "";
}

int ServerStream::cipher_bits() const {
  return SSL_get_cipher_bits(impl_->stream.native_handle(), nullptr);
}

}  // namespace mailgate::tls
