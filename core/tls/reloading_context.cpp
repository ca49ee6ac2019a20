// tls/reloading_context: see reloading_context.hpp.
#include "tls/reloading_context.hpp"

#include <openssl/ssl.h>

#include <asio/ssl/context.hpp>

namespace mailgate::tls {

namespace {

// Runs first thing in each handshake on the base context, before OpenSSL
// picks a certificate: the connection moves to the newest context (its
// certificate and key; protocol versions, options and ciphers stay those
// SSL_new copied from the base, which make_server_context set the same).
int on_client_hello(SSL* ssl, int*, void* arg) {
  const auto newest = static_cast<const ReloadingContext*>(arg)->newest();
  if (newest && SSL_get_SSL_CTX(ssl) != newest->native_handle()) {
    // The connection holds a reference: a later reload may drop `newest`.
    if (SSL_set_SSL_CTX(ssl, newest->native_handle()) == nullptr) {
      return SSL_CLIENT_HELLO_ERROR;
    }
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace

ReloadingContext::ReloadingContext(CertificateFiles files) : files_(std::move(files)) {}

ReloadingContext::~ReloadingContext() = default;

std::shared_ptr<ReloadingContext> ReloadingContext::make(CertificateFiles files,
                                                         std::string& error) {
  std::shared_ptr<ReloadingContext> self(new ReloadingContext(std::move(files)));
  self->base_ = make_server_context(self->files_, error);
  if (!self->base_) return nullptr;
  SSL_CTX_set_client_hello_cb(self->base_->native_handle(), on_client_hello, self.get());
  return self;
}

std::shared_ptr<asio::ssl::context> ReloadingContext::server_context() {
  return std::shared_ptr<asio::ssl::context>(shared_from_this(), base_.get());
}

std::string ReloadingContext::reload() {
  std::string error;
  auto fresh = make_server_context(files_, error);
  if (!fresh) return error;
  std::lock_guard lock(mutex_);
  newest_ = std::move(fresh);
  return {};
}

std::shared_ptr<asio::ssl::context> ReloadingContext::newest() const {
  std::lock_guard lock(mutex_);
  return newest_;
}

}  // namespace mailgate::tls
