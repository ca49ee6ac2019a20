// tls/server_context: OpenSSL settings for inbound TLS, and the per-listener
// contexts swapped on reload.
#include "tls/server_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <asio/ssl/context.hpp>

#include "tls/self_signed.hpp"

namespace mailgate::tls {

namespace {

std::string openssl_error() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// Mozilla's "intermediate" TLS 1.2 suites: forward secrecy and AEAD only.
// TLS 1.3 suites are OpenSSL's defaults (all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

}  // namespace

std::shared_ptr<asio::ssl::context> make_server_context(const CertificateFiles& files,
                                                        std::string& error) {
  if (files.cert.empty() || files.key.empty()) {
    error = "tls needs both cert and key";
    return nullptr;
  }
  if (!files.self_signed_name.empty()) {
    error = ensure_self_signed(files.cert, files.key, files.self_signed_name);
    if (!error.empty()) return nullptr;
  }
  ERR_clear_error();
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_SINGLE_ECDH_USE);
  // An idle TLS session should not hold OpenSSL's 34 KB of record buffers.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    error = "cannot set the TLS 1.2 cipher list: " + openssl_error();
    return nullptr;
  }
  // No resumption: SMTP clients rarely resume, and a session cache or
  // tickets would be memory and key state for no gain (full handshakes only).
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(native, 0);
  SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
  if (SSL_CTX_use_certificate_chain_file(native, files.cert.c_str()) != 1) {
    error = "cannot load certificate " + files.cert + ": " + openssl_error();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(native, files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL 3 checks the pair here already; say it in the operator's words.
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      error = "private key " + files.key + " does not match certificate " + files.cert;
    } else {
      error = "cannot load private key " + files.key + ": " + openssl_error();
    }
    return nullptr;
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    error = "private key " + files.key + " does not match certificate " + files.cert;
    return nullptr;
  }
  return ctx;
}

ServerContexts::ServerContexts(std::vector<CertificateFiles> per_listener)
    : files_(std::move(per_listener)), contexts_(files_.size()) {}

std::string ServerContexts::reload() {
  std::vector<std::shared_ptr<asio::ssl::context>> fresh(files_.size());
  for (std::size_t i = 0; i < files_.size(); ++i) {
    if (files_[i].empty()) continue;
    // Listeners sharing the global certificate share one context.
    for (std::size_t j = 0; j < i && !fresh[i]; ++j)
      if (files_[j].cert == files_[i].cert && files_[j].key == files_[i].key) fresh[i] = fresh[j];
    if (fresh[i]) continue;
    std::string error;
    fresh[i] = make_server_context(files_[i], error);
    if (!fresh[i]) return error;
  }
  std::lock_guard lock(mutex_);
  contexts_.swap(fresh);
  return {};
}

std::shared_ptr<asio::ssl::context> ServerContexts::current(std::size_t listener) const {
  std::lock_guard lock(mutex_);
  return listener < contexts_.size() ? contexts_[listener] : nullptr;
}

}  // namespace mailgate::tls
