// spool/message_id: encoding of 128-bit message ids (see message_id.hpp).
// Promises: make() and the accessors round-trip exactly (millis keeps its low
// 48 bits); from_hex() accepts exactly 32 hex digits (either case) and nothing
// else; IdGenerator::next() never returns the same id twice and, within one
// generator, returns strictly increasing ids even if the wall clock steps back
// (it never lets its millisecond field go backwards).
#include "spool/message_id.hpp"

#include "text/ascii.hpp"

#include <algorithm>
#include <chrono>

namespace mailgate::spool {

namespace {

std::uint64_t load_be(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

void store_be(std::uint8_t* p, int n, std::uint64_t v) {
  for (int i = n - 1; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(v & 0xff);
    v >>= 8;
  }
}

constexpr std::uint64_t kMillisMask = (std::uint64_t{1} << 48) - 1;

}  // namespace

MessageId MessageId::make(std::uint64_t millis, std::uint16_t worker, std::uint64_t counter) {
  MessageId id;
  store_be(id.bytes.data(), 6, millis & kMillisMask);
  store_be(id.bytes.data() + 6, 2, worker);
  store_be(id.bytes.data() + 8, 8, counter);
  return id;
}

std::optional<MessageId> MessageId::from_hex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  MessageId id;
  for (std::size_t i = 0; i < 16; ++i) {
    int hi = text::hex_value(hex[2 * i]), lo = text::hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return id;
}

std::optional<MessageId> MessageId::from_key(std::string_view key) {
  if (key.size() < 16) return std::nullopt;
  MessageId id;
  std::copy_n(reinterpret_cast<const std::uint8_t*>(key.data()), 16, id.bytes.begin());
  return id;
}

std::string MessageId::hex() const {
  std::string out;
  out.reserve(32);
  for (auto b : bytes) text::append_hex(out, b, text::HexCase::Lower);
  return out;
}

std::uint64_t MessageId::millis() const { return load_be(bytes.data(), 6); }
std::uint16_t MessageId::worker() const {
  return static_cast<std::uint16_t>(load_be(bytes.data() + 6, 2));
}
std::uint64_t MessageId::counter() const { return load_be(bytes.data() + 8, 8); }

std::int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

MessageId IdGenerator::next() {
  auto now = wall_clock_ms();
  auto millis = static_cast<std::uint64_t>(std::max<std::int64_t>(now, 0)) & kMillisMask;
  // A clock step backwards must not reorder this generator's ids.
  last_millis_ = std::max(last_millis_, millis);
  return MessageId::make(last_millis_, worker_, counter_++);
}

}  // namespace mailgate::spool
