// Tests of net/cidr: parsing (v4, v6, bare hosts, edge prefixes, junk) and
// membership, including IPv4-mapped IPv6 client addresses.
#include "net/cidr.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::net {
namespace {

std::string parsed(const char* text) {
  auto c = Cidr::parse(text);
  return c ? c->str() : "<invalid>";
}

TEST(Cidr, ParsesAndNormalizes) {
  EXPECT_EQ(parsed("127.0.0.0/8"), "127.0.0.0/8");
  EXPECT_EQ(parsed("10.0.0.1"), "10.0.0.1/32");
  EXPECT_EQ(parsed("10.1.2.3/8"), "10.0.0.0/8");  // host bits masked
  EXPECT_EQ(parsed("192.168.1.77/26"), "192.168.1.64/26");
  EXPECT_EQ(parsed("0.0.0.0/0"), "0.0.0.0/0");
  EXPECT_EQ(parsed("1.2.3.4/0"), "0.0.0.0/0");
  EXPECT_EQ(parsed("1.2.3.4/32"), "1.2.3.4/32");
  EXPECT_EQ(parsed("::1/128"), "::1/128");
  EXPECT_EQ(parsed("::1"), "::1/128");
  EXPECT_EQ(parsed("2001:db8::/32"), "2001:db8::/32");
  EXPECT_EQ(parsed("2001:db8:ffff::1/33"), "2001:db8:8000::/33");
  EXPECT_EQ(parsed("::/0"), "::/0");
  EXPECT_EQ(parsed("2001:DB8::/32"), "2001:db8::/32");
  // IPv4-mapped networks become the IPv4 network they denote.
  EXPECT_EQ(parsed("::ffff:10.0.0.0/104"), "10.0.0.0/8");
  EXPECT_EQ(parsed("::ffff:10.0.0.1"), "10.0.0.1/32");
}

TEST(Cidr, Fields) {
  auto c = Cidr::parse("10.20.30.40/16");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->v4);
  EXPECT_EQ(c->prefix, 16u);
  EXPECT_EQ(c->addr[0], 10);
  EXPECT_EQ(c->addr[1], 20);
  EXPECT_EQ(c->addr[2], 0);
  auto v6 = Cidr::parse("fe80::/10");
  ASSERT_TRUE(v6);
  EXPECT_FALSE(v6->v4);
  EXPECT_EQ(v6->prefix, 10u);
}

TEST(Cidr, RejectsJunk) {
  for (const char* text : {"",
                           "/",
                           "/8",
                           "10.0.0.0/",
                           "10.0.0.0/33",
                           "10.0.0.0/-1",
                           "10.0.0.0/+8",
                           "10.0.0.0/8/8",
                           "10.0.0.0/ 8",
                           "10.0.0.0 /8",
                           " 10.0.0.0/8",
                           "10.0.0.0/8 ",
                           "10.0.0/8",
                           "10.0.0.0.0",
                           "256.0.0.0/8",
                           "10.0.0.0/1000",
                           "10.0.0.0/x",
                           "::1/129",
                           "::1/256",
                           "2001:db8::g/32",
                           "2001:db8:::/32",
                           "fe80::1%eth0",
                           "localhost",
                           "example.com/24",
                           "[::1]/128",
                           "1.2.3.4:25",
                           "*",
                           "any"}) {
    EXPECT_FALSE(Cidr::parse(text).has_value()) << '"' << text << '"';
  }
  EXPECT_FALSE(Cidr::parse(std::string_view("10.0.0.1\0/8", 11)).has_value());
  EXPECT_FALSE(Cidr::parse(std::string_view("10.0.0.1\0", 9)).has_value());
}

TEST(Cidr, ContainsV4) {
  auto c = *Cidr::parse("127.0.0.0/8");
  EXPECT_TRUE(c.contains("127.0.0.1"));
  EXPECT_TRUE(c.contains("127.255.255.255"));
  EXPECT_FALSE(c.contains("128.0.0.1"));
  EXPECT_FALSE(c.contains("126.255.255.255"));
  EXPECT_FALSE(c.contains("::1"));
  EXPECT_FALSE(c.contains(""));
  EXPECT_FALSE(c.contains("junk"));
  EXPECT_FALSE(c.contains("127.0.0.1/8"));

  auto odd = *Cidr::parse("192.168.1.64/26");
  EXPECT_TRUE(odd.contains("192.168.1.64"));
  EXPECT_TRUE(odd.contains("192.168.1.127"));
  EXPECT_FALSE(odd.contains("192.168.1.63"));
  EXPECT_FALSE(odd.contains("192.168.1.128"));

  auto host = *Cidr::parse("10.0.0.1");
  EXPECT_TRUE(host.contains("10.0.0.1"));
  EXPECT_FALSE(host.contains("10.0.0.2"));

  auto all = *Cidr::parse("0.0.0.0/0");
  EXPECT_TRUE(all.contains("1.2.3.4"));
  EXPECT_TRUE(all.contains("255.255.255.255"));
  EXPECT_FALSE(all.contains("2001:db8::1"));
}

TEST(Cidr, ContainsV6) {
  auto c = *Cidr::parse("2001:db8::/32");
  EXPECT_TRUE(c.contains("2001:db8::1"));
  EXPECT_TRUE(c.contains("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(c.contains("2001:db9::1"));
  EXPECT_FALSE(c.contains("32.1.13.184"));  // the same leading bytes as IPv4

  auto lo = *Cidr::parse("::1/128");
  EXPECT_TRUE(lo.contains("::1"));
  EXPECT_TRUE(lo.contains("0:0:0:0:0:0:0:1"));
  EXPECT_FALSE(lo.contains("::2"));
  EXPECT_FALSE(lo.contains("127.0.0.1"));

  auto link = *Cidr::parse("fe80::/10");
  EXPECT_TRUE(link.contains("fe80::1%eth0"));  // asio prints the scope id
  EXPECT_TRUE(link.contains("febf::1"));
  EXPECT_FALSE(link.contains("fec0::1"));

  auto all = *Cidr::parse("::/0");
  EXPECT_TRUE(all.contains("2001:db8::1"));
  EXPECT_FALSE(all.contains("1.2.3.4"));         // an IPv4 client is an IPv4 client ...
  EXPECT_FALSE(all.contains("::ffff:1.2.3.4"));  // ... whatever the socket family
}

TEST(Cidr, MappedAddressesMatchV4Networks) {
  auto c = *Cidr::parse("127.0.0.0/8");
  EXPECT_TRUE(c.contains("::ffff:127.0.0.1"));
  EXPECT_TRUE(c.contains("::FFFF:127.0.0.1"));
  EXPECT_TRUE(c.contains("::ffff:7f00:1"));
  EXPECT_FALSE(c.contains("::ffff:128.0.0.1"));
  EXPECT_FALSE(c.contains("::127.0.0.1"));  // IPv4-compatible, not mapped

  auto mapped_net = *Cidr::parse("::ffff:10.0.0.0/104");
  EXPECT_TRUE(mapped_net.contains("10.9.8.7"));
  EXPECT_TRUE(mapped_net.contains("::ffff:10.9.8.7"));
  EXPECT_FALSE(mapped_net.contains("11.0.0.1"));
}

TEST(Cidr, AnyContains) {
  std::vector<Cidr> nets = {*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")};
  EXPECT_TRUE(any_contains(nets, "127.0.0.1"));
  EXPECT_TRUE(any_contains(nets, "::1"));
  EXPECT_TRUE(any_contains(nets, "::ffff:127.0.0.2"));
  EXPECT_FALSE(any_contains(nets, "192.0.2.1"));
  EXPECT_FALSE(any_contains(nets, "2001:db8::1"));
  EXPECT_FALSE(any_contains(nets, "nonsense"));
  EXPECT_FALSE(any_contains({}, "127.0.0.1"));
}

}  // namespace
}  // namespace mailgate::net
