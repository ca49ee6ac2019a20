// MX ordering (RFC 5321 §5.1) and null MX recognition (RFC 7505), no DNS.
#include "dns/mx_selection.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace mailgate::dns {
namespace {

std::vector<std::string> names(const std::vector<MxHost>& hosts) {
  std::vector<std::string> out;
  for (const auto& h : hosts) out.push_back(h.name);
  return out;
}

TEST(OrderMx, SortsByPreference) {
  std::mt19937_64 rng(1);
  auto out = order_mx({{"c", 30}, {"a", 10}, {"b", 20}}, rng);
  EXPECT_EQ(names(out), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(out[0].preference, 10);
  EXPECT_EQ(out[2].preference, 30);
}

TEST(OrderMx, EqualPreferencesAreShuffledAcrossCalls) {
  std::mt19937_64 rng(42);
  std::set<std::vector<std::string>> seen;
  std::map<std::string, int> first;
  for (int i = 0; i < 600; ++i) {
    auto out = order_mx({{"a", 10}, {"b", 10}, {"c", 10}}, rng);
    ASSERT_EQ(out.size(), 3u);
    seen.insert(names(out));
    ++first[out[0].name];
  }
  EXPECT_EQ(seen.size(), 6u) << "all 3! orders should appear over 600 calls";
  for (auto& [name, n] : first) EXPECT_GT(n, 120) << name << " first too rarely: " << n;
}

TEST(OrderMx, NeverReordersAcrossPreferences) {
  std::mt19937_64 rng(7);
  std::set<std::vector<std::string>> seen;
  for (int i = 0; i < 200; ++i) {
    auto out = order_mx(
        {{"low2", 5}, {"high1", 50}, {"mid1", 20}, {"low1", 5}, {"mid2", 20}, {"high2", 50}}, rng);
    ASSERT_EQ(out.size(), 6u);
    for (std::size_t k = 1; k < out.size(); ++k)
      ASSERT_LE(out[k - 1].preference, out[k].preference);
    std::set<std::string> low{out[0].name, out[1].name}, mid{out[2].name, out[3].name},
        high{out[4].name, out[5].name};
    EXPECT_EQ(low, (std::set<std::string>{"low1", "low2"}));
    EXPECT_EQ(mid, (std::set<std::string>{"mid1", "mid2"}));
    EXPECT_EQ(high, (std::set<std::string>{"high1", "high2"}));
    seen.insert(names(out));
  }
  EXPECT_EQ(seen.size(), 8u);  // 2 × 2 × 2 orders, each group shuffled independently
}

TEST(OrderMx, SinglePreferenceGroupsKeepTheirHost) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 50; ++i) {
    auto out = order_mx({{"b", 20}, {"a", 10}}, rng);
    EXPECT_EQ(names(out), (std::vector<std::string>{"a", "b"}));
  }
}

TEST(OrderMx, DropsNullTargetsAndDuplicates) {
  std::mt19937_64 rng(5);
  auto out = order_mx({{"", 0}, {"mx.example", 20}, {"MX.example", 10}, {".", 5}}, rng);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].name, "mx.example");
  EXPECT_EQ(out[0].preference, 10);
  EXPECT_TRUE(order_mx({}, rng).empty());
}

TEST(NullMx, OnlyWhenNullTargetsAreAllThereIs) {
  EXPECT_TRUE(is_null_mx({{"", 0}}));
  EXPECT_TRUE(is_null_mx({{".", 0}}));
  EXPECT_TRUE(is_null_mx({{"", 10}}));  // a lone "." cannot be delivered to either
  EXPECT_FALSE(is_null_mx({}));
  EXPECT_FALSE(is_null_mx({{"", 0}, {"mx.example", 10}}));  // misconfigured: use the real host
  EXPECT_FALSE(is_null_mx({{"mx.example", 0}}));
  EXPECT_TRUE(is_null_target(""));
  EXPECT_TRUE(is_null_target("."));
  EXPECT_FALSE(is_null_target("a."));
}

TEST(FailureReply, NullMxBouncesWith556) {
  auto r = failure_reply(Status::NullMx);
  EXPECT_EQ(r.code, 556);
  EXPECT_EQ(r.enhanced, "5.1.10");
  EXPECT_EQ(failure_reply(Status::TempFail).code, 451);
  EXPECT_EQ(failure_reply(Status::TempFail).enhanced, "4.4.3");
  EXPECT_EQ(failure_reply(Status::NxDomain).code, 550);
  EXPECT_TRUE(is_permanent(Status::NxDomain));
  EXPECT_TRUE(is_permanent(Status::NullMx));
  EXPECT_TRUE(is_permanent(Status::NoData));
  EXPECT_FALSE(is_permanent(Status::TempFail));
  EXPECT_FALSE(is_permanent(Status::Ok));
  EXPECT_EQ(to_string(Status::NullMx), "nullmx");
}

}  // namespace
}  // namespace mailgate::dns
