// Table-driven tests of config/units: sizes, durations and rates, valid and invalid.
#include "config/units.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mailgate::config {
namespace {

using namespace std::chrono_literals;

TEST(Units, SizeValid) {
  const std::vector<std::pair<std::string, std::uint64_t>> cases = {
      {"0", 0},
      {"1", 1},
      {"4096", 4096},
      {"100B", 100},
      {"100 B", 100},
      {"25MB", 25'000'000},
      {"25 MB", 25'000'000},
      {"1KB", 1000},
      {"1GB", 1'000'000'000},
      {"2TB", 2'000'000'000'000},
      {"512KiB", 512 * 1024},
      {"1MiB", 1 << 20},
      {"1GiB", 1ull << 30},
      {"3TiB", 3ull << 40},
      {"1.5MB", 1'500'000},
      {"1.5KiB", 1536},
      {"0.5KiB", 512},
      {"2.000B", 2},
      {"007KB", 7000},
      {"18446744073709551615", 18446744073709551615ull},
      {"16777215.5TiB", 18446743523953737728ull},  // 2^64 - 2^39
  };
  for (const auto& [text, want] : cases) {
    auto got = parse_size(text);
    ASSERT_TRUE(got.has_value()) << text;
    EXPECT_EQ(*got, want) << text;
  }
}

TEST(Units, SizeInvalid) {
  for (const char* text : {
           "",
           " ",
           "MB",
           "-1",
           "-1MB",
           "+1",
           "1 ",
           " 1",
           "1  MB",
           "1MB ",
           "1mb",
           "1Mb",
           "1kb",
           "1K",
           "1M",
           "1G",
           "1KIB",
           "1kib",
           "1 MiBx",
           "1MBB",
           "1.",
           ".5MB",
           "1..5MB",
           "1.5",
           "0.1KiB",
           "1.0000001KB",
           "1e3",
           "0x10",
           "1,000",
           "1_000",
           "abc",
           "25MB/s",
           "18446744073709551616",
           "18446744073709551615KB",
           "99999999999999999999999",
           "17TiB000",
           "16777216TiB",
           "1.0000000000000000001MB",
       }) {
    EXPECT_FALSE(parse_size(text).has_value()) << '"' << text << '"';
  }
  EXPECT_FALSE(parse_size(std::string_view("1\0MB", 4)).has_value());
}

TEST(Units, DurationValid) {
  const std::vector<std::pair<std::string, Duration>> cases = {
      {"0", 0ms},       {"30", 30s},      {"0.5", 500ms}, {"500ms", 500ms}, {"500 ms", 500ms},
      {"30s", 30s},     {"1.5s", 1500ms}, {"5m", 5min},   {"1h", 1h},       {"2d", 48h},
      {"0.25h", 15min}, {"1.5m", 90s},    {"0ms", 0ms},   {"86400", 24h},
  };
  for (const auto& [text, want] : cases) {
    auto got = parse_duration(text);
    ASSERT_TRUE(got.has_value()) << text;
    EXPECT_EQ(got->count(), want.count()) << text;
  }
}

TEST(Units, DurationInvalid) {
  for (const char* text : {
           "",
           "s",
           "-1",
           "-5m",
           "5M",
           "5 min",
           "5min",
           "1w",
           "1y",
           "5mss",
           "5 ",
           " 5",
           "0.5ms",
           "1.0005s",
           "1.",
           ".5s",
           "1e3",
           "5m30s",
           "abc",
           "9999999999999999999d",
           "99999999999999999999",
       }) {
    EXPECT_FALSE(parse_duration(text).has_value()) << '"' << text << '"';
  }
}

TEST(Units, RateValid) {
  struct Case {
    const char* text;
    double count;
    Duration per;
    double per_second;
  };
  const std::vector<Case> cases = {
      {"50/s", 50, 1s, 50},    {"600/min", 600, 60s, 10},    {"3600/h", 3600, 1h, 1},
      {"0.5/s", 0.5, 1s, 0.5}, {"1.5/min", 1.5, 60s, 0.025},
  };
  for (const auto& c : cases) {
    auto got = parse_rate(c.text);
    ASSERT_TRUE(got.has_value()) << c.text;
    EXPECT_DOUBLE_EQ(got->count, c.count) << c.text;
    EXPECT_EQ(got->per.count(), c.per.count()) << c.text;
    EXPECT_DOUBLE_EQ(got->per_second(), c.per_second) << c.text;
  }
}

TEST(Units, RateInvalid) {
  for (const char* text :
       {"", "50", "50/", "/s", "50/m", "50/sec", "50/hour", "50/d", "50 /s", "50/ s", "-1/s", "0/s",
        "0.0/min", "50/s ", "50/S", "x/s", "50/s/s", "1e3/s"}) {
    EXPECT_FALSE(parse_rate(text).has_value()) << '"' << text << '"';
  }
}

}  // namespace
}  // namespace mailgate::config

namespace mailgate::config {
namespace {

using namespace std::chrono_literals;

TEST(Units, FormatIsExactAndShort) {
  const std::vector<std::pair<std::uint64_t, std::string>> sizes = {
      {0, "0"},
      {1000, "1KB"},
      {1024, "1KiB"},
      {1'000'000'000, "1GB"},
      {256 * 1024, "256KiB"},
      {64ull << 20, "64MiB"},
      {25'000'000, "25MB"},
      {1500, "1500 bytes"},
      {1'500'000, "1500KB"},
      {1ull << 40, "1TiB"},
  };
  for (const auto& [n, text] : sizes) {
    EXPECT_EQ(format_size(n), text);
    EXPECT_EQ(parse_size(format_size(n) == "1500 bytes" ? "1500" : format_size(n)), n) << text;
  }
  const std::vector<std::pair<Duration, std::string>> durations = {
      {0ms, "0s"}, {300ms, "300ms"}, {1500ms, "1500ms"}, {5s, "5s"},
      {60s, "1m"}, {90s, "90s"},     {4h, "4h"},         {120h, "5d"},
  };
  for (const auto& [d, text] : durations) {
    EXPECT_EQ(format_duration(d), text);
    EXPECT_EQ(parse_duration(text), d) << text;
  }
  EXPECT_EQ(format_rate(*parse_rate("60/min")), "60/min");
  EXPECT_EQ(format_rate(*parse_rate("2.5/s")), "2.5/s");
  EXPECT_EQ(format_rate(*parse_rate("100/h")), "100/h");
}

}  // namespace
}  // namespace mailgate::config
