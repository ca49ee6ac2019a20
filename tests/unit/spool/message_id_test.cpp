// Tests for spool/message_id: layout, hex, ordering, generator.
#include "spool/message_id.hpp"

#include <gtest/gtest.h>
#include <chrono>
#include <set>

using mailgate::spool::IdGenerator;
using mailgate::spool::MessageId;

TEST(MessageId, LayoutIsBigEndian) {
  auto id = MessageId::make(0x010203040506ull, 0x0708, 0x090a0b0c0d0e0f10ull);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(id.bytes[i], i + 1) << i;
  EXPECT_EQ(id.millis(), 0x010203040506ull);
  EXPECT_EQ(id.worker(), 0x0708);
  EXPECT_EQ(id.counter(), 0x090a0b0c0d0e0f10ull);
  EXPECT_EQ(id.key().size(), 16u);
  EXPECT_EQ(static_cast<unsigned char>(id.key()[0]), 1);
}

TEST(MessageId, ExtremesRoundTrip) {
  auto id = MessageId::make((1ull << 48) - 1, 0xffff, UINT64_MAX);
  EXPECT_EQ(id.millis(), (1ull << 48) - 1);
  EXPECT_EQ(id.worker(), 0xffff);
  EXPECT_EQ(id.counter(), UINT64_MAX);
  EXPECT_EQ(id.hex(), std::string(32, 'f'));
  // Only the low 48 bits of millis are kept.
  EXPECT_EQ(MessageId::make(1ull << 48 | 5, 0, 0).millis(), 5u);
}

TEST(MessageId, HexRoundTrip) {
  auto id = MessageId::make(1700000000123ull, 3, 42);
  auto hex = id.hex();
  ASSERT_EQ(hex.size(), 32u);
  for (char c : hex) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
  EXPECT_EQ(hex, "018bcfe5687b0003000000000000002a");
  auto back = MessageId::from_hex(hex);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, id);
  auto upper = MessageId::from_hex("018BCFE5687B0003000000000000002A");
  ASSERT_TRUE(upper);
  EXPECT_EQ(*upper, id);
}

TEST(MessageId, FromHexIsStrict) {
  EXPECT_FALSE(MessageId::from_hex(""));
  EXPECT_FALSE(MessageId::from_hex(std::string(31, '0')));
  EXPECT_FALSE(MessageId::from_hex(std::string(33, '0')));
  EXPECT_FALSE(MessageId::from_hex(std::string(31, '0') + "g"));
  EXPECT_FALSE(MessageId::from_hex(" " + std::string(31, '0')));
  EXPECT_FALSE(MessageId::from_hex("0x" + std::string(30, '0')));
  EXPECT_FALSE(MessageId::from_hex(std::string(31, '0') + '\0'));
  EXPECT_FALSE(MessageId::from_hex(std::string(15, '0') + "-" + std::string(16, '0')));
  EXPECT_TRUE(MessageId::from_hex(std::string(32, '0')));
}

TEST(MessageId, FromKeyTakesFirst16Bytes) {
  auto id = MessageId::make(9, 8, 7);
  EXPECT_EQ(MessageId::from_key(id.key()), id);
  EXPECT_EQ(MessageId::from_key(std::string(id.key()) + "example.com"), id);
  EXPECT_FALSE(MessageId::from_key(id.key().substr(0, 15)));
}

TEST(MessageId, OrdersByTimeThenWorkerThenCounter) {
  auto a = MessageId::make(100, 0xffff, UINT64_MAX);
  auto b = MessageId::make(101, 0, 0);
  auto c = MessageId::make(101, 1, 0);
  auto d = MessageId::make(101, 1, 1);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
  // Byte order of the keys agrees with the comparison (RocksDB sorts keys bytewise).
  EXPECT_LT(a.key(), b.key());
  EXPECT_LT(b.key(), c.key());
  EXPECT_LT(c.key(), d.key());
  EXPECT_NE(a, b);
  EXPECT_EQ(d, MessageId::make(101, 1, 1));
}

TEST(IdGenerator, MonotonicUniqueAndCurrent) {
  auto now = [] {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  };
  auto before = now();
  IdGenerator gen(7, 1000);
  std::set<MessageId> seen;
  MessageId prev{};
  for (int i = 0; i < 20000; ++i) {
    auto id = gen.next();
    EXPECT_EQ(id.worker(), 7);
    EXPECT_EQ(id.counter(), 1000u + i);
    if (i > 0) {
      EXPECT_LT(prev, id);
    }
    seen.insert(id);
    prev = id;
  }
  auto after = now();
  EXPECT_EQ(seen.size(), 20000u);
  EXPECT_GE(seen.begin()->millis(), before);
  EXPECT_LE(seen.rbegin()->millis(), after);
}

TEST(IdGenerator, WorkersNeverCollide) {
  IdGenerator a(1, 1), b(2, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_NE(a.next(), b.next());
}
