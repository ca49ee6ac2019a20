// A-label conversion of domains (IDNA2008 non-transitional via libidn2).
#include "dns/idna.hpp"

#include <gtest/gtest.h>

namespace mailgate::dns {
namespace {

TEST(ALabel, ConvertsULabels) {
  EXPECT_EQ(to_a_label("bücher.example"), "xn--bcher-kva.example");
  EXPECT_EQ(to_a_label("BÜCHER.Example"), "xn--bcher-kva.example");
  EXPECT_EQ(to_a_label("mail.bücher.example"), "mail.xn--bcher-kva.example");
  EXPECT_EQ(to_a_label("faß.de"), "xn--fa-hia.de");  // non-transitional: ß is kept
  EXPECT_EQ(to_a_label("café.test"), "xn--caf-dma.test");
}

TEST(ALabel, AsciiIsLowerCasedAndKept) {
  EXPECT_EQ(to_a_label("Example.COM"), "example.com");
  EXPECT_EQ(to_a_label("example.com."), "example.com");
  EXPECT_EQ(to_a_label("localhost"), "localhost");
  EXPECT_EQ(to_a_label("_dmarc.example"), "_dmarc.example");
  // Real names break IDNA hyphen rules; they are not IDNs and must pass.
  EXPECT_EQ(to_a_label("r3---sn-abc.googlevideo.com"), "r3---sn-abc.googlevideo.com");
  EXPECT_EQ(to_a_label("-a.example"), "-a.example");
  EXPECT_EQ(to_a_label("XN--BCHER-KVA.example"), "xn--bcher-kva.example");
}

TEST(ALabel, RejectsInvalidNames) {
  std::string err;
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "a..b", ".a", "a.b..", "☃.example", "\xff.example",
                                "a b.example", "[192.0.2.1]", "xn--zzzz.example", "xn--a.example",
                                "a/b.example", std::string(64, 'a') + ".example"}) {
    err.clear();
    EXPECT_FALSE(to_a_label(bad, err)) << "accepted: " << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
  std::string long_name;
  for (int i = 0; i < 50; ++i) long_name += "abcd.";
  long_name += "com";  // 253 octets
  EXPECT_TRUE(to_a_label(long_name));
  EXPECT_FALSE(to_a_label("x" + long_name));
  EXPECT_FALSE(to_a_label(std::string("a\0b.example", 11)));
}

}  // namespace
}  // namespace mailgate::dns

namespace mailgate::dns {
namespace {

// The one normalized form of a domain: as the resolver sees it.
TEST(NormalizeDomain, IsTheResolversForm) {
  EXPECT_EQ(normalize_domain("Example.COM"), "example.com");
  EXPECT_EQ(normalize_domain("GMAIL.com"), "gmail.com");
  // Full-width letters map (UTS #46) to the name mail would go to.
  EXPECT_EQ(normalize_domain("\xef\xbd\x87mail.com"), "gmail.com");  // "ｇmail.com"
  EXPECT_EQ(normalize_domain("B\xc3\x9c" "CHER.Example"), "xn--bcher-kva.example");
  EXPECT_EQ(normalize_domain("xn--BCHER-kva.example"), "xn--bcher-kva.example");
  // Literals and names IDNA refuses are only lower-cased.
  EXPECT_EQ(normalize_domain("[IPv6:ABCD::1]"), "[ipv6:abcd::1]");
  EXPECT_EQ(normalize_domain("[192.0.2.1]"), "[192.0.2.1]");
  EXPECT_EQ(normalize_domain(""), "");
  EXPECT_EQ(normalize_domain("a..B"), "a..b");
}

}  // namespace
}  // namespace mailgate::dns
