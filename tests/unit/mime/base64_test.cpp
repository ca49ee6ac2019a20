// base64: RFC 4648 test vectors, round trips over every byte value, random data
// and every length near the group and line boundaries, the 76-column MIME
// variant, and the strict decoder's refusals.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "mime/mime.hpp"
#include "mime_reader.hpp"

namespace mailgate::mime {
namespace {

std::string random_bytes(std::mt19937_64& rng, std::size_t size) {
  std::uniform_int_distribution<int> octet(0, 255);
  std::string out(size, '\0');
  for (auto& c : out) c = static_cast<char>(octet(rng));
  return out;
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), std::string(plain)) << encoded;
  }
}

TEST(Base64, UsesTheStandardAlphabetForHighBits) {
  EXPECT_EQ(base64_encode("\xFB\xFF\xBF"), "+/+/");
  EXPECT_EQ(base64_encode(std::string("\0\0\0", 3)), "AAAA");
  EXPECT_EQ(base64_encode("\xFF"), "/w==");
}

TEST(Base64, AllByteValuesRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  // Each rotation puts every value at every position within a 3-octet group.
  for (std::size_t shift = 0; shift < 3; ++shift) {
    const std::string data = all.substr(shift) + all.substr(0, shift);
    EXPECT_EQ(base64_decode(base64_encode(data)), data);
    EXPECT_EQ(base64_decode(base64_encode_mime(data)), data);
  }
}

TEST(Base64, EveryLengthUpTo300RoundTrips) {
  std::mt19937_64 rng(42);
  for (std::size_t size = 0; size <= 300; ++size) {
    const std::string data = random_bytes(rng, size);
    const std::string flat = base64_encode(data);
    EXPECT_EQ(flat.size(), (size + 2) / 3 * 4);
    EXPECT_EQ(flat.find_first_of("\r\n"), std::string::npos);
    EXPECT_EQ(base64_decode(flat), data) << size;
    EXPECT_EQ(base64_decode(base64_encode_mime(data)), data) << size;
  }
}

TEST(Base64, LargeRandomRoundTrips) {
  std::mt19937_64 rng(7);
  for (const std::size_t size : {4095u, 4096u, 4097u, 100000u}) {
    const std::string data = random_bytes(rng, size);
    EXPECT_EQ(base64_decode(base64_encode(data)), data);
    EXPECT_EQ(base64_decode(base64_encode_mime(data)), data);
  }
}

TEST(Base64, MimeVariantWrapsAt76WithCrlf) {
  EXPECT_EQ(base64_encode_mime(""), "");
  EXPECT_EQ(base64_encode_mime("f"), "Zg==\r\n");
  std::mt19937_64 rng(1);
  // 57 octets make exactly one 76-character line.
  for (const std::size_t size : {56u, 57u, 58u, 113u, 114u, 115u, 1000u}) {
    const std::string data = random_bytes(rng, size);
    const std::string mime = base64_encode_mime(data);
    ASSERT_GE(mime.size(), 2u);
    EXPECT_EQ(mime.substr(mime.size() - 2), "\r\n");
    const auto lines = test::crlf_lines(mime);
    EXPECT_EQ(lines.size(), (size + 56) / 57) << size;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i + 1 < lines.size()) {
        EXPECT_EQ(lines[i].size(), 76u);
      } else {
        EXPECT_LE(lines[i].size(), 76u);
      }
    }
    EXPECT_TRUE(test::wire_format_problems("X: y\r\n\r\n" + mime).empty());
  }
}

TEST(Base64, DecodeSkipsLineBreaksAndWhitespace) {
  EXPECT_EQ(base64_decode("Zm9v\r\nYmFy\r\n"), "foobar");
  EXPECT_EQ(base64_decode(" Zm 9v\tYg=\n=\n"), "foob");
  EXPECT_EQ(base64_decode("\r\n \t"), "");
}

TEST(Base64, DecodeRefusesAnythingElse) {
  for (const std::string_view bad : std::initializer_list<std::string_view>{
           "Zm9",    // truncated group
           "Zm9vY",  // one sextet left over
           "Zg",     // padding missing
           "Zg=",    // padding short
           "Zg===",  // padding long
           "=",
           "====",
           "Zm=v",      // data after padding
           "Zg==Zg==",  // concatenated encodings
           "Zm9v!",     // outside the alphabet
           "Zm9v-_",    // URL-safe alphabet
           "Zm9v\xC3\xA9",
           std::string_view("Zm\0v", 4),
           "Zh==",  // non-zero unused bits: not the canonical encoding of "f"
           "Zm9=",
       }) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace mailgate::mime
