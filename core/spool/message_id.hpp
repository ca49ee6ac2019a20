// spool/message_id: 128-bit message ids = milliseconds (48 bits) | worker
// (16 bits) | counter (64 bits), stored big-endian (so keys sort by time) and
// printed as 32 lower-case hex characters.
// Promises: ids from different workers never collide (worker bits differ);
// ids never collide across restarts or clock steps because every run starts
// its counters at a floor reserved durably in the spool (Store::reserve_counter_floor).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::spool {

// Milliseconds since the Unix epoch (system clock): the time inside message
// ids, and the clock of queue times, log records and suppression entries.
std::int64_t wall_clock_ms();

struct MessageId {
  std::array<std::uint8_t, 16> bytes{};

  static MessageId make(std::uint64_t millis, std::uint16_t worker, std::uint64_t counter);
  static std::optional<MessageId> from_hex(std::string_view hex);
  static std::optional<MessageId> from_key(std::string_view key);  // first 16 bytes

  std::string hex() const;
  std::string_view key() const {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  std::uint64_t millis() const;
  std::uint16_t worker() const;
  std::uint64_t counter() const;

  friend bool operator==(const MessageId&, const MessageId&) = default;
  friend auto operator<=>(const MessageId&, const MessageId&) = default;
};

// One per worker; not thread-safe (a worker owns it).
class IdGenerator {
 public:
  IdGenerator(std::uint16_t worker, std::uint64_t counter_start)
      : worker_(worker), counter_(counter_start) {}
  // Uses the system clock in milliseconds, never going below the millis of
  // the previous id (so one generator's ids are strictly increasing).
  MessageId next();

 private:
  std::uint16_t worker_;
  std::uint64_t counter_;
  std::uint64_t last_millis_ = 0;
};

}  // namespace mailgate::spool
