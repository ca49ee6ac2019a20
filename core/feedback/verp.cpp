// feedback/verp: see verp.hpp.
#include "feedback/verp.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "text/ascii.hpp"

namespace mailgate::feedback {

namespace {

constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";

bool is_hex(char c) { return text::hex_value(c) >= 0; }
bool is_base32(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7');
}

std::string lower(std::string_view s) { return text::to_lower(s); }

}  // namespace

Verp Verp::from_config(const std::string& tmpl, const std::string& secret) {
  std::string error;
  auto t = parse_verp_template(tmpl, error);
  if (!error.empty()) return {};
  return Verp(std::move(t), secret);
}

std::string Verp::rcpt_hash(std::string_view id_hex, std::string_view recipient) const {
  const std::string data = lower(id_hex) + lower(recipient);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  // Base32 of the first 7 bytes gives 11 characters; 10 are kept (50 bits).
  std::string out;
  std::uint64_t bits = 0;
  int nbits = 0;
  for (unsigned i = 0; i < len && out.size() < kVerpHashLength; ++i) {
    bits = (bits << 8) | mac[i];
    nbits += 8;
    while (nbits >= 5 && out.size() < kVerpHashLength) {
      out.push_back(kBase32[(bits >> (nbits - 5)) & 31]);
      nbits -= 5;
    }
  }
  return out;
}

std::string Verp::address(std::string_view id_hex, std::string_view recipient) const {
  std::string out;
  for (const auto& p : tmpl_.pieces) {
    switch (p.kind) {
      case VerpPiece::Kind::Literal:
        out += p.text;
        break;
      case VerpPiece::Kind::Id:
        out += lower(id_hex);
        break;
      case VerpPiece::Kind::Hash:
        out += rcpt_hash(id_hex, recipient);
        break;
    }
  }
  return out;
}

std::optional<Verp::Parsed> Verp::match(std::string_view address) const {
  if (!enabled()) return std::nullopt;
  Parsed out;
  std::size_t pos = 0;
  for (const auto& p : tmpl_.pieces) {
    const std::size_t n = p.kind == VerpPiece::Kind::Literal ? p.text.size()
                          : p.kind == VerpPiece::Kind::Id    ? kVerpIdLength
                                                             : kVerpHashLength;
    if (address.size() - pos < n) return std::nullopt;
    const auto part = address.substr(pos, n);
    switch (p.kind) {
      case VerpPiece::Kind::Literal:
        if (!text::iequals(part, p.text)) return std::nullopt;
        break;
      case VerpPiece::Kind::Id:
        for (char c : part)
          if (!is_hex(c)) return std::nullopt;
        out.id_hex = lower(part);
        break;
      case VerpPiece::Kind::Hash:
        for (char c : part)
          if (!is_base32(c)) return std::nullopt;
        out.hash = lower(part);
        break;
    }
    pos += n;
  }
  if (pos != address.size()) return std::nullopt;
  return out;
}

bool Verp::verifies(const Parsed& p, std::string_view recipient) const {
  const auto want = rcpt_hash(p.id_hex, recipient);
  return want.size() == p.hash.size() &&
         CRYPTO_memcmp(want.data(), p.hash.data(), want.size()) == 0;
}

}  // namespace mailgate::feedback
