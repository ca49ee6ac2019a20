// Tests of text/ascii: case folding and case-blind comparison (ASCII only,
// octets >= 0x80 untouched), trimming (empty, all blanks, inner blanks kept),
// hex digits both ways, and percent-encoding.
#include "text/ascii.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::text {
namespace {

TEST(IsAscii, EveryOctetBelow0x80) {
  EXPECT_TRUE(is_ascii(""));
  EXPECT_TRUE(is_ascii("plain \x01\x7f"));
  EXPECT_TRUE(is_ascii(std::string("nul\0", 4)));
  EXPECT_FALSE(is_ascii("caf\xc3\xa9"));
  EXPECT_FALSE(is_ascii("\x80"));
  EXPECT_FALSE(is_ascii("\xff"));
}

TEST(Case, OnlyAsciiLettersChange) {
  EXPECT_EQ(to_lower('A'), 'a');
  EXPECT_EQ(to_lower('Z'), 'z');
  EXPECT_EQ(to_lower('@'), '@');  // 'A' - 1
  EXPECT_EQ(to_lower('['), '[');  // 'Z' + 1
  EXPECT_EQ(to_upper('a'), 'A');
  EXPECT_EQ(to_upper('`'), '`');  // 'a' - 1
  EXPECT_EQ(to_upper('{'), '{');  // 'z' + 1
  EXPECT_EQ(to_lower(""), "");
  EXPECT_EQ(to_lower("Example.COM"), "example.com");
  EXPECT_EQ(to_lower("B\xc3\x9c-CHER"), "b\xc3\x9c-cher");  // Ü (C3 9C) untouched
  EXPECT_EQ(to_upper("plain-1_x"), "PLAIN-1_X");
  EXPECT_EQ(to_upper("\xc3\xbc"), "\xc3\xbc");
  EXPECT_EQ(to_lower(std::string("A\0B", 3)), std::string("a\0b", 3));
}

TEST(Iequals, CaseBlindForAsciiOnly) {
  EXPECT_TRUE(iequals("", ""));
  EXPECT_TRUE(iequals("EHLO", "ehlo"));
  EXPECT_TRUE(iequals("Content-Type", "CONTENT-type"));
  EXPECT_FALSE(iequals("ehlo", "ehl"));
  EXPECT_FALSE(iequals("", "a"));
  EXPECT_FALSE(iequals("@", "`"));  // differ by 0x20 but are not letters
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89"));  // é / É: not ASCII
  EXPECT_TRUE(iequals("\xc3\xa9", "\xc3\xa9"));
}

TEST(IstartsWith, PrefixCaseBlind) {
  EXPECT_TRUE(istarts_with("IPv6:::1", "ipv6:"));
  EXPECT_TRUE(istarts_with("HTTP://gw", "http://"));
  EXPECT_TRUE(istarts_with("anything", ""));
  EXPECT_TRUE(istarts_with("", ""));
  EXPECT_FALSE(istarts_with("", "a"));
  EXPECT_FALSE(istarts_with("IPv", "ipv6:"));
  EXPECT_FALSE(istarts_with("https://gw", "http://"));
}

TEST(Trim, SpacesAndTabsAtBothEnds) {
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" "), "");
  EXPECT_EQ(trim(" \t \t"), "");
  EXPECT_EQ(trim("a"), "a");
  EXPECT_EQ(trim("  a b\t"), "a b");  // inner blanks stay
  EXPECT_EQ(trim("\ta\t"), "a");
  EXPECT_EQ(trim("\r\na\r\n"), "\r\na\r\n");  // CR and LF are not blanks here
  EXPECT_EQ(trim("\r a \r", " \t\r"), "a");
  EXPECT_EQ(trim(" \r\t", " \t\r"), "");
  EXPECT_EQ(trim("xxaxx", "x"), "a");
  EXPECT_EQ(trim(" a ", ""), " a ");
}

TEST(HexValue, BothCasesOrUpperOnly) {
  const std::string digits = "0123456789abcdef";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    EXPECT_EQ(hex_value(digits[i]), static_cast<int>(i)) << digits[i];
    EXPECT_EQ(hex_value(to_upper(digits[i])), static_cast<int>(i)) << digits[i];
    EXPECT_EQ(upper_hex_value(to_upper(digits[i])), static_cast<int>(i)) << digits[i];
  }
  for (const char c : std::string("abcdef")) EXPECT_EQ(upper_hex_value(c), -1) << c;
  for (const char c : std::string("gG/:@`\x00 \xff", 9)) {
    EXPECT_EQ(hex_value(c), -1) << static_cast<int>(c);
    EXPECT_EQ(upper_hex_value(c), -1) << static_cast<int>(c);
  }
}

TEST(AppendHex, TwoDigitsEveryOctet) {
  std::string out;
  append_hex(out, 0x00);
  append_hex(out, 0x0f);
  append_hex(out, 0xa5);
  append_hex(out, 0xff);
  EXPECT_EQ(out, "000FA5FF");
  std::string lower;
  append_hex(lower, 0xab, HexCase::Lower);
  EXPECT_EQ(lower, "ab");
  for (unsigned v = 0; v < 256; ++v) {
    std::string two;
    append_hex(two, static_cast<unsigned char>(v));
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(hex_value(two[0]) * 16 + hex_value(two[1]), static_cast<int>(v));
  }
}

TEST(PercentEncode, KeepsOnlyUnreserved) {
  EXPECT_EQ(percent_encode(""), "");
  EXPECT_EQ(percent_encode("gmail.com"), "gmail.com");
  EXPECT_EQ(percent_encode("a-b_c.d~e09AZ"), "a-b_c.d~e09AZ");
  EXPECT_EQ(percent_encode("[127.0.0.1]:2525"), "%5B127.0.0.1%5D%3A2525");
  EXPECT_EQ(percent_encode("[IPv6:::1]:25"), "%5BIPv6%3A%3A%3A1%5D%3A25");
  EXPECT_EQ(percent_encode("user+tag@example.com"), "user%2Btag%40example.com");
  EXPECT_EQ(percent_encode("a/b?c=d&e#f %"), "a%2Fb%3Fc%3Dd%26e%23f%20%25");
  EXPECT_EQ(percent_encode("j\xc3\xb6rg@b\xc3\xbc"
                           "cher.de"),
            "j%C3%B6rg%40b%C3%BCcher.de");
  EXPECT_EQ(percent_encode(std::string("a\0b", 3)), "a%00b");
}

}  // namespace
}  // namespace mailgate::text
