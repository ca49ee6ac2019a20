// text/base64: see base64.hpp.
#include "text/base64.hpp"

#include <array>
#include <cstdint>

namespace mailgate::text {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::int8_t kNotBase64 = -1;

// Sextet value of each octet, kNotBase64 outside the alphabet.
constexpr std::array<std::int8_t, 256> kValues = [] {
  std::array<std::int8_t, 256> values{};
  values.fill(kNotBase64);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i)
    values[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  return values;
}();

bool is_mime_space(char c) { return c == '\r' || c == '\n' || c == ' ' || c == '\t'; }

std::uint32_t octet(std::string_view data, std::size_t i) {
  return static_cast<unsigned char>(data[i]);
}

}  // namespace

std::string base64_encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t group = octet(data, i) << 16 | octet(data, i + 1) << 8 | octet(data, i + 2);
    out.push_back(kAlphabet[group >> 18]);
    out.push_back(kAlphabet[(group >> 12) & 63]);
    out.push_back(kAlphabet[(group >> 6) & 63]);
    out.push_back(kAlphabet[group & 63]);
  }
  const std::size_t rest = data.size() - i;
  if (rest > 0) {
    std::uint32_t group = octet(data, i) << 16;
    if (rest == 2) group |= octet(data, i + 1) << 8;
    out.push_back(kAlphabet[group >> 18]);
    out.push_back(kAlphabet[(group >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(group >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text, Base64Spaces spaces) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t group = 0;
  std::size_t sextets = 0;  // in `group`
  std::size_t padding = 0;
  for (const char c : text) {
    if (spaces == Base64Spaces::Skip && is_mime_space(c)) continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const std::int8_t value = kValues[static_cast<unsigned char>(c)];
    if (value == kNotBase64 || padding > 0) return std::nullopt;
    group = group << 6 | static_cast<std::uint32_t>(value);
    if (++sextets == 4) {
      out.push_back(static_cast<char>(group >> 16));
      out.push_back(static_cast<char>(group >> 8));
      out.push_back(static_cast<char>(group));
      group = 0;
      sextets = 0;
    }
  }
  // What is left must be nothing, or a final group completed by its padding
  // ("xx==" or "xxx=") whose unused low bits are zero.
  if (sextets == 0) {
    if (padding != 0) return std::nullopt;
  } else if (sextets == 2 && padding == 2 && (group & 0x0F) == 0) {
    out.push_back(static_cast<char>(group >> 4));
  } else if (sextets == 3 && padding == 1 && (group & 0x03) == 0) {
    out.push_back(static_cast<char>(group >> 10));
    out.push_back(static_cast<char>(group >> 2));
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace mailgate::text
