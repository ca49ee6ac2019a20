// IdempotencyCache (memory only; the spool copy is exercised across a
// restart by tests/integration/test_inject_template.py): replay, body
// mismatch, the claim while running, abandon, the LRU caps, expiry.
#include <gtest/gtest.h>

#include <thread>

#include "idempotency/idempotency_cache.hpp"

namespace mailgate::idempotency {
namespace {

using Claim = IdempotencyCache::Claim;

TEST(IdempotencyCache, ReplaysTheFirstAnswerForTheSameBody) {
  IdempotencyCache cache(nullptr, nullptr);
  EXPECT_EQ(cache.begin("k", "body").claim, Claim::Run);
  EXPECT_EQ(cache.begin("k", "body").claim, Claim::Running);  // claimed until finished
  cache.finish("k", {200, "{\"accepted\":1}"});
  auto b = cache.begin("k", "body");
  EXPECT_EQ(b.claim, Claim::Replay);
  EXPECT_EQ(b.response.status, 200);
  EXPECT_EQ(b.response.body, "{\"accepted\":1}");
  EXPECT_EQ(cache.begin("k", "other body").claim, Claim::Mismatch);
  EXPECT_EQ(cache.begin("k2", "body").claim, Claim::Run);  // keys are independent
}

TEST(IdempotencyCache, AbandonReleasesTheKeyWithoutKeeping) {
  IdempotencyCache cache(nullptr, nullptr);
  EXPECT_EQ(cache.begin("k", "b").claim, Claim::Run);
  cache.abandon("k");
  EXPECT_EQ(cache.begin("k", "changed").claim, Claim::Run);
  EXPECT_EQ(cache.entries(), 0u);
}

TEST(IdempotencyCache, MemoryIsCappedInEntriesAndBytes) {
  Options o;
  o.max_entries = 3;
  o.max_bytes = 1000;
  IdempotencyCache cache(nullptr, nullptr, o);
  for (int i = 0; i < 10; ++i) {
    const auto key = "k" + std::to_string(i);
    ASSERT_EQ(cache.begin(key, "b").claim, Claim::Run);
    cache.finish(key, {200, "x"});
  }
  EXPECT_EQ(cache.entries(), 3u);
  EXPECT_EQ(cache.begin("k9", "b").claim, Claim::Replay);  // the newest are kept
  EXPECT_EQ(cache.begin("k0", "b").claim, Claim::Run);     // the oldest went (memory only)
  cache.abandon("k0");
  ASSERT_EQ(cache.begin("big", "b").claim, Claim::Run);
  cache.finish("big", {200, std::string(2000, 'x')});  // alone over max_bytes
  EXPECT_LE(cache.bytes(), 1000u);
}

TEST(IdempotencyCache, AnswersExpire) {
  Options o;
  o.ttl = std::chrono::milliseconds(50);
  IdempotencyCache cache(nullptr, nullptr, o);
  ASSERT_EQ(cache.begin("k", "b").claim, Claim::Run);
  cache.finish("k", {200, "first"});
  EXPECT_EQ(cache.begin("k", "b").claim, Claim::Replay);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));  // past the ttl (not a race)
  EXPECT_EQ(cache.begin("k", "b").claim, Claim::Run);
}

TEST(IdempotencyCache, KeysMustBePrintableAsciiUpTo255) {
  EXPECT_FALSE(IdempotencyCache::check_key("order-42"));
  EXPECT_TRUE(IdempotencyCache::check_key(""));
  EXPECT_TRUE(IdempotencyCache::check_key(std::string(256, 'a')));
  EXPECT_FALSE(IdempotencyCache::check_key(std::string(255, 'a')));
  EXPECT_TRUE(IdempotencyCache::check_key("a\r\nb"));
  EXPECT_TRUE(IdempotencyCache::check_key("caf\xc3\xa9"));
}

}  // namespace
}  // namespace mailgate::idempotency
