// tls/server_context: the OpenSSL server contexts of the inbound listeners.
// make_server_context() builds one from a PEM certificate chain and key with
// the settings an edge MTA should have (TLS 1.2+, ECDHE AEAD ciphers, no
// compression, no renegotiation, buffers released when idle).
// ServerContexts holds one context per listener (its own tls{} or the
// global one) and swaps them on reload(). Promises: a context that failed to
// load is never installed (reload keeps the previous one and says why);
// current() is safe from any thread and a session keeps the context it
// started its handshake with.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace asio::ssl {
class context;
}

namespace mailgate::tls {

struct CertificateFiles {
  std::string cert, key;  // PEM paths; both empty: no TLS
  // Non-empty: when neither file exists, make a self-signed certificate for
  // this name there first (tls/self_signed.hpp).
  std::string self_signed_name;
  bool empty() const { return cert.empty() && key.empty(); }
};

// The context, or null with `error` set ("cannot load certificate F: why").
std::shared_ptr<asio::ssl::context> make_server_context(const CertificateFiles& files,
                                                        std::string& error);

class ServerContexts {
 public:
  // One entry per listener; an empty CertificateFiles means no TLS there.
  explicit ServerContexts(std::vector<CertificateFiles> per_listener);

  // Loads every context; "" or the first error (nothing is swapped then).
  std::string reload();
  // Null when the listener has no certificate (or before the first reload).
  std::shared_ptr<asio::ssl::context> current(std::size_t listener) const;

 private:
  std::vector<CertificateFiles> files_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<asio::ssl::context>> contexts_;
};

}  // namespace mailgate::tls
