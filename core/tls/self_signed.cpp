// tls/self_signed: see self_signed.hpp.
#include "tls/self_signed.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace mailgate::tls {

namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

std::string openssl_reason() {
  char buf[256] = "unknown OpenSSL error";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// Writes with `write` to path.tmp (mode `mode`), then renames over path.
template <typename Write>
std::string write_file(const std::string& path, mode_t mode, Write write) {
  const std::string tmp = path + ".tmp";
  const mode_t old_mask = ::umask(0077);
  FILE* f = std::fopen(tmp.c_str(), "w");
  ::umask(old_mask);
  if (!f) return "cannot write " + tmp;
  const bool ok = write(f) == 1;
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed || ::chmod(tmp.c_str(), mode) != 0 ||
      std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return "cannot write " + path + (ok ? "" : ": " + openssl_reason());
  }
  return {};
}

}  // namespace

namespace {

std::string make_self_signed(const std::string& cert_path, const std::string& key_path,
                             const std::string& host_name) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return "cannot generate a key: " + openssl_reason();
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), static_cast<long>(std::time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(host_name.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  // The loopback addresses too: local clients of the admin HTTPS listener
  // (curl --cacert, mailgate queue --api https://127.0.0.1:8025) verify it.
  const std::string san = "DNS:" + host_name + ",IP:127.0.0.1,IP:::1";
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str()));
  if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1)
    return "cannot name " + host_name + " in a certificate: " + openssl_reason();
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
    return "cannot sign the certificate: " + openssl_reason();

  if (auto e = write_file(key_path, 0600,
                          [&](FILE* f) {
                            return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr,
                                                        nullptr);
                          });
      !e.empty())
    return e;
  if (auto e = write_file(cert_path, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
      !e.empty()) {
    std::remove(key_path.c_str());
    return e;
  }
  return {};
}

}  // namespace

std::string ensure_self_signed(const std::string& cert_path, const std::string& key_path,
                               const std::string& host_name) {
  std::error_code ec;
  for (const auto& p : {cert_path, key_path}) {
    const auto dir = std::filesystem::path(p).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) return "cannot create " + dir.string() + ": " + ec.message();
  }
  const std::string lock_path = key_path + ".lock";
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) return "cannot open " + lock_path;
  ::flock(lock, LOCK_EX);
  const bool cert = std::filesystem::exists(cert_path, ec);
  const bool key = std::filesystem::exists(key_path, ec);
  std::string error;
  if (cert != key) {
    error = (cert ? key_path : cert_path) + " is missing (the other file of the pair exists)";
  } else if (!cert) {
    error = make_self_signed(cert_path, key_path, host_name);
  }
  ::close(lock);  // releases the lock
  return error;
}

}  // namespace mailgate::tls
