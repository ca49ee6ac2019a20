// Tests of mtasts/policy: the strict parsers of the MTA-STS TXT record and
// policy file (RFC 8461 §3.1, §3.2) and MX pattern matching (§4.1).
#include "mtasts/policy.hpp"

#include <gtest/gtest.h>

namespace mailgate::mtasts {
namespace {

TEST(MtaStsPolicy, ParsesTheRfcExampleWithCrlfOrLf) {
  for (const char* eol : {"\r\n", "\n"}) {
    const std::string body = std::string("version: STSv1") + eol + "mode: enforce" + eol +
                             "mx: mail.example.com" + eol + "mx: *.example.net" + eol +
                             "mx: backupmx.example.com" + eol + "max_age: 604800" + eol;
    auto p = parse_policy(body);
    ASSERT_TRUE(p.policy) << p.error;
    EXPECT_EQ(p.policy->mode, Mode::Enforce);
    EXPECT_EQ(p.policy->max_age, 604800u);
    ASSERT_EQ(p.policy->mx.size(), 3u);
    EXPECT_EQ(p.policy->mx[1], "*.example.net");
  }
}

TEST(MtaStsPolicy, UnknownKeysAreIgnoredAndModeNoneNeedsNoMx) {
  auto p = parse_policy("version: STSv1\nmode: none\nmax_age: 0\nextension: x\n");
  ASSERT_TRUE(p.policy) << p.error;
  EXPECT_EQ(p.policy->mode, Mode::None);
}

TEST(MtaStsPolicy, RefusesWhatIsNotExactlyRight) {
  const char* bad[] = {
      "",                                                                   // nothing
      "mode: enforce\nmx: a.example\nmax_age: 1\n",                         // no version
      "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",         // wrong version
      "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",         // case
      "version: STSv1\nmode: enforce\nmax_age: 1\n",                        // no mx
      "version: STSv1\nmode: enforce\nmx: a.example\n",                     // no max_age
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n",        // sign
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",  // > 1 year
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1d\n",        // unit
      "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n",        // empty label
      "version: STSv1\nmode: enforce\nmx: a*.example\nmax_age: 1\n",        // partial wildcard
      "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nmode: testing\n",  // twice
      "version: STSv1\nmode enforce\nmx: a.example\nmax_age: 1\n",                  // no colon
      "<html>version: STSv1</html>\n",
  };
  for (const char* body : bad) EXPECT_FALSE(parse_policy(body).policy) << body;
  EXPECT_NE(parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n").error.find("mx"),
            std::string::npos);
  EXPECT_FALSE(parse_policy(std::string(kMaxPolicySize + 1, '\n')).policy);
}

TEST(MtaStsPolicy, TxtRecordIdStrictly) {
  std::string error;
  EXPECT_EQ(parse_txt_id({"v=STSv1; id=20160831085700Z;"}, error), "20160831085700Z");
  EXPECT_EQ(parse_txt_id({"v=STSv1;id=abc"}, error), "abc");
  EXPECT_EQ(parse_txt_id({"v=spf1 -all", "v=STSv1; id=x1; ext=1"}, error), "x1");
  EXPECT_FALSE(parse_txt_id({}, error));
  EXPECT_FALSE(parse_txt_id({"v=spf1 -all"}, error));
  EXPECT_FALSE(parse_txt_id({"v=STSv1; id=a", "v=STSv1; id=b"}, error));  // two records
  EXPECT_EQ(error, "more than one v=STSv1 TXT record");
  EXPECT_FALSE(parse_txt_id({"v=STSv1;"}, error));         // no id
  EXPECT_FALSE(parse_txt_id({"v=STSv1; id=a-b"}, error));  // not alnum
  EXPECT_FALSE(parse_txt_id({"v=STSv1; id=" + std::string(33, 'a')}, error));
  EXPECT_FALSE(parse_txt_id({"v=STSv10; id=a"}, error));
}

TEST(MtaStsPolicy, MxPatternsMatchOneLabelWildcardsAndExactNames) {
  auto p = parse_policy(
      "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\n"
      "max_age: 60\n");
  ASSERT_TRUE(p.policy);
  EXPECT_TRUE(mx_matches(*p.policy, "mail.example.com"));
  EXPECT_TRUE(mx_matches(*p.policy, "MAIL.Example.com."));
  EXPECT_TRUE(mx_matches(*p.policy, "mx1.example.net"));
  EXPECT_FALSE(mx_matches(*p.policy, "example.net"));
  EXPECT_FALSE(mx_matches(*p.policy, "a.b.example.net"));
  EXPECT_FALSE(mx_matches(*p.policy, "xexample.net"));
  EXPECT_FALSE(mx_matches(*p.policy, "mail.example.com.evil.test"));
  EXPECT_FALSE(mx_matches(*p.policy, "other.example.com"));
}

}  // namespace
}  // namespace mailgate::mtasts
