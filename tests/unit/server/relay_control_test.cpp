// Relay control table: who may send to which recipient (DESIGN §6–§7).
#include "server/relay_control.hpp"

#include "smtp/command.hpp"

#include <gtest/gtest.h>

namespace mailgate::server {
namespace {

smtp::Path path(const char* text) {
  auto p = smtp::parse_path(text, {});
  return std::get<smtp::Path>(p);
}

struct Case {
  const char* rcpt;
  bool may_relay;
  bool allowed;
  int code;
  const char* enhanced;
};

TEST(RelayControl, Table) {
  const std::vector<std::string> domains = {"example.com"};
  const Case cases[] = {
      {"<a@example.com>", false, true, 0, ""},
      {"<a@EXAMPLE.Com>", false, true, 0, ""},
      {"<a@other.org>", false, false, 550, "5.7.1"},
      {"<a@sub.example.com>", false, false, 550, "5.7.1"},
      {"<a%other.org@example.com>", false, false, 550, "5.7.1"},
      {"<a!b@example.com>", false, false, 550, "5.7.1"},
      {"<\"a@other.org\"@example.com>", false, false, 550, "5.7.1"},
      {"<@hop.example:a@example.com>", false, false, 550, "5.7.1"},
      {"<a@[127.0.0.1]>", false, false, 550, "5.7.1"},
      // A relay client may send anywhere; routing syntax is kept as a literal local part.
      {"<a@other.org>", true, true, 0, ""},
      {"<a%b@other.org>", true, true, 0, ""},
      {"<@hop.example:a@other.org>", true, true, 0, ""},
  };
  for (const auto& c : cases) {
    auto d = check_relay(path(c.rcpt), c.may_relay, domains);
    EXPECT_EQ(d.allowed, c.allowed) << c.rcpt << " relay=" << c.may_relay;
    if (!c.allowed) {
      EXPECT_EQ(d.reply.code, c.code) << c.rcpt;
      EXPECT_EQ(d.reply.enhanced, c.enhanced) << c.rcpt;
    }
  }
}

TEST(RelayControl, PostmasterWithoutDomainIsRefusedClearly) {
  auto p = smtp::parse_rcpt_to("TO:<postmaster>", false);
  ASSERT_TRUE(std::holds_alternative<smtp::RcptTo>(p));
  auto d = check_relay(std::get<smtp::RcptTo>(p).path, true, {});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reply.code, 550);
}

}  // namespace
}  // namespace mailgate::server
