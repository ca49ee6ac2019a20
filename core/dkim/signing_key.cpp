// dkim/signing_key: see signing_key.hpp. OpenSSL 3 EVP throughout.
#include "dkim/signing_key.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "text/base64.hpp"

namespace mailgate::dkim {

namespace {

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

}  // namespace

std::optional<Algorithm> parse_algorithm(std::string_view a) {
  if (a == "rsa-sha256") return Algorithm::RsaSha256;
  if (a == "ed25519-sha256") return Algorithm::Ed25519Sha256;
  return std::nullopt;
}

std::string_view algorithm_name(Algorithm a) {
  return a == Algorithm::RsaSha256 ? "rsa-sha256" : "ed25519-sha256";
}

struct SigningKey::Pkey {
  EVP_PKEY* p = nullptr;
  ~Pkey() { EVP_PKEY_free(p); }
};

SigningKey::SigningKey(std::unique_ptr<Pkey> key) : key_(std::move(key)) {
  bits_ = EVP_PKEY_get_bits(key_->p);
  algorithm_ = EVP_PKEY_get_base_id(key_->p) == EVP_PKEY_ED25519 ? Algorithm::Ed25519Sha256
                                                                 : Algorithm::RsaSha256;
}

SigningKey::~SigningKey() = default;

std::shared_ptr<const SigningKey> SigningKey::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw KeyError("cannot read DKIM key " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw KeyError("cannot read DKIM key " + path);
  return from_pem(text.str(), path);
}

std::shared_ptr<const SigningKey> SigningKey::from_pem(std::string_view pem,
                                                       std::string_view what) {
  const std::string name(what);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) throw KeyError("DKIM key " + name + ": out of memory");
  auto key = std::make_unique<Pkey>();
  key->p = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key->p == nullptr)
    throw KeyError("DKIM key " + name + " is not a PEM private key (" + openssl_error() + ")");
  const int type = EVP_PKEY_get_base_id(key->p);
  if (type == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(key->p);
    if (bits < kMinRsaBits || bits > kMaxRsaBits)
      throw KeyError("DKIM key " + name + " is RSA with " + std::to_string(bits) +
                     " bits; DKIM needs 1024 to 4096");
  } else if (type != EVP_PKEY_ED25519) {
    throw KeyError("DKIM key " + name + " is neither RSA nor Ed25519");
  }
  return std::shared_ptr<const SigningKey>(new SigningKey(std::move(key)));
}

std::shared_ptr<const SigningKey> SigningKey::generate(Algorithm a, int rsa_bits) {
  if (a == Algorithm::RsaSha256 && (rsa_bits < kMinRsaBits || rsa_bits > kMaxRsaBits))
    throw KeyError("RSA keys for DKIM have 1024 to 4096 bits");
  auto key = std::make_unique<Pkey>();
  key->p = a == Algorithm::Ed25519Sha256
               ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
               : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits));
  if (key->p == nullptr) throw KeyError("cannot generate a key: " + openssl_error());
  return std::shared_ptr<const SigningKey>(new SigningKey(std::move(key)));
}

std::string SigningKey::private_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio, key_->p, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    BIO_free(bio);
    throw KeyError("cannot write the key as PEM: " + openssl_error());
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

std::string SigningKey::public_key_base64() const {
  std::string raw;
  if (algorithm_ == Algorithm::Ed25519Sha256) {
    std::size_t n = 0;
    EVP_PKEY_get_raw_public_key(key_->p, nullptr, &n);
    raw.resize(n);
    if (EVP_PKEY_get_raw_public_key(key_->p, reinterpret_cast<unsigned char*>(raw.data()), &n) != 1)
      throw KeyError("cannot read the Ed25519 public key: " + openssl_error());
    raw.resize(n);
  } else {
    const int n = i2d_PUBKEY(key_->p, nullptr);
    if (n <= 0) throw KeyError("cannot encode the RSA public key: " + openssl_error());
    raw.resize(static_cast<std::size_t>(n));
    auto* p = reinterpret_cast<unsigned char*>(raw.data());
    i2d_PUBKEY(key_->p, &p);
  }
  return text::base64_encode(raw);
}

std::string SigningKey::dns_txt() const {
  return std::string("v=DKIM1; k=") + (algorithm_ == Algorithm::Ed25519Sha256 ? "ed25519" : "rsa") +
         "; p=" + public_key_base64();
}

std::string SigningKey::sign(std::string_view data) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) throw KeyError("DKIM signing: out of memory");
  std::string sig;
  bool ok = false;
  if (algorithm_ == Algorithm::Ed25519Sha256) {
    // RFC 8463 §3: PureEdDSA over the SHA-256 hash of the data.
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    std::size_t n = 0;
    ok = EVP_Digest(data.data(), data.size(), md, &mdlen, EVP_sha256(), nullptr) == 1 &&
         EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_->p) == 1 &&
         EVP_DigestSign(ctx, nullptr, &n, md, mdlen) == 1;
    if (ok) {
      sig.resize(n);
      ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n, md, mdlen) == 1;
      sig.resize(n);
    }
  } else {
    std::size_t n = 0;
    ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->p) == 1 &&
         EVP_DigestSignUpdate(ctx, data.data(), data.size()) == 1 &&
         EVP_DigestSignFinal(ctx, nullptr, &n) == 1;
    if (ok) {
      sig.resize(n);
      ok = EVP_DigestSignFinal(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n) == 1;
      sig.resize(n);
    }
  }
  EVP_MD_CTX_free(ctx);
  if (!ok) throw KeyError("DKIM signing failed: " + openssl_error());
  return sig;
}

}  // namespace mailgate::dkim
