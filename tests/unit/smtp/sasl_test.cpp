// Unit tests for smtp/sasl: the AUTH command's arguments, PLAIN and LOGIN
// responses as a hostile client would send them (bad base64, missing or extra
// NULs, empty or over-long fields, proxy authorization, control characters,
// huge responses), the replies they get (never quoting the client), and the
// client side's encodings and mechanism choice.
#include "smtp/sasl.hpp"

#include <gtest/gtest.h>

#include <string>

#include "text/base64.hpp"

namespace mailgate::smtp {
namespace {

std::string b64(std::string_view s) { return text::base64_encode(s); }
std::string plain(std::string_view authz, std::string_view user, std::string_view pass) {
  std::string m(authz);
  m.push_back('\0');
  m.append(user);
  m.push_back('\0');
  m.append(pass);
  return b64(m);
}

// The refusal (a copy: the result is usually a temporary).
template <class T>
Reply refused(const SaslParsed<T>& r) {
  const auto* reply = std::get_if<Reply>(&r);
  EXPECT_NE(reply, nullptr);
  return reply ? *reply : Reply{};
}

TEST(SaslAuthCommand, MechanismAndInitialResponse) {
  auto a = std::get<AuthCommand>(parse_auth_command("plain"));
  EXPECT_EQ(a.mechanism, "PLAIN");
  EXPECT_FALSE(a.initial_response);
  a = std::get<AuthCommand>(parse_auth_command("PLAIN AGJvYgBzZWNyZXQ="));
  EXPECT_EQ(a.initial_response, "AGJvYgBzZWNyZXQ=");
  a = std::get<AuthCommand>(parse_auth_command("LOGIN ="));  // RFC 4954: "=" is empty
  EXPECT_EQ(a.mechanism, "LOGIN");
  ASSERT_TRUE(a.initial_response);
  EXPECT_EQ(*a.initial_response, "");
  a = std::get<AuthCommand>(parse_auth_command("SCRAM-SHA-256"));
  EXPECT_EQ(a.mechanism, "SCRAM-SHA-256");
}

TEST(SaslAuthCommand, RefusesMalformedArguments) {
  for (const std::string_view bad :
       {"", " PLAIN", "PLAIN  x", "PLAIN x y", "PLAIN ", "PL@IN", "PLAIN\tx",
        "ABCDEFGHIJKLMNOPQRSTU" /* 21 characters */, "PLAIN\r\nMAIL"}) {
    EXPECT_EQ(refused(parse_auth_command(bad)).code, 501) << bad;
  }
}

TEST(SaslPlain, DecodesUserAndPassword) {
  auto c = std::get<SaslCredentials>(decode_plain(plain("", "bob", "s3cret pass")));
  EXPECT_EQ(c.user, "bob");
  EXPECT_EQ(c.password, "s3cret pass");
  // An authzid equal to the authcid is no proxy: accepted.
  c = std::get<SaslCredentials>(decode_plain(plain("bob@example.com", "bob@example.com", "p")));
  EXPECT_EQ(c.user, "bob@example.com");
  // UTF-8 user names and any password octets but NUL.
  c = std::get<SaslCredentials>(decode_plain(plain("", "jörg", "\x01\xff\x7f:\r\n")));
  EXPECT_EQ(c.user, "jörg");
  EXPECT_EQ(c.password, "\x01\xff\x7f:\r\n");
  // Fields of exactly 255 octets.
  const std::string u(255, 'u'), p(255, 'p');
  c = std::get<SaslCredentials>(decode_plain(plain(u, u, p)));
  EXPECT_EQ(c.user, u);
  EXPECT_EQ(c.password, p);
}

TEST(SaslPlain, RefusesHostileResponses) {
  const std::string pw = "hunter2";
  struct Case {
    std::string response;
    int code;
    const char* enhanced;
  };
  const Case cases[] = {
      {"*", 501, "5.7.0"},                                  // cancelled
      {"", 501, "5.5.2"},                                   // empty response
      {"AGJvYgBzZWNyZXQ", 501, "5.5.2"},                    // missing padding
      {"AGJvYgBz ZWNyZXQ=", 501, "5.5.2"},                  // whitespace
      {"AGJvYgBzZWNyZXQ=\r\n", 501, "5.5.2"},               // line break
      {"!!!!", 501, "5.5.2"},                               // not base64
      {b64("bob"), 501, "5.5.2"},                           // no NUL
      {b64(std::string("bob\0", 4) + pw), 501, "5.5.2"},    // one NUL
      {b64(std::string("\0\0", 2) + pw), 501, "5.5.2"},     // empty user
      {b64(std::string("\0bob\0", 5)), 501, "5.5.2"},       // empty password
      {b64(std::string("\0bob\0pw\0x", 9)), 501, "5.5.2"},  // NUL inside the password
      {b64(std::string("\0\0\0", 3)), 501, "5.5.2"},
      {plain("", std::string(256, 'u'), pw), 501, "5.5.2"},  // over-long user
      {plain("", "bob", std::string(256, 'p')), 501, "5.5.2"},
      {plain(std::string(256, 'z'), "bob", pw), 501, "5.5.2"},
      {plain("", "bob\r\nMAIL FROM:<x>", pw), 501, "5.5.2"},  // control characters
      {plain("", "bob\x7f", pw), 501, "5.5.2"},
      {plain("", "bo\xc3", pw), 501, "5.5.2"},    // broken UTF-8
      {plain("admin", "bob", pw), 535, "5.7.8"},  // proxy authorization
      {std::string(4096, 'A'), 501, "5.5.2"},     // huge
  };
  for (const auto& c : cases) {
    const auto r = refused(decode_plain(c.response));
    EXPECT_EQ(r.code, c.code) << c.response;
    EXPECT_EQ(r.enhanced, c.enhanced) << c.response;
    EXPECT_EQ(r.text.find(pw), std::string::npos);
    EXPECT_EQ(r.text.find("bob"), std::string::npos);  // replies never quote the client
  }
}

TEST(SaslLogin, ChallengesAndResponses) {
  EXPECT_EQ(text::base64_decode(kLoginUserChallenge), "Username:");
  EXPECT_EQ(text::base64_decode(kLoginPasswordChallenge), "Password:");
  EXPECT_EQ(std::get<std::string>(decode_login_user(b64("alice@example.com"))),
            "alice@example.com");
  EXPECT_EQ(std::get<std::string>(decode_login_password(b64("p w\t\xff"))), "p w\t\xff");

  EXPECT_EQ(refused(decode_login_user("*")).enhanced, "5.7.0");
  EXPECT_EQ(refused(decode_login_password("*")).enhanced, "5.7.0");
  for (const std::string& bad :
       {std::string(""), std::string("YWxpY2U"), std::string("a b="), b64(std::string(256, 'x')),
        b64("al\nice"), b64(std::string("al\0ice", 6))}) {
    EXPECT_EQ(refused(decode_login_user(bad)).code, 501) << bad;
  }
  for (const std::string& bad : {std::string(""), b64(std::string(256, 'x')),
                                 b64(std::string("pa\0ss", 5)), std::string("cGFzcw")}) {
    EXPECT_EQ(refused(decode_login_password(bad)).code, 501) << bad;
  }
}

TEST(SaslClient, EncodesPlainAndLogin) {
  EXPECT_EQ(encode_plain("bob", "secret"), plain("", "bob", "secret"));
  EXPECT_EQ(encode_plain("bob", "secret"), "AGJvYgBzZWNyZXQ=");
  // What the client encodes, the server side decodes back.
  const auto round = std::get<SaslCredentials>(decode_plain(*encode_plain("u@x.test", "p:ä")));
  EXPECT_EQ(round.user, "u@x.test");
  EXPECT_EQ(round.password, "p:ä");
  EXPECT_EQ(encode_login_field("bob"), "Ym9i");
  EXPECT_FALSE(encode_plain("", "x"));
  EXPECT_FALSE(encode_plain("x", ""));
  EXPECT_FALSE(encode_plain(std::string("a\0b", 3), "x"));
  EXPECT_FALSE(encode_plain("x", std::string(256, 'p')));
  EXPECT_FALSE(encode_login_field(""));
  EXPECT_TRUE(sasl_field_ok(std::string(255, 'x')));
  EXPECT_FALSE(sasl_field_ok(std::string(256, 'x')));
}

TEST(SaslClient, PrefersPlainThenLogin) {
  EXPECT_EQ(pick_client_mechanism({"CRAM-MD5", "LOGIN", "PLAIN"}), "PLAIN");
  EXPECT_EQ(pick_client_mechanism({"LOGIN"}), "LOGIN");
  EXPECT_EQ(pick_client_mechanism({"CRAM-MD5", "XOAUTH2"}), "");
  EXPECT_EQ(pick_client_mechanism({}), "");
}

}  // namespace
}  // namespace mailgate::smtp
