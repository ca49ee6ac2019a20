// dkim/signing_key: a DKIM private key (RSA 1024–4096 bits or Ed25519) read
// from PEM, what it signs with, and the public half as the DNS TXT record
// verifiers look up (RFC 6376 §3.6.1, RFC 8463 §4).
// Promises: a SigningKey is immutable once made and safe to use from several
// threads at once (each sign() has its own OpenSSL context). Loading refuses,
// with a KeyError naming the file and the reason, a missing or unreadable
// file, a file that is not a PEM private key, an RSA key outside 1024–4096
// bits and any other key type. sign() throws KeyError on an OpenSSL failure.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mailgate::dkim {

enum class Algorithm : std::uint8_t { RsaSha256, Ed25519Sha256 };

std::optional<Algorithm> parse_algorithm(std::string_view a);  // "rsa-sha256" | "ed25519-sha256"
std::string_view algorithm_name(Algorithm a);

struct KeyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SigningKey {
 public:
  static constexpr int kMinRsaBits = 1024;
  static constexpr int kMaxRsaBits = 4096;

  static std::shared_ptr<const SigningKey> load_file(const std::string& path);
  // `what` names the key in errors.
  static std::shared_ptr<const SigningKey> from_pem(std::string_view pem, std::string_view what);
  // A new key: Ed25519, or RSA of `rsa_bits`.
  static std::shared_ptr<const SigningKey> generate(Algorithm a, int rsa_bits = 2048);

  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  Algorithm algorithm() const { return algorithm_; }
  int bits() const { return bits_; }
  std::string private_pem() const;  // PKCS#8
  // The p= value: base64 of the DER SubjectPublicKeyInfo (RSA) or of the
  // 32 raw octets (Ed25519, RFC 8463 §4).
  std::string public_key_base64() const;
  // "v=DKIM1; k=rsa; p=..." / "v=DKIM1; k=ed25519; p=...".
  std::string dns_txt() const;
  // The signature of the canonical header data (RFC 6376 §3.7): RSASSA-
  // PKCS1-v1_5 with SHA-256 over `data`; Ed25519 over SHA-256(`data`)
  // (RFC 8463 §3). Raw octets.
  std::string sign(std::string_view data) const;

 private:
  struct Pkey;
  explicit SigningKey(std::unique_ptr<Pkey> key);
  std::unique_ptr<Pkey> key_;
  Algorithm algorithm_ = Algorithm::RsaSha256;
  int bits_ = 0;
};

}  // namespace mailgate::dkim
