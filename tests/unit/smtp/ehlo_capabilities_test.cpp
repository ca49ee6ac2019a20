// Unit tests for smtp/ehlo_capabilities: real-world EHLO replies (Postfix,
// Gmail, Exchange with the legacy AUTH= form, Exim), parsed from the wire with
// ReplyParser, plus keyword edge cases (case, SIZE values, AUTH merging).
#include "smtp/ehlo_capabilities.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/reply_parser.hpp"

namespace mailgate::smtp {
namespace {

Reply wire(std::string_view w) {
  ReplyParser p;
  const std::size_t n = p.feed(w);
  EXPECT_EQ(n, w.size());
  EXPECT_TRUE(p.done()) << w;
  return p.take();
}

using Mechs = std::vector<std::string>;

TEST(ParseEhlo, Postfix) {
  const auto c =
      parse_ehlo(wire("250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
                      "250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
                      "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"));
  EXPECT_EQ(c.domain, "mail.example.org");
  EXPECT_TRUE(c.pipelining);
  EXPECT_TRUE(c.starttls);
  EXPECT_TRUE(c.enhanced_status_codes);
  EXPECT_TRUE(c.eightbitmime);
  EXPECT_TRUE(c.dsn);
  EXPECT_TRUE(c.smtputf8);
  EXPECT_TRUE(c.chunking);
  EXPECT_FALSE(c.binarymime);
  ASSERT_TRUE(c.size.has_value());
  EXPECT_EQ(*c.size, 10240000u);
  EXPECT_TRUE(c.auth_mechanisms.empty());
}

TEST(ParseEhlo, Gmail) {
  const auto c = parse_ehlo(
      wire("250-mx.google.com at your service, [203.0.113.5]\r\n250-SIZE 157286400\r\n"
           "250-8BITMIME\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n"
           "250-CHUNKING\r\n250 SMTPUTF8\r\n"));
  EXPECT_EQ(c.domain, "mx.google.com");
  EXPECT_EQ(c.size, 157286400u);
  EXPECT_TRUE(c.pipelining && c.eightbitmime && c.starttls && c.enhanced_status_codes &&
              c.chunking && c.smtputf8);
  EXPECT_FALSE(c.dsn);
  // smtp.gmail.com after STARTTLS.
  const auto s = parse_ehlo(
      wire("250-smtp.gmail.com at your service, [203.0.113.5]\r\n250-SIZE 35882577\r\n"
           "250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n"
           "250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n"));
  EXPECT_EQ(s.auth_mechanisms,
            (Mechs{"LOGIN", "PLAIN", "XOAUTH2", "PLAIN-CLIENTTOKEN", "OAUTHBEARER", "XOAUTH"}));
  EXPECT_FALSE(s.starttls);
}

TEST(ParseEhlo, ExchangeWithLegacyAuth) {
  const auto c =
      parse_ehlo(wire("250-EX01.corp.example.com Hello [198.51.100.7]\r\n250-SIZE 37748736\r\n"
                      "250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n"
                      "250-X-ANONYMOUSTLS\r\n250-AUTH NTLM LOGIN\r\n250-AUTH=LOGIN\r\n"
                      "250-X-EXPS GSSAPI NTLM\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n"
                      "250-XRDST\r\n250 XSHADOWREQUEST\r\n"));
  EXPECT_EQ(c.domain, "EX01.corp.example.com");
  EXPECT_EQ(c.size, 37748736u);
  EXPECT_TRUE(c.pipelining && c.dsn && c.enhanced_status_codes && c.starttls && c.eightbitmime &&
              c.binarymime && c.chunking);
  EXPECT_FALSE(c.smtputf8);
  EXPECT_EQ(c.auth_mechanisms, (Mechs{"NTLM", "LOGIN"}));  // merged, deduplicated
}

TEST(ParseEhlo, LegacyAuthOnly) {
  const auto c = parse_ehlo(wire("250-old.example\r\n250-AUTH=LOGIN PLAIN\r\n250 HELP\r\n"));
  EXPECT_EQ(c.auth_mechanisms, (Mechs{"LOGIN", "PLAIN"}));
  const auto d = parse_ehlo(wire("250-old.example\r\n250-AUTH=LOGIN\r\n250 AUTH PLAIN LOGIN\r\n"));
  EXPECT_EQ(d.auth_mechanisms, (Mechs{"LOGIN", "PLAIN"}));
}

TEST(ParseEhlo, Exim) {
  const auto c = parse_ehlo(
      wire("250-mx1.example.net Hello client.example [192.0.2.1]\r\n250-SIZE 52428800\r\n"
           "250-8BITMIME\r\n250-PIPELINING\r\n250-PIPE_CONNECT\r\n250-CHUNKING\r\n"
           "250-STARTTLS\r\n250-PRDR\r\n250 HELP\r\n"));
  EXPECT_TRUE(c.pipelining);  // PIPE_CONNECT is not PIPELINING, but both are there
  EXPECT_TRUE(c.chunking && c.starttls && c.eightbitmime);
  EXPECT_EQ(c.size, 52428800u);
}

TEST(ParseEhlo, CaseInsensitiveAndWholeWords) {
  const auto c = parse_ehlo(
      Reply{250, "", "host\npipelining\nStartTLS\n8bitmime\nsize 1000\nauth plain Login"});
  EXPECT_TRUE(c.pipelining && c.starttls && c.eightbitmime);
  EXPECT_EQ(c.size, 1000u);
  EXPECT_EQ(c.auth_mechanisms, (Mechs{"PLAIN", "LOGIN"}));
  const auto d = parse_ehlo(Reply{250, "", "host\nPIPELININGX\nXSTARTTLS\nDSNX\nX-SIZE 5"});
  EXPECT_FALSE(d.pipelining || d.starttls || d.dsn);
  EXPECT_FALSE(d.size.has_value());
}

TEST(ParseEhlo, SizeValues) {
  auto size_of = [](const char* line) {
    return parse_ehlo(Reply{250, "", std::string("host\n") + line}).size;
  };
  EXPECT_EQ(size_of("SIZE"), 0u);  // offered, no limit announced
  EXPECT_EQ(size_of("SIZE 0"), 0u);
  EXPECT_EQ(size_of("SIZE  42  "), 42u);
  EXPECT_EQ(size_of("SIZE abc"), 0u);
  EXPECT_EQ(size_of("SIZE 12x"), 0u);
  EXPECT_EQ(size_of("SIZE 9999999999999999999"), 9999999999999999999u);
  EXPECT_EQ(size_of("SIZE 99999999999999999999"), 0u);  // out of range: no usable limit
  EXPECT_FALSE(size_of("PIPELINING").has_value());
}

TEST(ParseEhlo, AuthMechanismValidation) {
  const auto c = parse_ehlo(Reply{
      250, "", "host\nAUTH PLAIN bad/mech CRAM-MD5 plain THIS-NAME-IS-WAY-TOO-LONG-FOR-SASL"});
  EXPECT_EQ(c.auth_mechanisms, (Mechs{"PLAIN", "CRAM-MD5"}));
  EXPECT_TRUE(parse_ehlo(Reply{250, "", "host\nAUTH"}).auth_mechanisms.empty());
}

TEST(ParseEhlo, GreetingLineIsNotAKeyword) {
  const auto c = parse_ehlo(Reply{250, "", "PIPELINING"});
  EXPECT_FALSE(c.pipelining);
  EXPECT_EQ(c.domain, "PIPELINING");
  EXPECT_EQ(parse_ehlo(Reply{250, "", ""}).domain, "");
}

TEST(ParseEhlo, NonSuccessOffersNothing) {
  const auto c = parse_ehlo(Reply{502, "5.5.1", "host\nPIPELINING\nSIZE 10"});
  EXPECT_FALSE(c.pipelining);
  EXPECT_FALSE(c.size.has_value());
  EXPECT_EQ(c.domain, "");
}

TEST(ParseEhlo, EmptyAndOddLines) {
  const auto c = parse_ehlo(Reply{250, "", "host\n\n   \n  DSN  \n8BITMIME\t\n"});
  EXPECT_TRUE(c.dsn);
  EXPECT_TRUE(c.eightbitmime);
}

}  // namespace
}  // namespace mailgate::smtp
