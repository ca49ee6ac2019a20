// Fuzz target: text/base64 (the gateway's one base64, used by MIME and SASL).
// The input is both binary data to encode and a text to decode.
// Invariants checked:
//  - encode: 4 * ceil(n / 3) characters of the alphabet, '=' only as the
//    last one or two, and decode(encode(x)) == x;
//  - strict decode (Base64Spaces::Reject): an accepted text is canonical,
//    encode(decode(t)) == t (so every accepted text has exactly one
//    decoding and one encoding), and has no whitespace;
//  - MIME decode (Base64Spaces::Skip) of t is the strict decode of t with
//    CR, LF, space and tab removed: the same acceptance, the same octets.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "text/base64.hpp"

using namespace mailgate;
using mailgate::fuzz::show;

namespace {

bool alphabet(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

bool mime_space(char c) { return c == '\r' || c == '\n' || c == ' ' || c == '\t'; }

void check_encode(std::string_view data) {
  const std::string enc = text::base64_encode(data);
  FUZZ_CHECK(enc.size() == (data.size() + 2) / 3 * 4,
             std::to_string(enc.size()) + " characters for " + std::to_string(data.size()));
  const std::size_t pad = data.size() % 3 == 0 ? 0 : 3 - data.size() % 3;
  for (std::size_t i = 0; i < enc.size(); ++i) {
    const bool padding = i >= enc.size() - pad;
    FUZZ_CHECK(padding ? enc[i] == '=' : alphabet(enc[i]), "encoding " + show(enc));
  }
  const auto dec = text::base64_decode(enc);
  FUZZ_CHECK(dec && *dec == data, "decode(encode(x)) != x for " + show(data));
}

void check_decode(std::string_view t) {
  const auto strict = text::base64_decode(t, text::Base64Spaces::Reject);
  if (strict) {
    FUZZ_CHECK(text::base64_encode(*strict) == t, "accepted a non-canonical text " + show(t));
    for (char c : t) FUZZ_CHECK(!mime_space(c), "strict decode accepted whitespace: " + show(t));
  }
  std::string bare;
  for (char c : t) {
    if (!mime_space(c)) bare.push_back(c);
  }
  const auto mime = text::base64_decode(t, text::Base64Spaces::Skip);
  const auto bare_strict = text::base64_decode(bare, text::Base64Spaces::Reject);
  FUZZ_CHECK(mime == bare_strict,
             "MIME decode of " + show(t) + " is not the strict decode of " + show(bare));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check_encode(in);
  check_decode(in);
  return 0;
}
