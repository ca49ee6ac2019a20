// Unit tests for smtp/command: verb splitting, EHLO/HELO, MAIL FROM, RCPT TO
// and BDAT argument parsing, with their error replies.
#include "smtp/command.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace mailgate::smtp {
namespace {

using namespace std::string_literals;

// ---- parse_command ---------------------------------------------------------

struct CmdCase {
  std::string line;
  Verb verb;
  std::string arg;
};
class ParseCommand : public ::testing::TestWithParam<CmdCase> {};
TEST_P(ParseCommand, Splits) {
  Command c = parse_command(GetParam().line);
  EXPECT_EQ(c.verb, GetParam().verb) << GetParam().line;
  EXPECT_EQ(c.arg, GetParam().arg) << GetParam().line;
}
INSTANTIATE_TEST_SUITE_P(
    All, ParseCommand,
    ::testing::Values(
        CmdCase{"EHLO client.example", Verb::Ehlo, "client.example"},
        CmdCase{"ehlo client.example", Verb::Ehlo, "client.example"},
        CmdCase{"HELO x", Verb::Helo, "x"}, CmdCase{"MAIL FROM:<a@b>", Verb::Mail, "FROM:<a@b>"},
        CmdCase{"mail from:<a@b> SIZE=10", Verb::Mail, "from:<a@b> SIZE=10"},
        CmdCase{"MAIL   FROM:<a@b>", Verb::Mail, "FROM:<a@b>"},
        CmdCase{"RCPT TO:<a@b>", Verb::Rcpt, "TO:<a@b>"}, CmdCase{"DATA", Verb::Data, ""},
        CmdCase{"data", Verb::Data, ""}, CmdCase{"DATA ", Verb::Data, ""},
        CmdCase{"DATA x", Verb::Data, "x"}, CmdCase{"BDAT 100 LAST", Verb::Bdat, "100 LAST"},
        CmdCase{"RSET", Verb::Rset, ""}, CmdCase{"NOOP", Verb::Noop, ""},
        CmdCase{"NOOP anything", Verb::Noop, "anything"}, CmdCase{"QUIT", Verb::Quit, ""},
        CmdCase{"Quit", Verb::Quit, ""}, CmdCase{"VRFY user", Verb::Vrfy, "user"},
        CmdCase{"HELP", Verb::Help, ""}, CmdCase{"HELP MAIL", Verb::Help, "MAIL"},
        CmdCase{"STARTTLS", Verb::Starttls, ""}, CmdCase{"starttls", Verb::Starttls, ""},
        CmdCase{"AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=", Verb::Auth, "PLAIN dGVzdAB0ZXN0AHRlc3Q="},
        CmdCase{"EXPN list", Verb::Expn, "list"},
        CmdCase{"EHLO  spaced.example  ", Verb::Ehlo, "spaced.example"},
        CmdCase{"", Verb::Unknown, ""}, CmdCase{" ", Verb::Unknown, ""},
        CmdCase{" MAIL FROM:<a@b>", Verb::Unknown, "MAIL FROM:<a@b>"},
        CmdCase{"MAILFROM:<a@b>", Verb::Unknown, ""}, CmdCase{"MAI", Verb::Unknown, ""},
        CmdCase{"DATAX", Verb::Unknown, ""}, CmdCase{"MAIL\tFROM:<a@b>", Verb::Unknown, ""},
        CmdCase{"GET / HTTP/1.1", Verb::Unknown, "/ HTTP/1.1"},
        CmdCase{"STARTTLSX", Verb::Unknown, ""}, CmdCase{"D\xc3\x84TA", Verb::Unknown, ""},
        CmdCase{"DATA"s + '\0', Verb::Unknown, ""}));

// ---- parse_helo ------------------------------------------------------------

class HeloValid : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};
TEST_P(HeloValid, Accepted) {
  auto r = parse_helo(GetParam().first);
  ASSERT_TRUE(std::holds_alternative<std::string>(r)) << GetParam().first;
  EXPECT_EQ(std::get<std::string>(r), GetParam().second);
}
INSTANTIATE_TEST_SUITE_P(
    All, HeloValid,
    ::testing::Values(std::pair{"client.example"s, "client.example"s},
                      std::pair{"  client.example "s, "client.example"s},
                      std::pair{"localhost"s, "localhost"s},
                      std::pair{"Mail-01.Example.COM"s, "Mail-01.Example.COM"s},
                      std::pair{"my_host.example"s, "my_host.example"s},
                      std::pair{"_dmarc.example"s, "_dmarc.example"s},
                      std::pair{"host.example."s, "host.example."s},
                      std::pair{"1.2.3.4"s, "1.2.3.4"s}, std::pair{"[192.0.2.1]"s, "[192.0.2.1]"s},
                      std::pair{"[IPv6:2001:db8::1]"s, "[IPv6:2001:db8::1]"s},
                      std::pair{"[IPv6:::1]"s, "[IPv6:::1]"s},
                      std::pair{"xn--bcher-kva.example"s, "xn--bcher-kva.example"s}));

class HeloInvalid : public ::testing::TestWithParam<std::string> {};
TEST_P(HeloInvalid, Rejected) {
  auto r = parse_helo(GetParam());
  ASSERT_TRUE(std::holds_alternative<Reply>(r)) << GetParam();
  EXPECT_EQ(std::get<Reply>(r).code, 501);
  EXPECT_EQ(std::get<Reply>(r).enhanced, "5.5.4");
}
INSTANTIATE_TEST_SUITE_P(All, HeloInvalid,
                         ::testing::Values(""s, "   "s, "foo bar"s, "foo..example"s, ".foo"s,
                                           "foo.example.."s, "-foo.example"s, "foo-.example"s,
                                           "foo@example"s, "[1.2.3.4"s, "1.2.3.4]"s, "[256.0.0.1]"s,
                                           "[IPv6:zz::1]"s, "[]"s, "foo\r\nMAIL FROM:<a@b>"s,
                                           "foo\x00"s, "f\xc3\xbc.example"s, "foo/bar"s, "<foo>"s,
                                           "foo.example\t x"s, std::string(256, 'a'),
                                           std::string(64, 'a') + ".example"));

// ---- parse_mail_from -------------------------------------------------------

TEST(MailFrom, Basic) {
  auto r = parse_mail_from("FROM:<user@example.com>");
  ASSERT_TRUE(std::holds_alternative<MailFrom>(r));
  const MailFrom& m = std::get<MailFrom>(r);
  EXPECT_EQ(m.path.address.str(), "user@example.com");
  EXPECT_FALSE(m.path.had_source_route);
  EXPECT_FALSE(m.params.size);
}

TEST(MailFrom, Variants) {
  for (std::string arg :
       {"FROM:<user@example.com>", "from:<user@example.com>", "From:<user@example.com>",
        "FROM: <user@example.com>", "FROM:  <user@example.com>", "FROM:<user@example.com> ",
        "FROM:<user@example.com>  "}) {
    auto r = parse_mail_from(arg);
    ASSERT_TRUE(std::holds_alternative<MailFrom>(r)) << arg;
    EXPECT_EQ(std::get<MailFrom>(r).path.address.str(), "user@example.com");
  }
}

TEST(MailFrom, NullPath) {
  auto r = parse_mail_from("FROM:<>");
  ASSERT_TRUE(std::holds_alternative<MailFrom>(r));
  EXPECT_TRUE(std::get<MailFrom>(r).path.address.empty());
  auto p = parse_mail_from("FROM:<> SIZE=100 RET=HDRS");
  ASSERT_TRUE(std::holds_alternative<MailFrom>(p));
  EXPECT_EQ(std::get<MailFrom>(p).params.size, 100u);
}

TEST(MailFrom, WithParams) {
  auto r =
      parse_mail_from("FROM:<user@example.com> SIZE=1000 BODY=8BITMIME RET=FULL ENVID=abc+2Bdef");
  ASSERT_TRUE(std::holds_alternative<MailFrom>(r));
  const MailFrom& m = std::get<MailFrom>(r);
  EXPECT_EQ(m.params.size, 1000u);
  EXPECT_EQ(m.params.body, BodyType::EightBitMime);
  EXPECT_EQ(m.params.ret, Ret::Full);
  EXPECT_EQ(m.params.envid, "abc+def");
}

TEST(MailFrom, QuotedLocalWithBracketsAndSpaces) {
  auto r = parse_mail_from("FROM:<\"a> b\"@example.com> SIZE=1");
  ASSERT_TRUE(std::holds_alternative<MailFrom>(r));
  EXPECT_EQ(std::get<MailFrom>(r).path.address.local, "\"a> b\"");
  EXPECT_EQ(std::get<MailFrom>(r).params.size, 1u);
}

TEST(MailFrom, SourceRouteStripped) {
  auto r = parse_mail_from("FROM:<@a.example,@b.example:user@c.example>");
  ASSERT_TRUE(std::holds_alternative<MailFrom>(r));
  EXPECT_TRUE(std::get<MailFrom>(r).path.had_source_route);
  EXPECT_EQ(std::get<MailFrom>(r).path.address.str(), "user@c.example");
}

TEST(MailFrom, Utf8NeedsSmtputf8Param) {
  auto with = parse_mail_from("FROM:<用户@例子.广告> SMTPUTF8");
  ASSERT_TRUE(std::holds_alternative<MailFrom>(with));
  EXPECT_TRUE(std::get<MailFrom>(with).params.smtputf8);
  EXPECT_EQ(std::get<MailFrom>(with).path.address.local, "用户");
  auto with2 = parse_mail_from("FROM:<ü@example.com> BODY=8BITMIME smtputf8");
  EXPECT_TRUE(std::holds_alternative<MailFrom>(with2));
  auto without = parse_mail_from("FROM:<用户@例子.广告>");
  ASSERT_TRUE(std::holds_alternative<Reply>(without));
  EXPECT_EQ(std::get<Reply>(without).code, 553);
  EXPECT_EQ(std::get<Reply>(without).enhanced, "5.6.7");
  auto bad = parse_mail_from("FROM:<\xc3\x28@example.com> SMTPUTF8");
  ASSERT_TRUE(std::holds_alternative<Reply>(bad));
  EXPECT_EQ(std::get<Reply>(bad).enhanced, "5.1.7");
}

struct ErrCase {
  std::string arg;
  int code;
  std::string enhanced;
};

class MailFromInvalid : public ::testing::TestWithParam<ErrCase> {};
TEST_P(MailFromInvalid, Rejected) {
  auto r = parse_mail_from(GetParam().arg);
  ASSERT_TRUE(std::holds_alternative<Reply>(r)) << GetParam().arg;
  EXPECT_EQ(std::get<Reply>(r).code, GetParam().code)
      << GetParam().arg << ": " << std::get<Reply>(r).text;
  EXPECT_EQ(std::get<Reply>(r).enhanced, GetParam().enhanced) << GetParam().arg;
}
INSTANTIATE_TEST_SUITE_P(
    All, MailFromInvalid,
    ::testing::Values(
        ErrCase{"", 501, "5.5.4"}, ErrCase{"FROM:", 501, "5.5.4"}, ErrCase{"FROM", 501, "5.5.4"},
        ErrCase{"FROM <a@b.example>", 501, "5.5.4"}, ErrCase{"FROM:a@b.example", 501, "5.5.4"},
        ErrCase{"TO:<a@b.example>", 501, "5.5.4"}, ErrCase{"FROM:<a@b.example", 501, "5.5.4"},
        ErrCase{"FROM:<a@b.example>SIZE=1", 501, "5.5.4"},
        ErrCase{"FROM:<a@b.example>x", 501, "5.5.4"},
        ErrCase{"FROM:<\"a@b.example>", 501, "5.5.4"},  // unterminated quote swallows '>'
        ErrCase{"FROM:\t<a@b.example>", 501, "5.5.4"},
        ErrCase{"FROM:<a..b@example.com>", 553, "5.1.7"},
        ErrCase{"FROM:<a@-b.example>", 553, "5.1.7"}, ErrCase{"FROM:<a>", 553, "5.1.7"},
        ErrCase{"FROM:<postmaster>", 553, "5.1.7"},
        ErrCase{"FROM:<" + std::string(65, 'a') + "@example.com>", 553, "5.1.7"},
        ErrCase{"FROM:<a@b.example\r\n>", 553, "5.1.7"},
        ErrCase{"FROM:<a@b.example> SIZE=abc", 501, "5.5.4"},
        ErrCase{"FROM:<a@b.example> FOO=bar", 555, "5.5.4"},
        ErrCase{"FROM:<a@b.example> BODY=BINARYMIME", 555, "5.5.4"},
        ErrCase{"FROM:<a@b.example> SIZE=1 SIZE=1", 501, "5.5.4"},
        ErrCase{"FROM:<a@b.example> NOTIFY=NEVER", 555, "5.5.4"},
        ErrCase{"FROM:<ü@b.example> SMTPUTF8=1", 501, "5.5.4"}));

// ---- parse_rcpt_to ---------------------------------------------------------

TEST(RcptTo, Basic) {
  auto r = parse_rcpt_to("TO:<user@example.com>", false);
  ASSERT_TRUE(std::holds_alternative<RcptTo>(r));
  EXPECT_EQ(std::get<RcptTo>(r).path.address.str(), "user@example.com");
  for (std::string arg :
       {"to:<user@example.com>", "To: <user@example.com>", "TO:<user@example.com> "}) {
    EXPECT_TRUE(std::holds_alternative<RcptTo>(parse_rcpt_to(arg, false))) << arg;
  }
}

TEST(RcptTo, Params) {
  auto r = parse_rcpt_to("TO:<user@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;user+40x", false);
  ASSERT_TRUE(std::holds_alternative<RcptTo>(r));
  EXPECT_EQ(std::get<RcptTo>(r).params.notify, kNotifySuccess | kNotifyDelay);
  EXPECT_EQ(std::get<RcptTo>(r).params.orcpt, "rfc822;user@x");
}

TEST(RcptTo, Postmaster) {
  for (std::string arg : {"TO:<postmaster>", "TO:<Postmaster>", "TO:<POSTMASTER>"}) {
    auto r = parse_rcpt_to(arg, false);
    ASSERT_TRUE(std::holds_alternative<RcptTo>(r)) << arg;
    EXPECT_EQ(std::get<RcptTo>(r).path.address.local, "postmaster");
    EXPECT_EQ(std::get<RcptTo>(r).path.address.domain, "");
  }
  auto d = parse_rcpt_to("TO:<Postmaster@example.com>", false);
  ASSERT_TRUE(std::holds_alternative<RcptTo>(d));
  EXPECT_EQ(std::get<RcptTo>(d).path.address.local, "Postmaster");
}

TEST(RcptTo, Utf8) {
  EXPECT_TRUE(std::holds_alternative<RcptTo>(parse_rcpt_to("TO:<ü@bücher.example>", true)));
  auto r = parse_rcpt_to("TO:<ü@bücher.example>", false);
  ASSERT_TRUE(std::holds_alternative<Reply>(r));
  EXPECT_EQ(std::get<Reply>(r).code, 553);
  EXPECT_EQ(std::get<Reply>(r).enhanced, "5.6.7");
}

TEST(RcptTo, RoutingReported) {
  auto r = parse_rcpt_to("TO:<@relay.example:user%victim.example@example.com>", false);
  ASSERT_TRUE(std::holds_alternative<RcptTo>(r));
  EXPECT_TRUE(std::get<RcptTo>(r).path.had_source_route);
  EXPECT_TRUE(std::get<RcptTo>(r).path.address.has_routing_chars());
  auto q = parse_rcpt_to("TO:<\"user@victim.example\"@example.com>", false);
  ASSERT_TRUE(std::holds_alternative<RcptTo>(q));
  EXPECT_TRUE(std::get<RcptTo>(q).path.address.has_routing_chars());
}

class RcptToInvalid : public ::testing::TestWithParam<ErrCase> {};
TEST_P(RcptToInvalid, Rejected) {
  auto r = parse_rcpt_to(GetParam().arg, false);
  ASSERT_TRUE(std::holds_alternative<Reply>(r)) << GetParam().arg;
  EXPECT_EQ(std::get<Reply>(r).code, GetParam().code)
      << GetParam().arg << ": " << std::get<Reply>(r).text;
  EXPECT_EQ(std::get<Reply>(r).enhanced, GetParam().enhanced) << GetParam().arg;
}
INSTANTIATE_TEST_SUITE_P(
    All, RcptToInvalid,
    ::testing::Values(ErrCase{"", 501, "5.5.4"}, ErrCase{"TO:", 501, "5.5.4"},
                      ErrCase{"TO:user@example.com", 501, "5.5.4"},
                      ErrCase{"FROM:<user@example.com>", 501, "5.5.4"},
                      ErrCase{"TO <user@example.com>", 501, "5.5.4"},
                      ErrCase{"TO:<user@example.com>NOTIFY=NEVER", 501, "5.5.4"},
                      ErrCase{"TO:<>", 553, "5.1.3"}, ErrCase{"TO:<user>", 553, "5.1.3"},
                      ErrCase{"TO:<user@>", 553, "5.1.3"},
                      ErrCase{"TO:<us er@example.com>", 553, "5.1.3"},
                      ErrCase{"TO:<@a.example:postmaster>", 553, "5.1.3"},
                      ErrCase{"TO:<" + std::string(65, 'a') + "@example.com>", 553, "5.1.3"},
                      ErrCase{"TO:<user@example.com\r\nDATA>", 553, "5.1.3"},
                      ErrCase{"TO:<user@example.com> SIZE=1", 555, "5.5.4"},
                      ErrCase{"TO:<user@example.com> NOTIFY=NEVER,DELAY", 501, "5.5.4"},
                      ErrCase{"TO:<user@example.com> ORCPT=rfc822;a+0D+0A", 501, "5.5.4"},
                      ErrCase{"TO:<user@example.com> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4"}));

// ---- parse_bdat ------------------------------------------------------------

struct BdatCase {
  std::string arg;
  std::uint64_t size;
  bool last;
};
class BdatValid : public ::testing::TestWithParam<BdatCase> {};
TEST_P(BdatValid, Parses) {
  auto r = parse_bdat(GetParam().arg);
  ASSERT_TRUE(std::holds_alternative<Bdat>(r)) << GetParam().arg;
  EXPECT_EQ(std::get<Bdat>(r).size, GetParam().size);
  EXPECT_EQ(std::get<Bdat>(r).last, GetParam().last);
}
INSTANTIATE_TEST_SUITE_P(
    All, BdatValid,
    ::testing::Values(BdatCase{"0", 0, false}, BdatCase{"0 LAST", 0, true},
                      BdatCase{"100", 100, false}, BdatCase{"100 LAST", 100, true},
                      BdatCase{"100 last", 100, true}, BdatCase{"100 Last", 100, true},
                      BdatCase{"100  LAST", 100, true}, BdatCase{" 100 LAST ", 100, true},
                      BdatCase{"18446744073709551615", std::numeric_limits<std::uint64_t>::max(),
                               false},
                      BdatCase{"00000000000000000042 LAST", 42, true}));

class BdatInvalid : public ::testing::TestWithParam<std::string> {};
TEST_P(BdatInvalid, Rejected) {
  auto r = parse_bdat(GetParam());
  ASSERT_TRUE(std::holds_alternative<Reply>(r)) << GetParam();
  EXPECT_EQ(std::get<Reply>(r).code, 501);
  EXPECT_EQ(std::get<Reply>(r).enhanced, "5.5.4");
}
INSTANTIATE_TEST_SUITE_P(All, BdatInvalid,
                         ::testing::Values(""s, " "s, "LAST"s, "-1"s, "+1"s, "1x"s, "1LAST"s,
                                           "1 LASTX"s, "1 LAST LAST"s, "1 FIRST"s, "1 2"s, "0x10"s,
                                           "1.5"s, "18446744073709551616"s, "99999999999999999999"s,
                                           "000000000000000000001"s, "1\tLAST"s, "1 LAST\r\n"s));

}  // namespace
}  // namespace mailgate::smtp

TEST(Command, HttpRequestLinesAreRecognized) {
  for (const char* l :
       {"GET / HTTP/1.1", "post /x HTTP/1.0", "CONNECT host:25 HTTP/1.1", "HEAD", "Put /a"})
    EXPECT_TRUE(mailgate::smtp::is_http_request_line(l)) << l;
  for (const char* l : {"GETX /", "EHLO get", "MAIL FROM:<get@x>", "", " GET /"})
    EXPECT_FALSE(mailgate::smtp::is_http_request_line(l)) << l;
}
