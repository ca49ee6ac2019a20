// Unit tests for smtp/params: every MAIL and RCPT parameter valid, invalid and
// duplicated; RFC 3461 xtext decoding/encoding round trips.
#include "smtp/params.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace mailgate::smtp {
namespace {

using namespace std::string_literals;

MailParams mail_ok(std::string_view text) {
  auto r = parse_mail_params(text);
  EXPECT_TRUE(std::holds_alternative<MailParams>(r))
      << text << " -> " << std::get<Reply>(r).code << " " << std::get<Reply>(r).text;
  return std::holds_alternative<MailParams>(r) ? std::get<MailParams>(r) : MailParams{};
}

RcptParams rcpt_ok(std::string_view text, bool utf8 = false) {
  auto r = parse_rcpt_params(text, utf8);
  EXPECT_TRUE(std::holds_alternative<RcptParams>(r))
      << text << " -> " << std::get<Reply>(r).code << " " << std::get<Reply>(r).text;
  return std::holds_alternative<RcptParams>(r) ? std::get<RcptParams>(r) : RcptParams{};
}

TEST(MailParams, Empty) {
  for (std::string_view t : {"", " ", "    "}) {
    MailParams p = mail_ok(t);
    EXPECT_FALSE(p.size);
    EXPECT_EQ(p.body, BodyType::Unspecified);
    EXPECT_FALSE(p.smtputf8);
    EXPECT_EQ(p.ret, Ret::Unspecified);
    EXPECT_TRUE(p.envid.empty());
    EXPECT_TRUE(p.auth.empty());
  }
}

TEST(MailParams, All) {
  MailParams p = mail_ok(
      " SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=QQ314159+2Bx AUTH=e+3Dmc2@example.com");
  EXPECT_EQ(p.size, 12345u);
  EXPECT_EQ(p.body, BodyType::EightBitMime);
  EXPECT_TRUE(p.smtputf8);
  EXPECT_EQ(p.ret, Ret::Hdrs);
  EXPECT_EQ(p.envid, "QQ314159+x");
  EXPECT_EQ(p.auth, "e=mc2@example.com");
}

TEST(MailParams, KeywordsAndValuesCaseInsensitive) {
  MailParams p = mail_ok(" size=1 body=7bit smtputf8 ret=full");
  EXPECT_EQ(p.size, 1u);
  EXPECT_EQ(p.body, BodyType::SevenBit);
  EXPECT_TRUE(p.smtputf8);
  EXPECT_EQ(p.ret, Ret::Full);
  EXPECT_EQ(mail_ok(" BoDy=8bItMiMe").body, BodyType::EightBitMime);
  EXPECT_EQ(mail_ok(" Ret=Hdrs").ret, Ret::Hdrs);
}

TEST(MailParams, MultipleSpaces) {
  MailParams p = mail_ok("   SIZE=10    BODY=7BIT   ");
  EXPECT_EQ(p.size, 10u);
  EXPECT_EQ(p.body, BodyType::SevenBit);
}

TEST(MailParams, Size) {
  EXPECT_EQ(mail_ok(" SIZE=0").size, 0u);
  EXPECT_EQ(mail_ok(" SIZE=00000000000000000001").size, 1u);  // 20 digits
  EXPECT_EQ(mail_ok(" SIZE=18446744073709551615").size, std::numeric_limits<std::uint64_t>::max());
  // 20 digits beyond 2^64-1 are valid syntax (RFC 1870): they saturate, never wrap
  EXPECT_EQ(mail_ok(" SIZE=18446744073709551616").size, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(mail_ok(" SIZE=99999999999999999999").size, std::numeric_limits<std::uint64_t>::max());
}

struct BadParam {
  std::string text;
  int code;
};

class MailParamsInvalid : public ::testing::TestWithParam<BadParam> {};
TEST_P(MailParamsInvalid, Rejected) {
  auto r = parse_mail_params(GetParam().text);
  ASSERT_TRUE(std::holds_alternative<Reply>(r)) << GetParam().text;
  const Reply& e = std::get<Reply>(r);
  EXPECT_EQ(e.code, GetParam().code) << GetParam().text << ": " << e.text;
  EXPECT_EQ(e.enhanced, "5.5.4");
  EXPECT_EQ(e.text.find_first_of("\r\n"s + '\0'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    All, MailParamsInvalid,
    ::testing::Values(
        // unknown / unsupported -> 555
        BadParam{" FOO=bar", 555}, BadParam{" FOO", 555}, BadParam{" X-FOO=1", 555},
        BadParam{" NOTIFY=NEVER", 555}, BadParam{" ORCPT=rfc822;a@b", 555},
        BadParam{" BODY=BINARYMIME", 555}, BadParam{" body=binarymime", 555},
        BadParam{" SIZE=1 FOO", 555},
        // malformed syntax -> 501
        BadParam{" =1", 501}, BadParam{" -SIZE=1", 501}, BadParam{" SI_ZE=1", 501},
        BadParam{" SIZE=", 501}, BadParam{" SIZE==1", 501}, BadParam{" SIZE=1=2", 501},
        BadParam{" SIZE=1\t", 501}, BadParam{" SIZE=1\r\nRCPT", 501},
        BadParam{" SIZE=1"s + '\0', 501}, BadParam{"\tSIZE=1", 501},
        // SIZE
        BadParam{" SIZE", 501}, BadParam{" SIZE=abc", 501}, BadParam{" SIZE=-1", 501},
        BadParam{" SIZE=+1", 501}, BadParam{" SIZE=1.5", 501}, BadParam{" SIZE=1k", 501},
        BadParam{" SIZE=000000000000000000001", 501},  // 21 digits
        BadParam{" SIZE=100000000000000000000", 501}, BadParam{" SIZE=1 SIZE=2", 501},
        BadParam{" SIZE=1 size=1", 501},
        // BODY
        BadParam{" BODY", 501}, BadParam{" BODY=8BIT", 501}, BadParam{" BODY=7BITX", 501},
        BadParam{" BODY=7BIT BODY=7BIT", 501},
        // SMTPUTF8
        BadParam{" SMTPUTF8=yes", 501}, BadParam{" SMTPUTF8 SMTPUTF8", 501},
        // RET
        BadParam{" RET", 501}, BadParam{" RET=ALL", 501}, BadParam{" RET=FULL RET=HDRS", 501},
        // ENVID
        BadParam{" ENVID", 501}, BadParam{" ENVID=a+", 501}, BadParam{" ENVID=a+2", 501},
        BadParam{" ENVID=a+2b", 501}, BadParam{" ENVID=a+GG", 501}, BadParam{" ENVID=a+0D+0A", 501},
        BadParam{" ENVID=a+00", 501}, BadParam{" ENVID=a+7F", 501},
        BadParam{" ENVID=a+C3+A9", 501},  // not ASCII
        BadParam{" ENVID=\xc3\xa9", 501}, BadParam{" ENVID=" + std::string(101, 'x'), 501},
        BadParam{" ENVID=a ENVID=b", 501},
        // AUTH
        BadParam{" AUTH", 501}, BadParam{" AUTH=notanaddress", 501},
        BadParam{" AUTH=a@b+0D+0A", 501}, BadParam{" AUTH=<> AUTH=<>", 501},
        BadParam{" AUTH=+C3+BC@example.com", 501}));  // UTF-8 mailbox without SMTPUTF8

TEST(MailParams, EnvidLimits) {
  EXPECT_EQ(mail_ok(" ENVID=" + std::string(100, 'x')).envid, std::string(100, 'x'));
  // 100 characters after decoding, even if the xtext form is longer
  std::string enc;
  for (int i = 0; i < 100; ++i) enc += "+2B";
  EXPECT_EQ(mail_ok(" ENVID=" + enc).envid, std::string(100, '+'));
  EXPECT_TRUE(std::holds_alternative<Reply>(parse_mail_params(" ENVID=" + enc + "+2B")));
  // a space is printable and may be encoded
  EXPECT_EQ(mail_ok(" ENVID=a+20b").envid, "a b");
}

TEST(MailParams, Auth) {
  EXPECT_EQ(mail_ok(" AUTH=<>").auth, "<>");
  EXPECT_EQ(mail_ok(" AUTH=user@example.com").auth, "user@example.com");
  EXPECT_EQ(mail_ok(" AUTH=+22a+20b+22@example.com").auth, "\"a b\"@example.com");
  // UTF-8 mailbox allowed when SMTPUTF8 is given, wherever it appears
  EXPECT_EQ(mail_ok(" AUTH=+C3+BC@example.com SMTPUTF8").auth, "\xc3\xbc@example.com");
}

// ---- RCPT ------------------------------------------------------------------

TEST(RcptParams, Empty) {
  RcptParams p = rcpt_ok("");
  EXPECT_EQ(p.notify, kNotifyUnspecified);
  EXPECT_TRUE(p.orcpt.empty());
}

struct NotifyCase {
  std::string text;
  std::uint8_t flags;
};
class Notify : public ::testing::TestWithParam<NotifyCase> {};
TEST_P(Notify, Parses) { EXPECT_EQ(rcpt_ok(GetParam().text).notify, GetParam().flags); }
INSTANTIATE_TEST_SUITE_P(
    All, Notify,
    ::testing::Values(
        NotifyCase{" NOTIFY=NEVER", kNotifyNever}, NotifyCase{" notify=never", kNotifyNever},
        NotifyCase{" NOTIFY=SUCCESS", kNotifySuccess},
        NotifyCase{" NOTIFY=FAILURE", kNotifyFailure}, NotifyCase{" NOTIFY=DELAY", kNotifyDelay},
        NotifyCase{" NOTIFY=SUCCESS,FAILURE", kNotifySuccess | kNotifyFailure},
        NotifyCase{" NOTIFY=failure,delay", kNotifyFailure | kNotifyDelay},
        NotifyCase{" NOTIFY=DELAY,SUCCESS,FAILURE", kNotifySuccess | kNotifyFailure | kNotifyDelay},
        NotifyCase{" NOTIFY=SUCCESS,SUCCESS", kNotifySuccess}));

TEST(RcptParams, Orcpt) {
  EXPECT_EQ(rcpt_ok(" ORCPT=rfc822;a@example.com").orcpt, "rfc822;a@example.com");
  EXPECT_EQ(rcpt_ok(" ORCPT=RFC822;a+2Bb@example.com").orcpt, "RFC822;a+b@example.com");
  EXPECT_EQ(rcpt_ok(" ORCPT=rfc822;+22a+20b+22@example.com").orcpt, "rfc822;\"a b\"@example.com");
  EXPECT_EQ(rcpt_ok(" ORCPT=x-local;anything").orcpt, "x-local;anything");
  // RFC 6533 utf-8 address type: kept in encoded form
  EXPECT_EQ(rcpt_ok(" ORCPT=utf-8;a\\x{E9}@example.com").orcpt, "utf-8;a\\x{E9}@example.com");
  EXPECT_EQ(rcpt_ok(" ORCPT=utf-8;\xc3\xa9@example.com", true).orcpt, "utf-8;\xc3\xa9@example.com");
  EXPECT_EQ(rcpt_ok(" ORCPT=UTF-8;\\x{1F600}@example.com").orcpt, "UTF-8;\\x{1F600}@example.com");
  // 500 characters after decoding
  const std::string a500 = std::string(488, 'a') + "@example.com";
  ASSERT_EQ(a500.size(), 500u);
  EXPECT_EQ(rcpt_ok(" ORCPT=rfc822;" + a500).orcpt, "rfc822;" + a500);
  EXPECT_TRUE(std::holds_alternative<Reply>(parse_rcpt_params(" ORCPT=rfc822;a" + a500, false)));
}

TEST(RcptParams, Both) {
  RcptParams p = rcpt_ok("  NOTIFY=SUCCESS,FAILURE   ORCPT=rfc822;x@y.example ");
  EXPECT_EQ(p.notify, kNotifySuccess | kNotifyFailure);
  EXPECT_EQ(p.orcpt, "rfc822;x@y.example");
}

struct RcptBad {
  std::string text;
  int code;
  bool utf8 = false;
};
class RcptParamsInvalid : public ::testing::TestWithParam<RcptBad> {};
TEST_P(RcptParamsInvalid, Rejected) {
  auto r = parse_rcpt_params(GetParam().text, GetParam().utf8);
  ASSERT_TRUE(std::holds_alternative<Reply>(r)) << GetParam().text;
  EXPECT_EQ(std::get<Reply>(r).code, GetParam().code)
      << GetParam().text << ": " << std::get<Reply>(r).text;
  EXPECT_EQ(std::get<Reply>(r).enhanced, "5.5.4");
}
INSTANTIATE_TEST_SUITE_P(
    All, RcptParamsInvalid,
    ::testing::Values(
        RcptBad{" SIZE=10", 555}, RcptBad{" BODY=7BIT", 555}, RcptBad{" SMTPUTF8", 555},
        RcptBad{" FOO=BAR", 555}, RcptBad{" NOTIFY", 501}, RcptBad{" NOTIFY=", 501},
        RcptBad{" NOTIFY=ALWAYS", 501}, RcptBad{" NOTIFY=NEVER,SUCCESS", 501},
        RcptBad{" NOTIFY=SUCCESS,NEVER", 501}, RcptBad{" NOTIFY=SUCCESS,", 501},
        RcptBad{" NOTIFY=,SUCCESS", 501}, RcptBad{" NOTIFY=SUCCESS,,FAILURE", 501},
        RcptBad{" NOTIFY=SUCCESS FAILURE", 555},  // "FAILURE" is an unknown keyword
        RcptBad{" NOTIFY=SUCCESS NOTIFY=FAILURE", 501}, RcptBad{" ORCPT", 501},
        RcptBad{" ORCPT=", 501}, RcptBad{" ORCPT=rfc822", 501}, RcptBad{" ORCPT=;a@b", 501},
        RcptBad{" ORCPT=rfc822;", 501}, RcptBad{" ORCPT=rf(c;a@b", 501},
        RcptBad{" ORCPT=rfc822;a+0Db", 501}, RcptBad{" ORCPT=rfc822;a+0A", 501},
        RcptBad{" ORCPT=rfc822;a+00", 501}, RcptBad{" ORCPT=rfc822;a+2b", 501},
        RcptBad{" ORCPT=rfc822;a+C3+A9", 501}, RcptBad{" ORCPT=rfc822;\xc3\xa9", 501, true},
        RcptBad{" ORCPT=rfc822;a@b ORCPT=rfc822;a@b", 501},
        // utf-8 addr-type (RFC 6533)
        RcptBad{" ORCPT=utf-8;\xc3\xa9@example.com", 501, false},  // raw UTF-8 needs SMTPUTF8
        RcptBad{" ORCPT=utf-8;\xff@example.com", 501, true},       // invalid UTF-8
        RcptBad{" ORCPT=utf-8;a+2Bb@example.com", 501},            // '+' not allowed raw
        RcptBad{" ORCPT=utf-8;a\\b@example.com", 501}, RcptBad{" ORCPT=utf-8;a\\x{}", 501},
        RcptBad{" ORCPT=utf-8;a\\x{E9", 501}, RcptBad{" ORCPT=utf-8;a\\x{e9}", 501},
        RcptBad{" ORCPT=utf-8;a\\x{D}", 501}, RcptBad{" ORCPT=utf-8;a\\x{0D}", 501},
        RcptBad{" ORCPT=utf-8;a\\x{0A}", 501}, RcptBad{" ORCPT=utf-8;a\\x{00}", 501},
        RcptBad{" ORCPT=utf-8;a\\x{D800}", 501}, RcptBad{" ORCPT=utf-8;a\\x{110000}", 501},
        RcptBad{" ORCPT=utf-8;a\\x{0000041}", 501}));

// ---- xtext -----------------------------------------------------------------

struct XtextCase {
  std::string enc;
  std::optional<std::string> dec;
};
class XtextDecode : public ::testing::TestWithParam<XtextCase> {};
TEST_P(XtextDecode, Decodes) { EXPECT_EQ(xtext_decode(GetParam().enc), GetParam().dec); }
INSTANTIATE_TEST_SUITE_P(
    All, XtextDecode,
    ::testing::Values(XtextCase{"", ""}, XtextCase{"abc", "abc"}, XtextCase{"a+2Bb", "a+b"},
                      XtextCase{"+3D", "="}, XtextCase{"+20", " "}, XtextCase{"+7E", "~"},
                      XtextCase{"!~", "!~"}, XtextCase{"+C3+A9", "\xc3\xa9"},
                      XtextCase{"+FF", "\xff"}, XtextCase{"+", std::nullopt},
                      XtextCase{"+2", std::nullopt}, XtextCase{"a+", std::nullopt},
                      XtextCase{"+2b", std::nullopt}, XtextCase{"+g0", std::nullopt},
                      XtextCase{"+ 2", std::nullopt}, XtextCase{"a=b", std::nullopt},
                      XtextCase{"a b", std::nullopt}, XtextCase{"a\tb", std::nullopt},
                      XtextCase{"a\x7f", std::nullopt}, XtextCase{"\xc3\xa9", std::nullopt},
                      XtextCase{"+0D", std::nullopt}, XtextCase{"+0A", std::nullopt},
                      XtextCase{"+00", std::nullopt}, XtextCase{"+1B", std::nullopt},
                      XtextCase{"+7F", std::nullopt}, XtextCase{"+09", std::nullopt}));

TEST(Xtext, Encode) {
  EXPECT_EQ(xtext_encode(""), "");
  EXPECT_EQ(xtext_encode("abc@example.com"), "abc@example.com");
  EXPECT_EQ(xtext_encode("a+b=c"), "a+2Bb+3Dc");
  EXPECT_EQ(xtext_encode("a b"), "a+20b");
  EXPECT_EQ(xtext_encode("\r\n"), "+0D+0A");
  EXPECT_EQ(xtext_encode("\xc3\xa9"), "+C3+A9");
}

TEST(Xtext, RoundTripAllPrintableAndHighOctets) {
  std::string all;
  for (int c = 0x20; c < 0x7f; ++c) all.push_back(static_cast<char>(c));
  for (int c = 0x80; c < 0x100; ++c) all.push_back(static_cast<char>(c));
  const std::string enc = xtext_encode(all);
  for (char c : enc) {
    EXPECT_TRUE(c >= '!' && c <= '~' && c != '=') << int(c);
  }
  EXPECT_EQ(xtext_decode(enc), all);
  for (std::string s : {"QQ314159", "a+b", "x=y", "\"quoted local\"@example.com", "+++"}) {
    EXPECT_EQ(xtext_decode(xtext_encode(s)), s);
  }
}

TEST(Xtext, ControlsNeverDecoded) {
  for (int c = 0; c < 0x20; ++c) {
    const std::string s(1, static_cast<char>(c));
    EXPECT_EQ(xtext_decode(xtext_encode(s)), std::nullopt) << c;
  }
}

}  // namespace
}  // namespace mailgate::smtp
