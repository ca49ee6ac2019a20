// Unit tests of egress/: plan validation, site matching by MX suffix, the
// warm-up schedule, weighted picking, and the (source, site) registry.
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "egress/egress_plan.hpp"
#include "egress/path_registry.hpp"
#include "egress/pool_picker.hpp"

using namespace mailgate::egress;

namespace {
Plan two_sources() {
  Plan p;
  EXPECT_EQ(p.add_source({"ip1", "127.0.0.2", "", {}}), "");
  EXPECT_EQ(p.add_source({"ip2", "::1", "mta2.example", {}}), "");
  return p;
}
constexpr std::int64_t kDay = 86'400'000;
}  // namespace

TEST(EgressPlan, RefusesBadDeclarations) {
  Plan p = two_sources();
  EXPECT_NE(p.add_source({"ip1", "127.0.0.9", "", {}}), "");  // duplicate
  EXPECT_NE(p.add_source({"ip3", "300.1.1.1", "", {}}).find("not an IPv4 or IPv6"),
            std::string::npos);
  EXPECT_NE(p.add_source({"a/b", "", "", {}}), "");
  EXPECT_NE(p.add_source({"ip4", "", "", Warmup{0, 2, 3}}), "");
  EXPECT_NE(p.add_pool({"bulk", {{"ip1", 3}, {"nope", 1}}}).find("unknown source 'nope'"),
            std::string::npos);
  EXPECT_NE(p.add_pool({"bulk", {{"ip1", 0}}}), "");
  EXPECT_NE(p.add_pool({"bulk", {}}), "");
  EXPECT_NE(p.add_pool({"bulk", {{"ip1", 1}, {"ip1", 2}}}), "");
  EXPECT_EQ(p.add_pool({"bulk", {{"ip1", 3}, {"ip2", 1}}}), "");
  EXPECT_NE(p.add_pool({"bulk", {{"ip1", 1}}}), "");  // duplicate
  EXPECT_EQ(p.sources().size(), 2u);
  EXPECT_EQ(p.pools().size(), 1u);
}

TEST(EgressPlan, SiteByLongestMxSuffixAndOverride) {
  Plan p;
  p.add_site({"google", {".google.com", ".googlemail.com"}, 20, 100, 1});
  p.add_site({"gsmtp", {".l.google.com"}, 5, 0, 1});
  p.add_site({"yahoo", {".yahoodns.net"}, 10, 0, 1});
  EXPECT_EQ(p.site_for({"aspmx.l.google.com."}), "gsmtp");
  EXPECT_EQ(p.site_for({"alt1.aspmx.googlemail.com"}), "google");
  EXPECT_EQ(p.site_for({"MTA5.AM0.YAHOODNS.NET"}), "yahoo");
  EXPECT_EQ(p.site_for({"google.com"}), "google");             // the suffix without its dot
  EXPECT_EQ(p.site_for({"notgoogle.com", "mx.example"}), "");  // no partial label match
  EXPECT_EQ(p.site_for({"mx.example", "mta.yahoodns.net"}), "yahoo");
  p.add_site({"google", {".google.com"}, 2, 1, 1});  // a later declaration replaces
  EXPECT_EQ(p.site("google")->max_connections, 2u);
  EXPECT_EQ(p.sites().size(), 3u);
  EXPECT_NE(p.add_site({"other", {".x.test"}, 1, 0, 1}), "");  // reserved
  EXPECT_NE(p.add_site({"", {".x.test"}, 1, 0, 1}), "");
}

TEST(EgressPlan, WarmupSchedule) {
  Warmup w{200, 2, 14};
  EXPECT_EQ(w.quota(1), 200u);
  EXPECT_EQ(w.quota(2), 400u);
  EXPECT_EQ(w.quota(14), 200u << 13);
  EXPECT_FALSE(w.quota(15));
  EXPECT_EQ(parse_per_day("20/day"), 20u);
  EXPECT_EQ(parse_per_day("7"), 7u);
  EXPECT_FALSE(parse_per_day("20/h"));
  EXPECT_FALSE(parse_per_day("x/day"));
  EXPECT_EQ(utc_day(kDay * 3 + 5), 3);
  EXPECT_EQ(next_utc_midnight_ms(kDay * 3 + 5), kDay * 4);
}

TEST(PoolPicker, SharesFollowWeightsAndSkipUnusable) {
  Plan p = two_sources();
  ASSERT_EQ(p.add_pool({"bulk", {{"ip1", 3}, {"ip2", 1}}}), "");
  PoolPicker picker;
  std::map<std::string, int> n;
  for (int i = 0; i < 400; ++i) ++n[picker.next(p, *p.pool("bulk"))->source];
  EXPECT_EQ(n["ip1"], 300);
  EXPECT_EQ(n["ip2"], 100);
  auto only_ip2 = [](const PoolMember& m) { return m.source == "ip2"; };
  EXPECT_EQ(picker.next(p, *p.pool("bulk"), only_ip2)->source, "ip2");
  EXPECT_EQ(picker.next(p, *p.pool("bulk"), [](const PoolMember&) { return false; }), nullptr);
}

TEST(PathRegistry, ConnectionCapAndRatePerSourceAndSite) {
  Site google{"google", {".google.com"}, 2, 10, 1};
  PathRegistry r;
  EXPECT_TRUE(r.try_connect("ip1", "google", 2));
  EXPECT_TRUE(r.try_connect("ip1", "google", 2));
  EXPECT_FALSE(r.try_connect("ip1", "google", 2));
  EXPECT_TRUE(r.try_connect("ip2", "google", 2));  // per source
  EXPECT_TRUE(r.try_connect("ip1", "other", 0));   // no cap
  r.disconnect("ip1", "google");
  EXPECT_TRUE(r.try_connect("ip1", "google", 2));
  EXPECT_EQ(r.acquire_message("ip1", &google, 1'000'000), 0);
  EXPECT_GT(r.acquire_message("ip1", &google, 1'000'000), 0);  // 10/s: next in 100 ms
  EXPECT_EQ(r.acquire_message("ip1", &google, 1'100'000), 0);
}

TEST(PathRegistry, WarmupQuotaRefundAndPersistence) {
  Source s{"ip1", "", "", Warmup{3, 2, 2}};
  const std::int64_t now = kDay * 100 + 1000;
  PathRegistry r;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(r.take_quota(s, "google", now));
  EXPECT_FALSE(r.take_quota(s, "google", now));
  EXPECT_TRUE(r.take_quota(s, "yahoo", now));  // per site
  r.refund_quota(s, "google", now);
  EXPECT_EQ(r.remaining(s, "google", now), 1u);
  EXPECT_TRUE(r.take_quota(s, "google", now));
  EXPECT_EQ(r.remaining(s, "google", now + kDay), 6u);     // day 2: 3 × 2
  EXPECT_FALSE(r.remaining(s, "google", now + 2 * kDay));  // schedule over

  // What take_dirty() hands out, loaded into a new registry, is the same state.
  PathRegistry fresh;
  fresh.take_quota(s, "google", now);  // first use: day 1 is today
  auto d = fresh.take_dirty();
  fresh.mark_persisted(d.put);
  std::vector<WarmupRow> rows = d.put;
  rows.push_back({warmup_count_key("ip1", "yahoo", 99), "5"});  // yesterday: dropped
  PathRegistry again;
  again.load(rows, now);
  EXPECT_EQ(again.remaining(s, "google", now), 2u);
  EXPECT_EQ(again.take_dirty().remove,
            std::vector<std::string>{warmup_count_key("ip1", "yahoo", 99)});
}

TEST(PathRegistry, ConnectionCapHoldsAcrossThreads) {
  Site site{"s", {".s"}, 3, 0, 1};
  PathRegistry r;
  std::atomic<int> inside{0}, worst{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (!r.try_connect("a", site.name, site.max_connections)) continue;
        const int now = ++inside;
        int w = worst.load();
        while (now > w && !worst.compare_exchange_weak(w, now)) {
        }
        --inside;
        r.disconnect("a", site.name);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_LE(worst.load(), 3);
}
