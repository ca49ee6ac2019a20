// Header fields: RFC 5322 folding of plain values (lossless,
// 78 octets where possible, never 998), RFC 2047 encoded-words for everything
// else (75-octet words, no UTF-8 character split, lossless decoding).
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "mime/mime.hpp"
#include "mime_reader.hpp"
#include "text/utf8.hpp"

namespace mailgate::mime {
namespace {

// The lines of "Name: value" as written in a header section.
std::vector<std::string> field_lines(std::size_t name_len, const std::string& value) {
  return test::crlf_lines(std::string(name_len, 'N') + ": " + value);
}

// Checks an encode_header_value() result and returns its decoded text.
std::string check_and_decode(const std::string& encoded, std::size_t name_len,
                             std::size_t max_line = 78) {
  const auto lines = field_lines(name_len, encoded);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    EXPECT_LE(lines[n].size(), max_line) << "line " << n << ": " << lines[n];
    if (n > 0) {
      EXPECT_TRUE(lines[n][0] == ' ' || lines[n][0] == '\t') << lines[n];
      EXPECT_NE(lines[n].find_first_not_of(" \t"), std::string::npos) << "whitespace-only line";
    }
  }
  if (encoded.find("=?") != std::string::npos) {
    // Every whitespace-separated token is an encoded-word of at most 75
    // octets whose payload is whole UTF-8 characters.
    const std::string unfolded = test::unfold(encoded);
    std::size_t pos = 0;
    while (pos < unfolded.size()) {
      const std::size_t start = unfolded.find_first_not_of(' ', pos);
      if (start == std::string::npos) break;
      std::size_t end = unfolded.find(' ', start);
      if (end == std::string::npos) end = unfolded.size();
      const std::string token = unfolded.substr(start, end - start);
      EXPECT_LE(token.size(), 75u) << token;
      const auto word = test::parse_encoded_word(token);
      EXPECT_TRUE(word.has_value()) << token;
      if (word) {
        EXPECT_EQ(word->charset, "UTF-8");
        EXPECT_EQ(word->encoding, "B");
        const auto payload = base64_decode(word->payload);
        EXPECT_TRUE(payload.has_value()) << token;
        EXPECT_TRUE(text::valid_utf8(payload.value_or("\xFF"))) << "split UTF-8 in " << token;
      }
      pos = end;
    }
  }
  const auto decoded = test::decode_rfc2047(test::unfold(encoded));
  EXPECT_TRUE(decoded.has_value()) << encoded;
  return decoded.value_or("");
}

TEST(HeaderValue, PlainAsciiIsUnchanged) {
  for (const std::string_view value :
       {"", "Hello world", "Re: [list] 100% (ok) <x> \"quoted\" a=b?", "tab\tinside"}) {
    EXPECT_EQ(encode_header_value(value, 7), std::string(value));
  }
}

TEST(HeaderValue, LongPlainTextIsFoldedAtWhitespace) {
  std::string value;
  for (int i = 0; i < 60; ++i) value += (i % 7 == 3 ? "\tword" : " word") + std::to_string(i);
  value = "Start" + value;
  const auto encoded = encode_header_value(value, 7);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(encoded->find("=?"), std::string::npos);
  EXPECT_GT(field_lines(7, *encoded).size(), 5u);
  // Folding only inserts CRLF: unfolding gives the value back exactly.
  EXPECT_EQ(test::unfold(*encoded), value);
  check_and_decode(*encoded, 7);
}

TEST(HeaderValue, FoldingNeverMakesAWhitespaceOnlyLine) {
  const std::string value = std::string(60, 'a') + "          " + std::string(20, 'b') + "     ";
  const auto encoded = encode_header_value(value, 7);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(test::unfold(*encoded), value);
  check_and_decode(*encoded, 7);
}

TEST(HeaderValue, LongWordsMayPass78ButNot998) {
  const std::string value = "short " + std::string(300, 'x') + " tail " + std::string(900, 'y');
  const auto encoded = encode_header_value(value, 7);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(encoded->find("=?"), std::string::npos);
  EXPECT_EQ(test::unfold(*encoded), value);
  EXPECT_EQ(check_and_decode(*encoded, 7, 998), value);
}

TEST(HeaderValue, RunTooLongToFoldBecomesEncodedWords) {
  const std::string value = "x " + std::string(1500, 'a');
  EXPECT_EQ(fold_header_value(value, 7), std::nullopt);
  const auto encoded = encode_header_value(value, 7);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(encoded->rfind("=?UTF-8?B?", 0), 0u);
  EXPECT_EQ(check_and_decode(*encoded, 7), value);
}

TEST(HeaderValue, FoldKeepsUtf8AndCountsTheName) {
  // Verbatim fields (RFC 6532) are folded without being encoded.
  const std::string value = "J\xC3\xB6rg <j@example.com>, " + std::string(60, 'k') + "@example.org";
  const auto folded = fold_header_value(value, 2);
  ASSERT_TRUE(folded.has_value());
  EXPECT_EQ(*folded, "J\xC3\xB6rg <j@example.com>,\r\n " + std::string(60, 'k') + "@example.org");
  // A long name moves the first fold earlier.
  EXPECT_EQ(fold_header_value("aaaa bbbb", 70), "aaaa\r\n bbbb");
  EXPECT_EQ(fold_header_value("aaaa bbbb", 60), "aaaa bbbb");
}

TEST(HeaderValue, NonAsciiBecomesEncodedWords) {
  const std::string value =
      "Gr\xC3\xBC\xC3\x9F"
      "e aus K\xC3\xB6ln";
  const auto encoded = encode_header_value(value, 7);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(*encoded, "=?UTF-8?B?" + base64_encode(value) + "?=");
  EXPECT_EQ(check_and_decode(*encoded, 7), value);
}

TEST(HeaderValue, LongUtf8IsSplitAtCharacterBoundaries) {
  // Characters of 1 to 4 octets in every mix and length, for several name
  // lengths: each word stays within 75 octets and holds whole characters.
  const std::string_view characters[] = {
      "a", " ", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xE6\x97\xA5"};
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(characters) - 1);
  for (int round = 0; round < 300; ++round) {
    std::string value = "\xE2\x82\xAC";  // non-ASCII, so encoded
    const int count = round % 150;
    for (int i = 0; i < count; ++i) value += characters[pick(rng)];
    for (const std::size_t name_len : {2u, 7u, 20u, 40u, 60u}) {
      const auto encoded = encode_header_value(value, name_len);
      ASSERT_TRUE(encoded.has_value());
      EXPECT_EQ(check_and_decode(*encoded, name_len), value);
    }
  }
}

TEST(HeaderValue, FirstWordFitsTheFirstLine) {
  std::string euros;
  for (int i = 0; i < 60; ++i) euros += "\xE2\x82\xAC";
  for (std::size_t name_len = 1; name_len <= 60; ++name_len) {
    const auto encoded = encode_header_value(euros, name_len);
    ASSERT_TRUE(encoded.has_value());
    EXPECT_LE(field_lines(name_len, *encoded)[0].size(), 78u) << name_len;
  }
  // A name too long to leave room still gets one character in its first word.
  const auto encoded = encode_header_value(euros, 76);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(check_and_decode(*encoded, 76, 76 + 2 + 16), euros);
}

TEST(HeaderValue, ControlCharactersAreEncodedNotWritten) {
  // The builder refuses CR and LF first; on its own, the encoder still cannot
  // be made to start a new header field.
  const std::string value = "hi\r\nBcc: victim@example.com";
  const auto encoded = encode_header_value(value, 7);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ(encoded->find("Bcc"), std::string::npos);
  EXPECT_EQ(check_and_decode(*encoded, 7), value);
  EXPECT_EQ(check_and_decode(encode_header_value("bell\x07", 7).value(), 7), "bell\x07");
}

TEST(HeaderValue, TextThatLooksEncodedIsEncoded) {
  // Left alone, a reader would decode it to "A".
  const std::string value = "=?UTF-8?B?QQ==?=";
  const auto encoded = encode_header_value(value, 7);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_NE(*encoded, value);
  EXPECT_EQ(check_and_decode(*encoded, 7), value);
}

TEST(HeaderValue, InvalidUtf8IsRefused) {
  EXPECT_EQ(encode_header_value("caf\xC3", 7), std::nullopt);
  EXPECT_EQ(encode_header_value("\xC0\xAF", 7), std::nullopt);
}

}  // namespace
}  // namespace mailgate::mime
