// webhooks/batching: the pure decisions of a webhook sender, apart from I/O
// so they are unit-tested: what an HTTP answer means, how long to wait
// after failures, when a batch goes, and how a spooled event row is encoded.
// Promises: classify: any 2xx acknowledges; 408, 429, 5xx and no answer
// are retried; anything else (other 4xx, 3xx — redirects are not followed —
// 1xx) is permanent (dead letters). backoff: retry_first doubling per
// failure, capped at retry_max, with "equal jitter" (uniform in [d/2, d]).
// Rows round-trip through encode_row/decode_row; a malformed row decodes false.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace mailgate::webhooks {

enum class PostOutcome { Ack, Retry, Dead };

// `answered`: an HTTP status came back (else: connection error, timeout).
PostOutcome classify(bool answered, long status);

// Wait before the next try after `failures` (>= 1) failed POSTs in a row.
std::chrono::milliseconds backoff(unsigned failures, std::chrono::milliseconds first,
                                  std::chrono::milliseconds max, std::mt19937_64& rng);

// How many events go now (0: wait until `wait_until`). A batch goes when
// `batch_size` events are pending, or when the oldest has waited
// `batch_time`, or right away when retrying (`retrying`: no fill wait).
struct BatchDecision {
  std::size_t send = 0;
  std::chrono::steady_clock::time_point wait_until{};
};
BatchDecision decide(std::size_t pending, std::size_t batch_size,
                     std::chrono::steady_clock::time_point oldest_arrival,
                     std::chrono::milliseconds batch_time, bool retrying,
                     std::chrono::steady_clock::time_point now);

// The value of a webhook row (spool family `webhook`): version 1 | when the
// event was queued (ms since the epoch, u64 BE) | reason length (u16 BE) |
// reason (dead letters: why) | the event's JSON.
struct Row {
  std::int64_t queued_ms = 0;
  std::string reason;
  std::string json;
};
std::string encode_row(std::int64_t queued_ms, std::string_view reason, std::string_view json);
bool decode_row(std::string_view value, Row& out);

// The POST body: the events' JSON objects as one JSON array.
template <class It, class Json>
std::string batch_body(It first, It last, Json json_of) {
  std::string body = "[";
  for (auto it = first; it != last; ++it) {
    if (body.size() > 1) body += ',';
    body += json_of(*it);
  }
  body += ']';
  return body;
}

}  // namespace mailgate::webhooks
