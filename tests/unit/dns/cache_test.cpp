// The per-resolver record-set cache: TTL expiry, LRU bound, what is not stored.
#include "dns/cache.hpp"

#include <gtest/gtest.h>

namespace mailgate::dns {
namespace {

using namespace std::chrono_literals;

RecordSet ok(std::uint32_t ttl, const char* ip = "192.0.2.1") {
  RecordSet rs;
  rs.status = Status::Ok;
  rs.addresses = {asio::ip::make_address(ip)};
  rs.ttl = ttl;
  return rs;
}

TEST(Cache, ExpiresAfterTtlAndReportsSecondsLeft) {
  Cache c(10);
  auto t0 = Cache::Clock::time_point{} + 1000s;
  c.put("h.example", RrType::A, ok(10), t0);
  auto hit = c.get("h.example", RrType::A, t0 + 3500ms);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->ttl, 7u);  // 6.5 s left, rounded up
  EXPECT_EQ(hit->addresses.size(), 1u);
  EXPECT_FALSE(c.get("h.example", RrType::AAAA, t0));  // keyed by type too
  EXPECT_FALSE(c.get("h.example", RrType::A, t0 + 10s));
  EXPECT_EQ(c.size(), 0u);  // the expired entry was dropped
}

TEST(Cache, EvictsLeastRecentlyUsed) {
  Cache c(2);
  auto t = Cache::Clock::now();
  c.put("a", RrType::A, ok(60), t);
  c.put("b", RrType::A, ok(60), t);
  EXPECT_TRUE(c.get("a", RrType::A, t));  // a is now the most recently used
  c.put("c", RrType::A, ok(60), t);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.get("a", RrType::A, t));
  EXPECT_FALSE(c.get("b", RrType::A, t));
  EXPECT_TRUE(c.get("c", RrType::A, t));
}

TEST(Cache, ReplacesAndSkipsUncacheable) {
  Cache c(4);
  auto t = Cache::Clock::now();
  c.put("a", RrType::A, ok(60, "192.0.2.1"), t);
  c.put("a", RrType::A, ok(60, "192.0.2.2"), t);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.get("a", RrType::A, t)->addresses[0].to_string(), "192.0.2.2");
  c.put("z", RrType::A, ok(0), t);
  EXPECT_FALSE(c.get("z", RrType::A, t));
  Cache off(0);
  off.put("a", RrType::A, ok(60), t);
  EXPECT_FALSE(off.get("a", RrType::A, t));
}

}  // namespace
}  // namespace mailgate::dns
