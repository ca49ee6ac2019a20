// Unit tests for smtp/address: RFC 5321 §4.1.2 paths and mailboxes, RFC 6531
// UTF-8, length limits, source routes, address literals, injection attempts.
#include "smtp/address.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailgate::smtp {
namespace {

// Concatenation by appending (avoids a GCC 12 -Wrestrict false positive on
// "literal" + std::string).
template <class... T>
std::string cat(const T&... parts) {
  std::string s;
  (s.append(std::string_view(parts)), ...);
  return s;
}

using namespace std::string_literals;

struct PathOk {
  std::string in;
  std::string local;
  std::string domain;
  bool route = false;
  bool utf8 = false;
};

class PathValid : public ::testing::TestWithParam<PathOk> {};

TEST_P(PathValid, Parses) {
  const auto& c = GetParam();
  auto r = parse_path(c.in, {.allow_null = false, .smtputf8 = c.utf8});
  ASSERT_TRUE(std::holds_alternative<Path>(r))
      << c.in << " -> " << std::get<Reply>(r).code << " " << std::get<Reply>(r).text;
  const Path& p = std::get<Path>(r);
  EXPECT_EQ(p.address.local, c.local);
  EXPECT_EQ(p.address.domain, c.domain);
  EXPECT_EQ(p.had_source_route, c.route);
}

const std::string k64(64, 'a');
const std::string k63label(63, 'b');

INSTANTIATE_TEST_SUITE_P(
    Rfc, PathValid,
    ::testing::Values(
        PathOk{"<user@example.com>", "user", "example.com"},
        PathOk{"<User.Name@Example.COM>", "User.Name", "Example.COM"}, PathOk{"<a@b>", "a", "b"},
        PathOk{"<a@b.c>", "a", "b.c"},
        PathOk{"<x@1.2.3.4>", "x", "1.2.3.4"},  // numeric labels are sub-domains
        PathOk{"<first.last@iana.org>", "first.last", "iana.org"},
        PathOk{"<user+tag@example.com>", "user+tag", "example.com"},
        PathOk{"<!#$%&'*+-/=?^_`{|}~@example.com>", "!#$%&'*+-/=?^_`{|}~", "example.com"},
        PathOk{"<customer/department=shipping@example.com>", "customer/department=shipping",
               "example.com"},
        PathOk{"<$A12345@example.com>", "$A12345", "example.com"},
        PathOk{"<!def!xyz%abc@example.com>", "!def!xyz%abc", "example.com"},
        PathOk{"<_somename@example.com>", "_somename", "example.com"},
        PathOk{"<a@xn--bcher-kva.example>", "a", "xn--bcher-kva.example"},
        PathOk{"<a@a-b.c-d.e>", "a", "a-b.c-d.e"}, PathOk{"<a@a--b.c>", "a", "a--b.c"},
        PathOk{"<\"john doe\"@example.com>", "\"john doe\"", "example.com"},
        PathOk{"<\"a@b\"@example.com>", "\"a@b\"", "example.com"},
        PathOk{"<\"Abc\\@def\"@example.com>", "\"Abc\\@def\"", "example.com"},
        PathOk{"<\"Fred\\ Bloggs\"@example.com>", "\"Fred\\ Bloggs\"", "example.com"},
        PathOk{"<\"Joe.\\\\Blow\"@example.com>", "\"Joe.\\\\Blow\"", "example.com"},
        PathOk{"<\"a>b\"@example.com>", "\"a>b\"", "example.com"},
        PathOk{"<\"\"@example.com>", "\"\"", "example.com"},
        PathOk{"<\"..\"@example.com>", "\"..\"", "example.com"},
        PathOk{"<\"a\\\"b\"@example.com>", "\"a\\\"b\"", "example.com"},
        PathOk{"<user@[192.0.2.1]>", "user", "[192.0.2.1]"},
        PathOk{"<user@[0.0.0.0]>", "user", "[0.0.0.0]"},
        PathOk{"<user@[255.255.255.255]>", "user", "[255.255.255.255]"},
        PathOk{"<user@[001.02.3.4]>", "user", "[001.02.3.4]"},
        PathOk{"<user@[IPv6:2001:db8::1]>", "user", "[IPv6:2001:db8::1]"},
        PathOk{"<user@[ipv6:2001:DB8::1]>", "user", "[ipv6:2001:DB8::1]"},
        PathOk{"<user@[IPv6:::1]>", "user", "[IPv6:::1]"},
        PathOk{"<user@[IPv6:1:2:3:4:5:6:7:8]>", "user", "[IPv6:1:2:3:4:5:6:7:8]"},
        PathOk{"<user@[IPv6:::ffff:192.0.2.1]>", "user", "[IPv6:::ffff:192.0.2.1]"},
        PathOk{"<user@[x-tag:abc]>", "user", "[x-tag:abc]"},  // General-address-literal
        PathOk{"<@a.example:user@c.example>", "user", "c.example", true},
        PathOk{"<@a.example,@b.example:user@c.example>", "user", "c.example", true},
        PathOk{"<" + k64 + "@example.com>", k64, "example.com"},
        PathOk{"<a@" + k63label + ".com>", "a", k63label + ".com"},
        PathOk{"<用户@例子.广告>", "用户", "例子.广告", false, true},
        PathOk{"<θσερ@εχαμπλε.ψομ>", "θσερ", "εχαμπλε.ψομ", false, true},
        PathOk{"<\"ü ü\"@example.com>", "\"ü ü\"", "example.com", false, true},
        PathOk{"<user@bücher.example>", "user", "bücher.example", false, true},
        PathOk{"<@ü.example:user@example.com>", "user", "example.com", true, true},
        PathOk{"<😀@example.com>", "😀", "example.com", false, true}));

struct PathBad {
  std::string in;
  int code;
  std::string enhanced;
  bool utf8 = false;
};

class PathInvalid : public ::testing::TestWithParam<PathBad> {};

TEST_P(PathInvalid, Rejected) {
  const auto& c = GetParam();
  auto r = parse_path(c.in, {.allow_null = false, .smtputf8 = c.utf8});
  ASSERT_TRUE(std::holds_alternative<Reply>(r)) << c.in;
  const Reply& e = std::get<Reply>(r);
  EXPECT_EQ(e.code, c.code) << c.in << ": " << e.text;
  EXPECT_EQ(e.enhanced, c.enhanced) << c.in << ": " << e.text;
  EXPECT_TRUE(e.permanent());
  EXPECT_FALSE(e.text.empty());
  EXPECT_EQ(e.text.find_first_of("\r\n"s + '\0'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Syntax, PathInvalid,
    ::testing::Values(
        // brackets
        PathBad{"", 501, "5.5.4"}, PathBad{"<", 501, "5.5.4"}, PathBad{">", 501, "5.5.4"},
        PathBad{"user@example.com", 501, "5.5.4"}, PathBad{"<user@example.com", 501, "5.5.4"},
        PathBad{"user@example.com>", 501, "5.5.4"}, PathBad{"<user@example.com> ", 501, "5.5.4"},
        PathBad{" <user@example.com>", 501, "5.5.4"}, PathBad{"<user@example.com>>", 553, "5.1.3"},
        PathBad{"<<user@example.com>", 553, "5.1.3"},
        // null / missing parts
        PathBad{"<>", 553, "5.1.3"}, PathBad{"<user>", 553, "5.1.3"},
        PathBad{"<postmaster>", 553, "5.1.3"},  // only with allow_postmaster
        PathBad{"<user@>", 553, "5.1.3"}, PathBad{"<@example.com>", 553, "5.1.3"},
        PathBad{"<@>", 553, "5.1.3"}, PathBad{"<user@@example.com>", 553, "5.1.3"},
        PathBad{"<a@b@example.com>", 553, "5.1.3"},
        // local part dots and characters
        PathBad{"<.user@example.com>", 553, "5.1.3"}, PathBad{"<user.@example.com>", 553, "5.1.3"},
        PathBad{"<us..er@example.com>", 553, "5.1.3"}, PathBad{"<.@example.com>", 553, "5.1.3"},
        PathBad{"<john doe@example.com>", 553, "5.1.3"},
        PathBad{"<a(b)@example.com>", 553, "5.1.3"}, PathBad{"<a,b@example.com>", 553, "5.1.3"},
        PathBad{"<a;b@example.com>", 553, "5.1.3"}, PathBad{"<a:b@example.com>", 553, "5.1.3"},
        PathBad{"<a[b@example.com>", 553, "5.1.3"}, PathBad{"<a\\b@example.com>", 553, "5.1.3"},
        PathBad{"<a\"b\"@example.com>", 553, "5.1.3"}, PathBad{"<a<b@example.com>", 553, "5.1.3"},
        // quoted strings
        PathBad{"<\"abc@example.com>", 553, "5.1.3"},
        PathBad{"<\"abc\"def@example.com>", 553, "5.1.3"},
        PathBad{"<\"abc\".def@example.com>", 553, "5.1.3"}, PathBad{"<\"abc\">", 553, "5.1.3"},
        PathBad{"<\"abc\\\">", 553, "5.1.3"}, PathBad{"<\"a\\\x01\"@example.com>", 553, "5.1.3"},
        // domains
        PathBad{"<a@-example.com>", 553, "5.1.3"}, PathBad{"<a@example-.com>", 553, "5.1.3"},
        PathBad{"<a@example.com.>", 553, "5.1.3"}, PathBad{"<a@.example.com>", 553, "5.1.3"},
        PathBad{"<a@example..com>", 553, "5.1.3"}, PathBad{"<a@exa_mple.com>", 553, "5.1.3"},
        PathBad{"<a@exa mple.com>", 553, "5.1.3"}, PathBad{"<a@example.com:25>", 553, "5.1.3"},
        PathBad{cat("<a@", std::string(64, 'b'), ".com>"), 553, "5.1.3"},
        PathBad{"<a@b/c>", 553, "5.1.3"},
        // address literals
        PathBad{"<a@[]>", 553, "5.1.3"}, PathBad{"<a@[1.2.3]>", 553, "5.1.3"},
        PathBad{"<a@[1.2.3.4.5]>", 553, "5.1.3"}, PathBad{"<a@[256.1.1.1]>", 553, "5.1.3"},
        PathBad{"<a@[1.2.3.4 ]>", 553, "5.1.3"}, PathBad{"<a@[1..3.4]>", 553, "5.1.3"},
        PathBad{"<a@[1.2.3.4.]>", 553, "5.1.3"}, PathBad{"<a@[0001.2.3.4]>", 553, "5.1.3"},
        PathBad{"<a@[-1.2.3.4]>", 553, "5.1.3"}, PathBad{"<a@[1.2.3.4]x>", 553, "5.1.3"},
        PathBad{"<a@[1.2.3.4>", 553, "5.1.3"}, PathBad{"<a@1.2.3.4]>", 553, "5.1.3"},
        PathBad{"<a@[IPv6:]>", 553, "5.1.3"}, PathBad{"<a@[IPv6:1:2:3]>", 553, "5.1.3"},
        PathBad{"<a@[IPv6:gggg::1]>", 553, "5.1.3"}, PathBad{"<a@[IPv6:1::2::3]>", 553, "5.1.3"},
        PathBad{"<a@[IPv6:fe80::1%eth0]>", 553, "5.1.3"},
        PathBad{"<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 553, "5.1.3"}, PathBad{"<a@[tag:]>", 553, "5.1.3"},
        PathBad{"<a@[:abc]>", 553, "5.1.3"}, PathBad{"<a@[ta_g:abc]>", 553, "5.1.3"},
        PathBad{"<a@[tag:a[b]>", 553, "5.1.3"}, PathBad{"<a@[tag:a\\b]>", 553, "5.1.3"},
        PathBad{"<a@[tag-:ab]>", 553, "5.1.3"},
        // source routes
        PathBad{"<@:user@example.com>", 553, "5.1.3"},
        PathBad{"<@a.example user@example.com>", 553, "5.1.3"},
        PathBad{"<@a.example,user@example.com>", 553, "5.1.3"},
        PathBad{"<@a.example,b.example:user@example.com>", 553, "5.1.3"},
        PathBad{"<@-a.example:user@example.com>", 553, "5.1.3"},
        PathBad{"<@[1.2.3.4]:user@example.com>", 553, "5.1.3"},
        PathBad{"<@a.example:>", 553, "5.1.3"}, PathBad{"<@a.example:postmaster>", 553, "5.1.3"},
        // injection / control characters
        PathBad{"<user@example.com\r\nRCPT TO:<x@y>>", 553, "5.1.3"},
        PathBad{"<user\r@example.com>", 553, "5.1.3"},
        PathBad{"<user\n@example.com>", 553, "5.1.3"},
        PathBad{"<user@example.com\n>", 553, "5.1.3"},
        PathBad{"<user"s + '\0' + "@example.com>", 553, "5.1.3"},
        PathBad{"<user@exa"s + '\0' + "mple.com>", 553, "5.1.3"},
        PathBad{"<\"us\ter\"@example.com>", 553, "5.1.3"},
        PathBad{"<\"us\x7f\"@example.com>", 553, "5.1.3"},
        PathBad{"<\"a\r\nb\"@example.com>", 553, "5.1.3"},
        PathBad{"<user@example.com\x1b[31m>", 553, "5.1.3"},
        // UTF-8 without SMTPUTF8
        PathBad{"<用户@example.com>", 553, "5.6.7"}, PathBad{"<user@bücher.example>", 553, "5.6.7"},
        PathBad{"<\"ü\"@example.com>", 553, "5.6.7"},
        // invalid UTF-8, with or without SMTPUTF8
        PathBad{"<\xff@example.com>", 553, "5.1.3", true},
        PathBad{"<\xff@example.com>", 553, "5.1.3", false},
        PathBad{"<\xc0\xaf@example.com>", 553, "5.1.3", true},          // overlong '/'
        PathBad{"<\xe0\x80\xaf@example.com>", 553, "5.1.3", true},      // overlong
        PathBad{"<\xed\xa0\x80@example.com>", 553, "5.1.3", true},      // surrogate
        PathBad{"<\xf4\x90\x80\x80@example.com>", 553, "5.1.3", true},  // > U+10FFFF
        PathBad{"<\xc3@example.com>", 553, "5.1.3", true},              // truncated
        PathBad{"<a@\xc3.example>", 553, "5.1.3", true},
        PathBad{"<\x80@example.com>", 553, "5.1.3", true},  // lone continuation
        // UTF-8 where it is never allowed
        PathBad{"<a@[IPv6:ü::1]>", 553, "5.1.3", true},
        PathBad{"<a@ü-.example>", 553, "5.1.3", true}));

TEST(Path, GeneralLiteralLooksLikeBareIpv6) {
  // "[2001:db8::1]" without "IPv6:" is a General-address-literal with tag
  // "2001" and content "db8::1": syntactically valid per RFC 5321 (routing
  // code must only route "[IPv4]" and "[IPv6:...]" literals).
  auto r = parse_path("<a@[2001:db8::1]>", {});
  ASSERT_TRUE(std::holds_alternative<Path>(r));
  EXPECT_EQ(std::get<Path>(r).address.domain, "[2001:db8::1]");
  EXPECT_TRUE(std::get<Path>(r).address.is_address_literal());
}

TEST(Path, NullPath) {
  auto r = parse_path("<>", {.allow_null = true});
  ASSERT_TRUE(std::holds_alternative<Path>(r));
  EXPECT_TRUE(std::get<Path>(r).address.empty());
  EXPECT_EQ(std::get<Path>(r).address.str(), "");
  auto bad = parse_path("<>", {.allow_null = false});
  ASSERT_TRUE(std::holds_alternative<Reply>(bad));
  EXPECT_EQ(std::get<Reply>(bad).code, 553);
}

TEST(Path, SenderErrorsUse517) {
  auto r = parse_path("<a..b@example.com>", {.allow_null = true});
  ASSERT_TRUE(std::holds_alternative<Reply>(r));
  EXPECT_EQ(std::get<Reply>(r).code, 553);
  EXPECT_EQ(std::get<Reply>(r).enhanced, "5.1.7");
  auto u = parse_path("<ü@example.com>", {.allow_null = true});
  ASSERT_TRUE(std::holds_alternative<Reply>(u));
  EXPECT_EQ(std::get<Reply>(u).enhanced, "5.6.7");
}

TEST(Path, Postmaster) {
  for (const char* in : {"<postmaster>", "<Postmaster>", "<POSTMASTER>"}) {
    auto r = parse_path(in, {.allow_postmaster = true});
    ASSERT_TRUE(std::holds_alternative<Path>(r)) << in;
    EXPECT_EQ(std::get<Path>(r).address.local, "postmaster");
    EXPECT_EQ(std::get<Path>(r).address.domain, "");
    EXPECT_EQ(std::get<Path>(r).address.str(), "postmaster");
    EXPECT_FALSE(std::get<Path>(r).address.empty());
  }
  auto withdomain = parse_path("<Postmaster@example.com>", {.allow_postmaster = true});
  ASSERT_TRUE(std::holds_alternative<Path>(withdomain));
  EXPECT_EQ(std::get<Path>(withdomain).address.domain, "example.com");
  EXPECT_TRUE(
      std::holds_alternative<Reply>(parse_path("<postmasterx>", {.allow_postmaster = true})));
}

// ---- length limits --------------------------------------------------------

std::string domain_of_length(std::size_t n) {
  // labels of at most 63 octets separated by dots, exactly n octets in total
  std::string d;
  for (;;) {
    const std::size_t rem = n - d.size();
    if (rem <= 63) {
      d.append(rem, 'd');
      return d;
    }
    d.append(62, 'd');
    d += '.';
  }
}

TEST(PathLimits, LocalPart64) {
  auto ok = parse_path(cat("<", std::string(64, 'a'), "@example.com>"), {});
  EXPECT_TRUE(std::holds_alternative<Path>(ok));
  auto bad = parse_path(cat("<", std::string(65, 'a'), "@example.com>"), {});
  ASSERT_TRUE(std::holds_alternative<Reply>(bad));
  EXPECT_EQ(std::get<Reply>(bad).code, 553);
  EXPECT_EQ(std::get<Reply>(bad).enhanced, "5.1.3");
  EXPECT_NE(std::get<Reply>(bad).text.find("local part too long"), std::string::npos);
  // the quoted form counts as on the wire
  auto q_ok = parse_path(cat("<\"", std::string(62, 'a'), "\"@example.com>"), {});
  EXPECT_TRUE(std::holds_alternative<Path>(q_ok));
  auto q_bad = parse_path(cat("<\"", std::string(63, 'a'), "\"@example.com>"), {});
  EXPECT_TRUE(std::holds_alternative<Reply>(q_bad));
  // UTF-8 counts octets, not characters: 32 x "é" = 64 octets, 33 = 66
  std::string e32, e33;
  for (int i = 0; i < 32; ++i) e32 += "é";
  e33 = e32 + "é";
  EXPECT_TRUE(
      std::holds_alternative<Path>(parse_path("<" + e32 + "@example.com>", {.smtputf8 = true})));
  EXPECT_TRUE(
      std::holds_alternative<Reply>(parse_path("<" + e33 + "@example.com>", {.smtputf8 = true})));
}

TEST(PathLimits, WholePath256) {
  // "<" + local(64) + "@" + domain + ">" : 256 octets is the maximum.
  const std::string local(64, 'a');
  const std::string d_ok = domain_of_length(256 - 2 - 64 - 1);  // 189
  const std::string at_limit = "<" + local + "@" + d_ok + ">";
  ASSERT_EQ(at_limit.size(), 256u);
  auto ok = parse_path(at_limit, {});
  EXPECT_TRUE(std::holds_alternative<Path>(ok)) << std::get<Reply>(ok).text;
  const std::string d_bad = domain_of_length(190);
  const std::string over = "<" + local + "@" + d_bad + ">";
  ASSERT_EQ(over.size(), 257u);
  auto bad = parse_path(over, {});
  ASSERT_TRUE(std::holds_alternative<Reply>(bad));
  EXPECT_EQ(std::get<Reply>(bad).code, 553);
  EXPECT_NE(std::get<Reply>(bad).text.find("too long"), std::string::npos);
  // a long domain with a short local part
  const std::string d252 = domain_of_length(252);
  EXPECT_TRUE(std::holds_alternative<Path>(parse_path("<a@" + d252 + ">", {})));
  const std::string d253 = domain_of_length(253);
  EXPECT_TRUE(std::holds_alternative<Reply>(parse_path("<a@" + d253 + ">", {})));
}

TEST(PathLimits, Domain255) {
  const std::string d256 = domain_of_length(256);
  auto bad = parse_path("<a@" + d256 + ">", {});
  ASSERT_TRUE(std::holds_alternative<Reply>(bad));
  EXPECT_NE(std::get<Reply>(bad).text.find("domain too long"), std::string::npos);
}

TEST(PathLimits, SourceRouteNotCountedButValidated) {
  const std::string local(64, 'a');
  const std::string d = domain_of_length(189);
  auto r = parse_path("<@relay.example:" + local + "@" + d + ">", {});
  ASSERT_TRUE(std::holds_alternative<Path>(r));
  EXPECT_TRUE(std::get<Path>(r).had_source_route);
  EXPECT_EQ(std::get<Path>(r).address.str(), local + "@" + d);
}

TEST(PathLimits, LabelLength) {
  EXPECT_TRUE(std::holds_alternative<Path>(parse_path(cat("<a@", std::string(63, 'x'), ">"), {})));
  EXPECT_TRUE(std::holds_alternative<Reply>(parse_path(cat("<a@", std::string(64, 'x'), ">"), {})));
}

TEST(PathLimits, HugeInputsAreLinear) {
  // Must return quickly with an error, not crash.
  const std::string big(1 << 20, 'a');
  EXPECT_TRUE(std::holds_alternative<Reply>(parse_path("<" + big + "@example.com>", {})));
  EXPECT_TRUE(std::holds_alternative<Reply>(parse_path("<a@" + big + ">", {})));
  std::string route;
  for (int i = 0; i < 10000; ++i) route += "@r.example,";
  route.back() = ':';
  EXPECT_TRUE(std::holds_alternative<Path>(parse_path("<" + route + "a@b.example>", {})));
  EXPECT_TRUE(
      std::holds_alternative<Reply>(parse_path(cat("<\"", std::string(100000, '\\'), "@x>"), {})));
}

// ---- Address methods ------------------------------------------------------

TEST(Address, Str) {
  EXPECT_EQ((Address{"a", "b.example"}).str(), "a@b.example");
  EXPECT_EQ((Address{"\"a b\"", "b.example"}).str(), "\"a b\"@b.example");
  EXPECT_EQ((Address{"postmaster", ""}).str(), "postmaster");
  EXPECT_EQ((Address{}).str(), "");
  EXPECT_TRUE((Address{}).empty());
}

TEST(Address, IsAddressLiteral) {
  EXPECT_TRUE((Address{"a", "[1.2.3.4]"}).is_address_literal());
  EXPECT_FALSE((Address{"a", "example.com"}).is_address_literal());
  EXPECT_FALSE((Address{}).is_address_literal());
}

TEST(Address, HasNonAscii) {
  EXPECT_FALSE((Address{"a", "b"}).has_non_ascii());
  EXPECT_TRUE((Address{"ü", "b"}).has_non_ascii());
  EXPECT_TRUE((Address{"a", "ü"}).has_non_ascii());
}

struct RoutingCase {
  std::string path;
  bool routing;
};
class RoutingChars : public ::testing::TestWithParam<RoutingCase> {};
TEST_P(RoutingChars, Detects) {
  auto r = parse_path(GetParam().path, {});
  ASSERT_TRUE(std::holds_alternative<Path>(r)) << GetParam().path;
  EXPECT_EQ(std::get<Path>(r).address.has_routing_chars(), GetParam().routing) << GetParam().path;
}
INSTANTIATE_TEST_SUITE_P(All, RoutingChars,
                         ::testing::Values(RoutingCase{"<user@example.com>", false},
                                           RoutingCase{"<user%other.example@example.com>", true},
                                           RoutingCase{"<host!user@example.com>", true},
                                           RoutingCase{"<\"a@b\"@example.com>", true},
                                           RoutingCase{"<\"a%b\"@example.com>", true},
                                           RoutingCase{"<\"a!b\"@example.com>", true},
                                           RoutingCase{"<\"a\\@b\"@example.com>", true},
                                           RoutingCase{"<\"john doe\"@example.com>", false},
                                           RoutingCase{"<\"a\\\\\"@example.com>", false},
                                           RoutingCase{"<\"\"@example.com>", false},
                                           RoutingCase{"<@relay.example:user@example.com>",
                                                       false}));

// ---- parse_mailbox ---------------------------------------------------------

TEST(Mailbox, Valid) {
  auto r = parse_mailbox("user@example.com", false);
  ASSERT_TRUE(std::holds_alternative<Address>(r));
  EXPECT_EQ(std::get<Address>(r).local, "user");
  EXPECT_EQ(std::get<Address>(r).domain, "example.com");
  auto q = parse_mailbox("\"a b\"@[IPv6:::1]", false);
  ASSERT_TRUE(std::holds_alternative<Address>(q));
  EXPECT_EQ(std::get<Address>(q).domain, "[IPv6:::1]");
  EXPECT_TRUE(std::holds_alternative<Address>(parse_mailbox("ü@ü.example", true)));
}

TEST(Mailbox, Invalid) {
  for (std::string in :
       {"", "<user@example.com>", "user", "user@", "@example.com", "user@example.com ",
        " user@example.com", "a@b\r\n", "a..b@c", "@a.example:user@example.com"}) {
    auto r = parse_mailbox(in, false);
    ASSERT_TRUE(std::holds_alternative<Reply>(r)) << in;
    EXPECT_EQ(std::get<Reply>(r).code, 553) << in;
  }
  auto u = parse_mailbox("ü@example.com", false);
  ASSERT_TRUE(std::holds_alternative<Reply>(u));
  EXPECT_EQ(std::get<Reply>(u).enhanced, "5.6.7");
}

// ---- normalize_domain (UTF-8 validation: tests/unit/text/utf8_test.cpp) ---

}  // namespace
}  // namespace mailgate::smtp
