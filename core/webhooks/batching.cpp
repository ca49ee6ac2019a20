// webhooks/batching: see batching.hpp.
#include "webhooks/batching.hpp"

#include <algorithm>

namespace mailgate::webhooks {

PostOutcome classify(bool answered, long status) {
  if (!answered) return PostOutcome::Retry;
  if (status >= 200 && status < 300) return PostOutcome::Ack;
  if (status == 408 || status == 429 || status >= 500) return PostOutcome::Retry;
  return PostOutcome::Dead;
}

std::chrono::milliseconds backoff(unsigned failures, std::chrono::milliseconds first,
                                  std::chrono::milliseconds max, std::mt19937_64& rng) {
  using ms = std::chrono::milliseconds;
  ms d = first;
  for (unsigned i = 1; i < failures && d < max; ++i) d *= 2;
  d = std::clamp(d, ms(1), std::max(max, ms(1)));
  std::uniform_int_distribution<std::int64_t> half(d.count() / 2, d.count());
  return ms(half(rng));
}

BatchDecision decide(std::size_t pending, std::size_t batch_size,
                     std::chrono::steady_clock::time_point oldest_arrival,
                     std::chrono::milliseconds batch_time, bool retrying,
                     std::chrono::steady_clock::time_point now) {
  BatchDecision d;
  if (pending == 0) return d;
  const auto due = oldest_arrival + batch_time;
  if (pending >= batch_size || retrying || now >= due) {
    d.send = std::min(pending, batch_size);
  } else {
    d.wait_until = due;
  }
  return d;
}

std::string encode_row(std::int64_t queued_ms, std::string_view reason, std::string_view json) {
  std::string out;
  reason = reason.substr(0, 0xffff);
  out.reserve(11 + reason.size() + json.size());
  out += '\x01';
  const auto t = static_cast<std::uint64_t>(queued_ms);
  for (int i = 7; i >= 0; --i) out += static_cast<char>((t >> (8 * i)) & 0xff);
  out += static_cast<char>(reason.size() >> 8);
  out += static_cast<char>(reason.size() & 0xff);
  out += reason;
  out += json;
  return out;
}

bool decode_row(std::string_view v, Row& out) {
  if (v.size() < 11 || v[0] != '\x01') return false;
  std::uint64_t t = 0;
  for (int i = 1; i <= 8; ++i) t = (t << 8) | static_cast<unsigned char>(v[i]);
  const std::size_t n = (static_cast<std::size_t>(static_cast<unsigned char>(v[9])) << 8) |
                        static_cast<unsigned char>(v[10]);
  if (v.size() < 11 + n) return false;
  out.queued_ms = static_cast<std::int64_t>(t);
  out.reason.assign(v.substr(11, n));
  out.json.assign(v.substr(11 + n));
  return true;
}

}  // namespace mailgate::webhooks
