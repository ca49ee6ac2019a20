// dns.servers syntax and option validation.
#include "dns/resolver_options.hpp"

#include <gtest/gtest.h>

namespace mailgate::dns {
namespace {

TEST(ParseServer, AcceptedForms) {
  auto s = parse_server("127.0.0.1");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ip.to_string(), "127.0.0.1");
  EXPECT_EQ(s->port, 53);
  s = parse_server("127.0.0.1:5353");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->port, 5353);
  s = parse_server("[::1]:5300");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->ip.to_string(), "::1");
  EXPECT_EQ(s->port, 5300);
  s = parse_server("[2001:db8::53]");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->port, 53);
  s = parse_server("2001:db8::53");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->port, 53);
}

TEST(ParseServer, RejectedForms) {
  for (const char* bad :
       {"", "dns.example", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:53x", "[::1",
        "[::1]x", "[127.0.0.1]:53", "::1:53:", "fe80::1%eth0", "1.2.3"}) {
    EXPECT_FALSE(parse_server(bad)) << bad;
  }
}

TEST(ValidateOptions, ReportsTheProblem) {
  ResolverOptions o;
  EXPECT_EQ(validate_options(o), "");
  o.servers = {"127.0.0.1:5353", "bogus"};
  EXPECT_NE(validate_options(o).find("bogus"), std::string::npos);
  o = {};
  o.timeout = std::chrono::milliseconds(0);
  EXPECT_NE(validate_options(o), "");
  o = {};
  o.tries = 0;
  EXPECT_NE(validate_options(o), "");
  o = {};
  o.min_ttl = std::chrono::seconds(10);
  o.max_ttl = std::chrono::seconds(5);
  EXPECT_NE(validate_options(o), "");
}

}  // namespace
}  // namespace mailgate::dns
