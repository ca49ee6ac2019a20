// Tests for webhooks/signature and webhooks/batching: the signature against
// Python's hmac (the receiver's side), what each HTTP answer means, the
// backoff's growth, cap and jitter, when a batch goes, the row encoding.
#include <gtest/gtest.h>

#include <set>

#include "webhooks/batching.hpp"
#include "webhooks/signature.hpp"

using namespace mailgate::webhooks;
using namespace std::chrono_literals;

TEST(Signature, MatchesPythonHmac) {
  // python3: hmac.new(b"s3cr3t", b'1700000000.[{"event":"delivery"}]', hashlib.sha256).hexdigest()
  EXPECT_EQ(signature("s3cr3t", 1700000000, R"([{"event":"delivery"}])"),
            "sha256=56ad1eb4d08208eeed258b6ae4d38ec19b33981f516d4bb65a67fe1b7d3a4117");
  EXPECT_NE(signature("s3cr3t", 1700000001, R"([{"event":"delivery"}])"),
            signature("s3cr3t", 1700000000, R"([{"event":"delivery"}])"));
  EXPECT_NE(signature("other", 1700000000, "[]"), signature("s3cr3t", 1700000000, "[]"));
}

TEST(Classify, TwoHundredsAckRetryableRetryRestDead) {
  EXPECT_EQ(classify(true, 200), PostOutcome::Ack);
  EXPECT_EQ(classify(true, 204), PostOutcome::Ack);
  EXPECT_EQ(classify(false, 0), PostOutcome::Retry);  // timeout, refused, TLS
  EXPECT_EQ(classify(true, 408), PostOutcome::Retry);
  EXPECT_EQ(classify(true, 429), PostOutcome::Retry);
  EXPECT_EQ(classify(true, 500), PostOutcome::Retry);
  EXPECT_EQ(classify(true, 503), PostOutcome::Retry);
  EXPECT_EQ(classify(true, 400), PostOutcome::Dead);
  EXPECT_EQ(classify(true, 401), PostOutcome::Dead);
  EXPECT_EQ(classify(true, 404), PostOutcome::Dead);
  EXPECT_EQ(classify(true, 301), PostOutcome::Dead);  // redirects are not followed
}

TEST(Backoff, DoublesWithJitterUpToTheCap) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200; ++i) {
    const auto first = backoff(1, 1000ms, 60000ms, rng);
    EXPECT_GE(first, 500ms);
    EXPECT_LE(first, 1000ms);
    const auto third = backoff(3, 1000ms, 60000ms, rng);
    EXPECT_GE(third, 2000ms);
    EXPECT_LE(third, 4000ms);
    const auto late = backoff(40, 1000ms, 60000ms, rng);  // no overflow, capped
    EXPECT_GE(late, 30000ms);
    EXPECT_LE(late, 60000ms);
  }
  // Jitter: not every wait is the same.
  std::set<long> seen;
  for (int i = 0; i < 50; ++i) seen.insert(backoff(2, 1000ms, 60000ms, rng).count());
  EXPECT_GT(seen.size(), 10u);
}

TEST(Decide, FullBatchGoesAtOnceElseWaitsForBatchTime) {
  const auto t0 = std::chrono::steady_clock::now();
  auto d = decide(0, 10, t0, 1000ms, false, t0);
  EXPECT_EQ(d.send, 0u);
  d = decide(25, 10, t0, 1000ms, false, t0);
  EXPECT_EQ(d.send, 10u);  // capped at batch_size
  d = decide(3, 10, t0, 1000ms, false, t0 + 10ms);
  EXPECT_EQ(d.send, 0u);
  EXPECT_EQ(d.wait_until, t0 + 1000ms);
  d = decide(3, 10, t0, 1000ms, false, t0 + 1000ms);
  EXPECT_EQ(d.send, 3u);  // the oldest waited batch_time
  d = decide(3, 10, t0, 1000ms, true, t0);
  EXPECT_EQ(d.send, 3u);  // a retry does not wait to fill up
}

TEST(Rows, RoundTripAndRejectMalformed) {
  const std::string json = R"({"event":"bounce","id":"x"})";
  Row r;
  ASSERT_TRUE(decode_row(encode_row(1700000000123, "HTTP 400", json), r));
  EXPECT_EQ(r.queued_ms, 1700000000123);
  EXPECT_EQ(r.reason, "HTTP 400");
  EXPECT_EQ(r.json, json);
  ASSERT_TRUE(decode_row(encode_row(5, "", ""), r));
  EXPECT_EQ(r.reason, "");
  EXPECT_FALSE(decode_row("", r));
  EXPECT_FALSE(decode_row(std::string("\x02") + std::string(20, 'a'), r));
  auto cut = encode_row(5, "a long reason", "{}");
  EXPECT_FALSE(decode_row(cut.substr(0, 14), r));  // reason length past the end
}

TEST(BatchBody, IsAJsonArrayOfTheEvents) {
  std::vector<std::string> events{R"({"a":1})", R"({"b":2})"};
  EXPECT_EQ(batch_body(events.begin(), events.end(), [](const std::string& s) { return s; }),
            R"([{"a":1},{"b":2}])");
  EXPECT_EQ(batch_body(events.begin(), events.begin(), [](const std::string& s) { return s; }),
            "[]");
}
