// tls/reloading_context: a server context for a server that takes one
// SSL_CTX at start and keeps it (CivetWeb, the admin HTTPS listener), with
// the certificate still reloadable: every handshake switches to the context
// loaded last (OpenSSL's client-hello callback and SSL_set_SSL_CTX, as
// servers do for SNI). Promises: every context, the first and each reloaded
// one, comes from make_server_context (one TLS policy for SMTP and HTTPS); a
// reload that fails keeps the certificate in use and says why; a handshake
// that has begun keeps the certificate it got; reload() and handshakes may
// run on any threads at once.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "tls/server_context.hpp"

namespace mailgate::tls {

class ReloadingContext : public std::enable_shared_from_this<ReloadingContext> {
 public:
  // Loads `files`; null with `error` set when they cannot be used.
  static std::shared_ptr<ReloadingContext> make(CertificateFiles files, std::string& error);
  ~ReloadingContext();

  // The context to hand to the server, kept alive (with this object) by the
  // pointer; the server's handshakes follow reload().
  std::shared_ptr<asio::ssl::context> server_context();
  // Re-reads the files; "" or why not (then the certificate in use stays).
  std::string reload();

  // Internal (for the OpenSSL callback): the context a new handshake uses.
  std::shared_ptr<asio::ssl::context> newest() const;

 private:
  explicit ReloadingContext(CertificateFiles files);

  CertificateFiles files_;
  std::shared_ptr<asio::ssl::context> base_;  // the server's; its handshakes switch away
  mutable std::mutex mutex_;
  std::shared_ptr<asio::ssl::context> newest_;  // null while the base's certificate is newest
};

}  // namespace mailgate::tls
