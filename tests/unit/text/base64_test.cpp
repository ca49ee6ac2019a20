// Unit tests for text/base64, the one base64 of the gateway: RFC 4648 vectors,
// round trips over every byte value and length, and the strict decoder's
// refusals in both whitespace modes (SASL rejects whitespace, MIME skips it).
#include "text/base64.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace mailgate::text {
namespace {

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
    EXPECT_EQ(base64_decode(encoded, Base64Spaces::Skip), std::string(plain)) << encoded;
  }
}

TEST(Base64, EveryByteAndLengthRoundTrips) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> octet(0, 255);
  for (std::size_t size = 0; size <= 260; ++size) {
    std::string data(size, '\0');
    for (auto& c : data) c = static_cast<char>(octet(rng));
    EXPECT_EQ(base64_decode(base64_encode(data)), data) << size;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
}

TEST(Base64, StrictRefusesWhatSkipTolerates) {
  for (const std::string_view spaced :
       {"Zm9v YmFy", "Zm9v\r\nYmFy", "\tZm9vYmFy", "Zm9vYmFy\r\n"}) {
    EXPECT_EQ(base64_decode(spaced), std::nullopt) << spaced;
    EXPECT_EQ(base64_decode(spaced, Base64Spaces::Skip), "foobar") << spaced;
  }
}

TEST(Base64, RefusesMalformedInputInEitherMode) {
  for (const std::string_view bad : {
           "Zg",        // missing padding
           "Zg=",       // short padding
           "Zg===",     // extra padding
           "Zm8==",     // padding after a 3-sextet group must be one '='
           "=Zm9v",     // padding first
           "Zg==Zm9v",  // data after padding
           "Zh==",      // non-zero unused bits (not canonical)
           "Zm9=",      // non-zero unused bits
           "Zm9v-_",    // URL alphabet
           "Zm9v\x80",  // high octet
           "*",
           "====",
           "A",
           "AB",
           "ABC",
       }) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
    EXPECT_EQ(base64_decode(bad, Base64Spaces::Skip), std::nullopt) << bad;
  }
  EXPECT_EQ(base64_decode(std::string_view("Zm9v\0", 5)), std::nullopt);
}

}  // namespace
}  // namespace mailgate::text
