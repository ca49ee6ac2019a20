// feedback/verp and the delivery.verp template grammar (feedback_config).
#include "feedback/verp.hpp"

#include <gtest/gtest.h>

using namespace mailgate::feedback;

namespace {
const std::string kId = "01a243c7dd0000000000000000000001";
Verp verp() {
  return Verp::from_config("b+{id}.{rcpt_hash}@bounces.example.com", "0123456789abcdef");
}
}  // namespace

TEST(VerpTemplate, RefusesBadTemplates) {
  std::string e;
  EXPECT_TRUE(parse_verp_template("", e).empty());
  EXPECT_TRUE(e.empty());
  for (const char* bad :
       {"b+{id}@bounces.example.com", "b+{rcpt_hash}@x.example",
        "b+{id}.{id}.{rcpt_hash}@x.example", "b+{id}.{rcpt_hash}", "b@{id}.{rcpt_hash}.example",
        "b+{id}.{rcpt_hash}{x}@x.example", "b+{id}.{rcpt_hash@x.example",
        "b+{id} {rcpt_hash}@x.example", "b+{id}}.{rcpt_hash}@x.example"}) {
    e.clear();
    EXPECT_TRUE(parse_verp_template(bad, e).empty()) << bad;
    EXPECT_FALSE(e.empty()) << bad;
  }
  e.clear();
  EXPECT_FALSE(parse_verp_template("{rcpt_hash}-{id}@b.example", e).empty()) << e;
}

TEST(Verp, AddressRoundTripsAndVerifiesOnlyItsRecipient) {
  const auto v = verp();
  ASSERT_TRUE(v.enabled());
  const auto a = v.address(kId, "User@Example.net");
  ASSERT_EQ(a.size(), std::string("b+.@bounces.example.com").size() + 32 + 10);
  EXPECT_EQ(a.substr(0, 2 + 32), "b+" + kId);
  auto p = v.match(a);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->id_hex, kId);
  EXPECT_TRUE(v.verifies(*p, "user@example.net"));  // case-insensitive recipient
  EXPECT_FALSE(v.verifies(*p, "other@example.net"));
  // Remote servers may change the case of the local part.
  auto upper = a;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto pu = v.match(upper);
  ASSERT_TRUE(pu);
  EXPECT_TRUE(v.verifies(*pu, "user@example.net"));
  // Another secret gives another hash.
  const auto other =
      Verp::from_config("b+{id}.{rcpt_hash}@bounces.example.com", "another-secret-0000");
  EXPECT_FALSE(other.verifies(*p, "user@example.net"));
}

TEST(Verp, MatchAcceptsOnlyTheExactShape) {
  const auto v = verp();
  const auto a = v.address(kId, "u@x.example");
  EXPECT_FALSE(v.match(a + "x"));
  EXPECT_FALSE(v.match("x" + a));
  EXPECT_FALSE(v.match(a.substr(0, a.size() - 1)));
  EXPECT_FALSE(v.match("b+" + kId + ".abcdefghi1@bounces.example.com"));  // '1' is not base32
  EXPECT_FALSE(v.match("b+" + kId.substr(1) + "g.abcdefghij@bounces.example.com"));
  EXPECT_FALSE(v.match("bounces@bounces.example.com"));
  EXPECT_FALSE(v.match(""));
  EXPECT_FALSE(Verp().match(a));
}
