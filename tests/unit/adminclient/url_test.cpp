// Tests of adminclient/url: --api parsing (schemes, IPv4/IPv6 literals, names,
// ports, base paths, the rejected forms). Percent-encoding: text/ascii_test.cpp.
#include "adminclient/url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::adminclient {
namespace {

std::string parsed(const char* text) {
  std::string error;
  auto url = parse_url(text, &error);
  return url ? url->str() : "error: " + error;
}

TEST(Url, AcceptsHttpUrls) {
  EXPECT_EQ(parsed("http://127.0.0.1:8025"), "http://127.0.0.1:8025");
  EXPECT_EQ(parsed("http://127.0.0.1:8025/"), "http://127.0.0.1:8025");
  EXPECT_EQ(parsed("HTTP://Gw.Example:8025"), "http://Gw.Example:8025");
  EXPECT_EQ(parsed("http://localhost"), "http://localhost");
  EXPECT_EQ(parsed("http://localhost:80"), "http://localhost");
  EXPECT_EQ(parsed("http://[::1]:8025"), "http://[::1]:8025");
  EXPECT_EQ(parsed("http://[2001:db8::1]"), "http://[2001:db8::1]");
  EXPECT_EQ(parsed("http://gw:8025/mailgate/"), "http://gw:8025/mailgate");
  EXPECT_EQ(parsed("http://gw:65535"), "http://gw:65535");
}

TEST(Url, AcceptsHttpsUrls) {
  EXPECT_EQ(parsed("https://127.0.0.1:8025"), "https://127.0.0.1:8025");
  EXPECT_EQ(parsed("HTTPS://gw:443/x/"), "https://gw/x");
  EXPECT_EQ(parsed("https://gw:80"), "https://gw:80");
  auto u = parse_url("https://[::1]");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->authority(), "[::1]");
  EXPECT_FALSE(parse_url("http://gw")->tls);
  EXPECT_FALSE(parse_url("gw:8025")->tls);
}

TEST(Url, SchemeMayBeLeftOut) {
  // http.listen's own syntax works as --api.
  EXPECT_EQ(parsed("127.0.0.1:8025"), "http://127.0.0.1:8025");
  EXPECT_EQ(parsed("[::1]:8025"), "http://[::1]:8025");
  EXPECT_EQ(parsed("localhost"), "http://localhost");
}

TEST(Url, Fields) {
  auto v6 = parse_url("http://[::1]:8025/x");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8025);
  EXPECT_EQ(v6->base_path, "/x");
  EXPECT_TRUE(v6->ipv6_literal());
  EXPECT_EQ(v6->authority(), "[::1]:8025");
  auto v4 = parse_url("http://10.0.0.1");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "10.0.0.1");
  EXPECT_EQ(v4->port, 80);
  EXPECT_EQ(v4->base_path, "");
  EXPECT_FALSE(v4->ipv6_literal());
  EXPECT_EQ(v4->authority(), "10.0.0.1");
  auto zone = parse_url("http://[fe80::1%25eth0]:8025");
  ASSERT_TRUE(zone);
  EXPECT_EQ(zone->host, "fe80::1%eth0");
}

TEST(Url, RejectsWithReason) {
  EXPECT_EQ(parsed("ftp://gw"), "error: only http:// and https:// URLs are supported");
  EXPECT_EQ(parsed("httpss://gw"), "error: only http:// and https:// URLs are supported");
  EXPECT_EQ(parsed("http://"), "error: the URL has no host");
  EXPECT_EQ(parsed("http://:8025"), "error: the URL has no host");
  EXPECT_EQ(parsed("http://gw:0"), "error: bad port '0'");
  EXPECT_EQ(parsed("http://gw:65536"), "error: bad port '65536'");
  EXPECT_EQ(parsed("http://gw:"), "error: bad port ''");
  EXPECT_EQ(parsed("http://gw:80a"), "error: bad port '80a'");
  EXPECT_EQ(parsed("http://gw:-1"), "error: bad port '-1'");
  EXPECT_EQ(parsed("http://::1:8025"),
            "error: an IPv6 address must be in brackets: http://[::1]:8025");
  EXPECT_EQ(parsed("http://[::1"), "error: unterminated '[' in the host");
  EXPECT_EQ(parsed("http://[nope]:80"), "error: bad IPv6 address 'nope'");
  EXPECT_EQ(parsed("http://[::1]x"), "error: unexpected text after ']'");
  EXPECT_EQ(parsed("http://user:pw@gw"),
            "error: the URL must not have user info (pass --token instead)");
  EXPECT_EQ(parsed("http://gw/?a=b"), "error: the URL must not have a query or fragment");
  EXPECT_EQ(parsed("http://gw#x"), "error: the URL must not have a query or fragment");
  EXPECT_EQ(parsed("http://g w"), "error: bad host 'g w'");
  EXPECT_EQ(parsed("http://gw/a b"),
            "error: the URL path must be printable ASCII without spaces (percent-encode the rest)");
  EXPECT_FALSE(parse_url("http://gw/\r\nX: y"));
}

}  // namespace
}  // namespace mailgate::adminclient
