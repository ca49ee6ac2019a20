// Unit tests for SMTP AUTH in the delivery client (SmtpClient::set_auth)
// against the in-process fake server: PLAIN with an initial response, LOGIN
// when only LOGIN is offered, every failure a 4xx from open() (refused
// credentials 454 4.7.8 with the server's reply, AUTH not offered 454 4.7.8,
// no TLS without `plaintext` 454 4.7.11 with nothing sent), and the password
// or its base64 never in a reply even when the server echoes it.
#include <gtest/gtest.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "delivery/smtp_client.hpp"
#include "fake_smtp_server.hpp"

namespace mailgate::delivery {
namespace {

using namespace std::chrono_literals;
using testing::FakeSmtpServer;

struct Attempt {
  smtp::Reply opened;
  bool authenticated = false;
  std::vector<smtp::Reply> sent;  // the recipient replies of one transaction, when opened
};

// Opens a client to `server` with `auth` (TLS disabled: the fake speaks
// none) and, when that works, sends one message.
Attempt attempt(FakeSmtpServer& server, std::shared_ptr<const spool::RouteAuth> auth) {
  asio::io_context ctx;
  Attempt out;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        SmtpClient client(ctx.get_executor(), "gw.test", ClientTimeouts{}, TlsMode::Disabled);
        client.set_auth(auth);
        out.opened = co_await client.open(
            asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()),
            "relay.test");
        out.authenticated = client.authenticated();
        if (out.opened.code / 100 == 2) {
          spool::Envelope env;
          env.sender = "s@origin.test";
          env.recipients.push_back({"r@partner.test", 0, ""});
          env.size = 20;
          // Named, not temporaries in the co_await (g++ 12 mishandles those).
          const std::vector<std::uint32_t> rcpts{0};
          const std::string body = "Subject: x\r\n\r\nbody\r\n";
          auto result = co_await client.send(env, rcpts, body);
          out.sent = result.recipients;
        }
        co_await client.quit();
      },
      asio::detached);
  ctx.run_for(30s);
  return out;
}

std::shared_ptr<const spool::RouteAuth> creds(std::string user, std::string password,
                                              bool plaintext = true) {
  return std::make_shared<const spool::RouteAuth>(
      spool::RouteAuth{std::move(user), std::move(password), plaintext});
}

bool has_command(FakeSmtpServer& s, const std::string& prefix) {
  for (const auto& c : s.commands())
    if (c.rfind(prefix, 0) == 0) return true;
  return false;
}

TEST(SmtpClientAuth, PlainWithAnInitialResponse) {
  FakeSmtpServer server({"PIPELINING", "AUTH LOGIN PLAIN"});
  server.accept_login("app", "pw");
  const auto a = attempt(server, creds("app", "pw"));
  EXPECT_EQ(a.opened.code, 250);
  EXPECT_TRUE(a.authenticated);
  ASSERT_EQ(a.sent.size(), 1u);
  EXPECT_EQ(a.sent[0].code, 250);
  ASSERT_TRUE(server.wait_transactions(1, 10s));
  EXPECT_EQ(server.transactions()[0].auth, "app");
  EXPECT_TRUE(has_command(server, "AUTH PLAIN AGFwcABwdw=="));  // \0app\0pw
  EXPECT_FALSE(has_command(server, "AUTH LOGIN"));
}

TEST(SmtpClientAuth, LoginWhenOnlyLoginIsOffered) {
  FakeSmtpServer server({"AUTH=LOGIN"});
  server.accept_login("app", "pw");
  const auto a = attempt(server, creds("app", "pw"));
  EXPECT_EQ(a.opened.code, 250);
  EXPECT_TRUE(a.authenticated);
  ASSERT_TRUE(server.wait_transactions(1, 10s));
  EXPECT_EQ(server.transactions()[0].auth, "app");
  const auto cmds = server.commands();
  const auto login = std::find(cmds.begin(), cmds.end(), "AUTH LOGIN");
  ASSERT_NE(login, cmds.end());
  ASSERT_GE(cmds.end() - login, 3);
  EXPECT_EQ(login[1], "YXBw");  // app
  EXPECT_EQ(login[2], "cHc=");  // pw
}

TEST(SmtpClientAuth, RefusedCredentialsAreATemporaryFailureWithoutThePassword) {
  FakeSmtpServer server({"AUTH PLAIN"});
  server.accept_login("app", "right", "535 5.7.8 no such login: {}");  // echoes the client
  const auto a = attempt(server, creds("app", "wrong-pw"));
  EXPECT_EQ(a.opened.code, 454);
  EXPECT_EQ(a.opened.enhanced, "4.7.8");
  EXPECT_FALSE(a.authenticated);
  EXPECT_TRUE(a.sent.empty());
  EXPECT_NE(a.opened.text.find("smarthost authentication failed: relay.test [127.0.0.1] "
                               "answered 535 5.7.8 no such login: ***"),
            std::string::npos)
      << a.opened.text;
  EXPECT_EQ(a.opened.text.find("wrong-pw"), std::string::npos);
  EXPECT_TRUE(server.transactions().empty());
  EXPECT_TRUE(has_command(server, "QUIT"));  // a polite end, the session was fine
}

TEST(SmtpClientAuth, LoginEchoIsMaskedToo) {
  FakeSmtpServer server({"AUTH LOGIN"});
  server.accept_login("app", "right", "535 5.7.8 bad password {}");
  const auto a = attempt(server, creds("app", "wrong-pw"));
  EXPECT_EQ(a.opened.code, 454);
  EXPECT_NE(a.opened.text.find("bad password ***"), std::string::npos) << a.opened.text;
  EXPECT_EQ(a.opened.text.find("d3JvbmctcHc="), std::string::npos);  // base64("wrong-pw")
}

TEST(SmtpClientAuth, AuthNotOfferedDefers) {
  FakeSmtpServer plain_server({"8BITMIME"});
  auto a = attempt(plain_server, creds("app", "pw"));
  EXPECT_EQ(a.opened.code, 454);
  EXPECT_EQ(a.opened.enhanced, "4.7.8");
  EXPECT_NE(a.opened.text.find("offers no AUTH"), std::string::npos) << a.opened.text;
  EXPECT_FALSE(has_command(plain_server, "AUTH"));
  EXPECT_TRUE(plain_server.transactions().empty());

  FakeSmtpServer cram({"AUTH CRAM-MD5 XOAUTH2"});
  a = attempt(cram, creds("app", "pw"));
  EXPECT_EQ(a.opened.code, 454);
  EXPECT_NE(a.opened.text.find("no AUTH PLAIN or LOGIN"), std::string::npos) << a.opened.text;
  EXPECT_FALSE(has_command(cram, "AUTH"));
}

TEST(SmtpClientAuth, NoCredentialsWithoutTlsUnlessPlaintextIsAllowed) {
  FakeSmtpServer server({"AUTH PLAIN LOGIN"});
  server.accept_login("app", "pw");
  const auto a = attempt(server, creds("app", "pw", /*plaintext=*/false));
  EXPECT_EQ(a.opened.code, 454);
  EXPECT_EQ(a.opened.enhanced, "4.7.11");
  EXPECT_NE(a.opened.text.find("no TLS with relay.test [127.0.0.1]"), std::string::npos)
      << a.opened.text;
  EXPECT_FALSE(has_command(server, "AUTH"));  // nothing was sent in the clear
  EXPECT_TRUE(server.transactions().empty());
}

TEST(SmtpClientAuth, WithoutCredentialsNothingChanges) {
  FakeSmtpServer server({"AUTH PLAIN"});
  const auto a = attempt(server, nullptr);
  EXPECT_EQ(a.opened.code, 250);
  EXPECT_FALSE(a.authenticated);
  ASSERT_TRUE(server.wait_transactions(1, 10s));
  EXPECT_EQ(server.transactions()[0].auth, "");
  EXPECT_FALSE(has_command(server, "AUTH"));
}

}  // namespace
}  // namespace mailgate::delivery
