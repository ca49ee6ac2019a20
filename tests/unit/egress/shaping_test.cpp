// Unit tests of traffic shaping automation in egress/: the reply pattern
// language (matches, refusals, bounded time on hostile input), rule
// validation in the plan, and the action table (fire once per target,
// suspension and override lookups, expiry, the cap, spool rows).
#include <gtest/gtest.h>

#include <chrono>

#include "egress/egress_plan.hpp"
#include "egress/reply_pattern.hpp"
#include "egress/shaping_actions.hpp"

using namespace mailgate::egress;

namespace {
ReplyPattern pat(std::string_view p) {
  std::string err;
  auto r = ReplyPattern::compile(p, err);
  EXPECT_TRUE(r) << p << ": " << err;
  return r ? *r : *ReplyPattern::compile("x", err);
}
std::string refusal(std::string_view p) {
  std::string err;
  auto r = ReplyPattern::compile(p, err);
  EXPECT_FALSE(r) << p;
  return err;
}
ShapingRule rule(std::string name, ShapingKind kind, std::int64_t duration_ms = 1000) {
  return ShapingRule{std::move(name), "yahoo", pat("TS04"), kind, duration_ms, {}};
}
ReplyScope scope(std::string source = "ip1", std::string tenant = "", std::string campaign = "") {
  return ReplyScope{std::move(source), "yahoo", "yahoo.test", std::move(tenant),
                    std::move(campaign)};
}
}  // namespace

TEST(ReplyPattern, MatchesProviderReplies) {
  EXPECT_TRUE(pat("\\[TS04\\]").search("421 4.7.0 [TS04] Messages from 1.2.3.4 deferred"));
  EXPECT_FALSE(pat("\\[TS04\\]").search("421 4.7.0 [TS03] Messages deferred"));
  EXPECT_TRUE(pat("^421 4\\.7\\.28 ").search("421 4.7.28 Gmail has detected an unusual rate"));
  EXPECT_FALSE(pat("^421 4\\.7\\.28 ").search("550 5.7.1 421 4.7.28 quoted"));
  EXPECT_TRUE(pat("S3150|S3140")
                  .search("550 5.7.1 Unfortunately, messages from [x] weren't sent "
                          "(S3140)"));
  EXPECT_TRUE(pat("^4\\d\\d [45]\\.7\\.\\d+ .*rate").search("451 4.7.500 Server busy, rate"));
  EXPECT_TRUE(pat("(?i)too many").search("421 4.7.0 TOO MANY connections"));
  EXPECT_FALSE(pat("too many").search("421 4.7.0 TOO MANY connections"));
  EXPECT_TRUE(pat("a+b?c*$").search("xxaa"));
  EXPECT_FALSE(pat("^a+$").search("aab"));
  EXPECT_TRUE(pat("[^0-9 ]\\.").search("x."));
  EXPECT_FALSE(pat("[^0-9 ]\\.").search("1. 2."));
}

TEST(ReplyPattern, RefusesWhatItDoesNotSupport) {
  EXPECT_NE(refusal("(TS04)").find("not supported"), std::string::npos);
  EXPECT_NE(refusal("a{2}").find("not supported"), std::string::npos);
  EXPECT_NE(refusal("[abc").find("without ']'"), std::string::npos);
  EXPECT_NE(refusal("*a").find("must follow"), std::string::npos);
  EXPECT_NE(refusal("a**").find("must follow"), std::string::npos);
  EXPECT_NE(refusal("\\q").find("unknown escape"), std::string::npos);
  EXPECT_NE(refusal("a|").find("empty alternative"), std::string::npos);
  EXPECT_NE(refusal("").find("empty"), std::string::npos);
  EXPECT_NE(refusal(std::string(600, 'a')).find("longer than"), std::string::npos);
}

TEST(ReplyPattern, HostileInputStaysLinear) {
  // A backtracking engine takes exponential time on this; ours is linear.
  std::string p;
  for (int i = 0; i < 30; ++i) p += "a?";
  for (int i = 0; i < 30; ++i) p += "a";
  const std::string text(30, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(pat(p).search(text));
  EXPECT_FALSE(pat(".*.*.*.*.*.*.*.*b$").search(std::string(100'000, 'a')));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(ShapingPlan, ValidatesRules) {
  Plan p;
  EXPECT_NE(p.add_shaping_rule(rule("r1", ShapingKind::Suspend)).find("unknown site"),
            std::string::npos);
  ASSERT_EQ(p.add_site({"yahoo", {".yahoodns.net"}, 0, 0, 1}), "");
  EXPECT_EQ(p.add_shaping_rule(rule("r1", ShapingKind::Suspend)), "");
  EXPECT_NE(p.add_shaping_rule(rule("r1", ShapingKind::Suspend)).find("twice"), std::string::npos);
  EXPECT_NE(p.add_shaping_rule(rule("r2", ShapingKind::Suspend, 0)).find("duration"),
            std::string::npos);
  EXPECT_NE(p.add_shaping_rule(rule("r3", ShapingKind::Override)).find("set must"),
            std::string::npos);
  EXPECT_NE(p.add_shaping_rule(rule("bad name", ShapingKind::Suspend)).find("name must"),
            std::string::npos);
  EXPECT_EQ(p.shaping_rules().size(), 1u);
}

TEST(ShapingActions, FiresOncePerTargetAndExpires) {
  ShapingActions t;
  const auto r = rule("ts04", ShapingKind::Suspend, 1000);
  EXPECT_EQ(t.blocked_until("ip1", "yahoo", 0), 0);
  auto a = t.fire(r, scope(), 100);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->until_ms, 1100);
  EXPECT_EQ(a->id.size(), 16u);
  EXPECT_FALSE(t.fire(r, scope(), 500));  // in force: nothing new, nothing extended
  EXPECT_EQ(t.blocked_until("ip1", "yahoo", 500), 1100);
  EXPECT_EQ(t.blocked_until("ip2", "yahoo", 500), 0);  // another source's path
  EXPECT_EQ(t.blocked_until("ip1", "google", 500), 0);
  EXPECT_EQ(t.blocked_until("ip1", "yahoo", 1100), 0);  // due, even before expire() ran
  EXPECT_TRUE(t.list(1100).empty());
  EXPECT_EQ(t.expire(1099).size(), 0u);
  EXPECT_EQ(t.expire(1100).size(), 1u);
  EXPECT_EQ(t.active(), 0u);
  EXPECT_TRUE(t.fire(r, scope(), 1200));  // fires again once expired
  EXPECT_EQ((t.taken()[{"ts04", ShapingKind::Suspend}]), 2u);
}

TEST(ShapingActions, TenantActionsNeedTheMessagesTenant) {
  ShapingActions t;
  EXPECT_FALSE(t.fire(rule("t", ShapingKind::SuspendTenant), scope("ip1"), 0));
  EXPECT_FALSE(t.fire(rule("c", ShapingKind::SuspendCampaign), scope("ip1", "acme"), 0));
  auto a = t.fire(rule("c", ShapingKind::SuspendCampaign), scope("ip1", "acme", "spring"), 0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->tenant, "acme");
  EXPECT_EQ(a->campaign, "spring");
  EXPECT_EQ(a->destination, "yahoo.test");
  EXPECT_EQ(t.blocked_until("ip1", "yahoo", 1), 0);  // holds the campaign, not the path
  // Another tenant at the same site is another target.
  EXPECT_TRUE(t.fire(rule("c", ShapingKind::SuspendCampaign), scope("ip1", "beta", "x"), 0));
}

TEST(ShapingActions, OverridesTakeTheTightestAndClear) {
  ShapingActions t;
  auto r1 = rule("slow", ShapingKind::Override);
  r1.set.max_message_rate = 1.0 / 6;
  auto r2 = rule("few", ShapingKind::Override);
  r2.set.max_connections = 2;
  r2.set.max_message_rate = 5;
  auto a1 = t.fire(r1, scope(), 0);
  auto a2 = t.fire(r2, scope(), 0);
  ASSERT_TRUE(a1 && a2);
  auto o = t.override_for("ip1", "yahoo", 10);
  EXPECT_EQ(o.max_connections, 2u);
  EXPECT_DOUBLE_EQ(o.max_message_rate, 1.0 / 6);
  EXPECT_EQ(t.override_for("ip2", "yahoo", 10).max_connections, 0u);
  EXPECT_TRUE(t.clear(a1->id));
  EXPECT_FALSE(t.clear(a1->id));
  EXPECT_DOUBLE_EQ(t.override_for("ip1", "yahoo", 10).max_message_rate, 5);
  EXPECT_EQ(t.clear_all().size(), 1u);
  EXPECT_EQ(t.override_for("ip1", "yahoo", 10).max_connections, 0u);
}

TEST(ShapingActions, CapsTheActionsInForce) {
  ShapingActions t;
  const auto r = rule("t", ShapingKind::SuspendTenant);
  for (std::size_t i = 0; i < ShapingActions::kMaxActions; ++i)
    ASSERT_TRUE(t.fire(r, scope("ip1", "t" + std::to_string(i)), 0));
  EXPECT_FALSE(t.fire(r, scope("ip1", "one-more"), 0));
  EXPECT_EQ(t.refused(), 1u);
  EXPECT_EQ(t.active(), ShapingActions::kMaxActions);
}

TEST(ShapingActions, RowsRoundTripAndRefuseGarbage) {
  ShapingActions t;
  auto r = rule("slow", ShapingKind::Override, 7'200'000);
  r.set.max_message_rate = 10.0 / 60;
  auto a = t.fire(r, ReplyScope{"ip:1", "ya\nhoo", "d", "", ""}, 5);
  ASSERT_TRUE(a);
  ShapingAction back;
  ASSERT_TRUE(decode_action(shaping_key(a->id), encode_action(*a), back));
  EXPECT_EQ(back.id, a->id);
  EXPECT_EQ(back.site, "ya\nhoo");
  EXPECT_EQ(back.source, "ip:1");
  EXPECT_EQ(back.kind, ShapingKind::Override);
  EXPECT_DOUBLE_EQ(back.set.max_message_rate, 10.0 / 60);
  EXPECT_EQ(back.until_ms, 7'200'005);
  const auto row = encode_action(*a);
  EXPECT_FALSE(decode_action("other/" + a->id, row, back));
  EXPECT_FALSE(decode_action(shaping_key(a->id), row.substr(0, row.size() - 1), back));
  EXPECT_FALSE(decode_action(shaping_key(a->id), row + "x", back));
  EXPECT_FALSE(decode_action(shaping_key(a->id), "9999999:x", back));
  // Restored at start: the one still in force is kept, the expired one's id comes back.
  ShapingActions fresh;
  auto old = back;
  old.id = "0000000000000001";
  old.until_ms = 10;
  auto stale = fresh.load({back, old}, 100);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0], "0000000000000001");
  EXPECT_EQ(fresh.list(100).size(), 1u);
  EXPECT_DOUBLE_EQ(fresh.override_for("ip:1", "ya\nhoo", 100).max_message_rate, 10.0 / 60);
}

// In a cluster (issue 16): one row per target, keyed by it; an action from
// another node replaces ours for the target when it started later (the
// larger id at the same time), so both nodes keep the same one; a clear
// from elsewhere ends ours unless ours started after it.
TEST(ShapingActions, SharedRowsAndAdoptionKeepOneActionPerTarget) {
  ShapingActions a_node, b_node;
  const auto r = rule("ts04", ShapingKind::Suspend, 1000);
  auto a = a_node.fire(r, scope(), 100);
  auto b = b_node.fire(r, scope(), 101);  // the same rule fired on another node at once
  ASSERT_TRUE(a && b);
  EXPECT_EQ(target_key(*a), target_key(*b));
  ShapingAction back;
  ASSERT_TRUE(decode_shared_action(target_key(*b), encode_shared_action(*b), back));
  EXPECT_EQ(back.id, b->id);
  EXPECT_EQ(back.until_ms, 1101);
  EXPECT_FALSE(decode_shared_action(target_key(*b) + "x", encode_shared_action(*b), back));
  auto other = *b;
  other.source = "ip2";
  EXPECT_FALSE(decode_shared_action(target_key(other), encode_shared_action(*b), back));
  auto bad_id = *b;
  bad_id.id = "../../x";
  EXPECT_FALSE(decode_shared_action(target_key(*b), encode_shared_action(bad_id), back));
  ShapingAction t;
  ASSERT_TRUE(decode_target_key(target_key(*a), t));
  EXPECT_TRUE(t.same_target(*a));
  EXPECT_FALSE(decode_target_key("3:abc", t));

  // Each node takes the other's: a takes b's (later), b keeps its own.
  std::vector<ShapingAction> replaced;
  EXPECT_TRUE(a_node.adopt(*b, 200, replaced));
  ASSERT_EQ(replaced.size(), 1u);
  EXPECT_EQ(replaced[0].id, a->id);
  replaced.clear();
  EXPECT_FALSE(b_node.adopt(*a, 200, replaced));
  EXPECT_FALSE(a_node.adopt(*b, 200, replaced));  // already here
  EXPECT_EQ(a_node.list(200).size(), 1u);
  EXPECT_EQ(a_node.list(200)[0].id, b_node.list(200)[0].id);
  EXPECT_FALSE(a_node.fire(r, scope(), 300));      // deduped by the target, whoever fired it
  EXPECT_FALSE(a_node.adopt(*b, 1101, replaced));  // expired: not taken

  // Cleared elsewhere at 500: gone; a later action for the target stays.
  EXPECT_EQ(b_node.clear_target(t, 500).size(), 1u);
  EXPECT_EQ(b_node.active(), 0u);
  auto c = b_node.fire(r, scope(), 600);
  ASSERT_TRUE(c);
  EXPECT_EQ(b_node.clear_target(t, 500).size(), 0u);
}
