// mime/date: rfc5322_date() for whole seconds, finer times (rounded down, also
// before 1970: the millisecond times the spool and the DSNs use), leap days and
// the weekday; is_rfc5322_date_time() on the forms it accepts and refuses.
// (The builder's use of both: message_builder_test.cpp.)
#include "mime/date.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace mailgate::mime {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

sys_time<milliseconds> unix_ms(std::int64_t ms) { return sys_time<milliseconds>(milliseconds(ms)); }

TEST(Rfc5322Date, UtcWholeSeconds) {
  EXPECT_EQ(rfc5322_date(sys_days{2026y / November / 28} + 17h + 4min),
            "Sat, 28 Nov 2026 17:04:00 +0000");
  EXPECT_EQ(rfc5322_date(system_clock::time_point{}), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(sys_seconds{}), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(sys_days{2024y / February / 29} + 23h + 59min + 59s + 999ms),
            "Thu, 29 Feb 2024 23:59:59 +0000");
  EXPECT_EQ(rfc5322_date(sys_days{2000y / January / 2} + 5h + 6min + 7s),
            "Sun, 02 Jan 2000 05:06:07 +0000");
  EXPECT_EQ(rfc5322_date(sys_days{2026y / December / 31} + 23h + 59min + 59s),
            "Thu, 31 Dec 2026 23:59:59 +0000");
}

TEST(Rfc5322Date, MillisecondsRoundDown) {
  EXPECT_EQ(rfc5322_date(unix_ms(1795876089000)), "Sat, 28 Nov 2026 14:28:09 +0000");
  EXPECT_EQ(rfc5322_date(unix_ms(1795876089999)), "Sat, 28 Nov 2026 14:28:09 +0000");
  EXPECT_EQ(rfc5322_date(unix_ms(0)), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(unix_ms(-1)), "Wed, 31 Dec 1969 23:59:59 +0000");  // floor, not truncation
  EXPECT_EQ(rfc5322_date(system_clock::time_point{} - 1ns), "Wed, 31 Dec 1969 23:59:59 +0000");
}

TEST(Rfc5322Date, WhatItWritesItAccepts) {
  for (std::int64_t ms : {0LL, 951782400000LL, 1795876089123LL, 4102444799000LL}) {
    const std::string date = rfc5322_date(unix_ms(ms));
    EXPECT_TRUE(is_rfc5322_date_time(date)) << date;
  }
}

TEST(IsRfc5322DateTime, CurrentSyntaxOnly) {
  for (const std::string good : {"Sat, 28 Nov 2026 17:04:00 +0000", "Mon, 1 Dec 2025 08:00 -0500",
                                 "1 Dec 2025 08:00:00 +0100", "sat,28 nov 2026 17:04:60 +1400",
                                 " \tSat, 28 Nov 2026 17:04:00 +0000\t "}) {
    EXPECT_TRUE(is_rfc5322_date_time(good)) << good;
  }
  for (const std::string bad :
       {"yesterday", "Sat, 28 Nov 2026 25:00:00 +0000", "Sat, 28 Nov 2026 17:04:00 GMT",
        "Sat 28 Nov 2026 17:04:00 +0000", "28 Nov 26 17:04 +0000", "Sat, 32 Nov 2026 17:04 +0000",
        "Sat, 28 Foo 2026 17:04 +0000", "Sat, 28 Nov 2026 17:04 +0000 (comment)",
        "Sat, 28 Nov 2026 17:4 +0000", "Sat, 28 Nov 2026 17:04 +0060", "", " "}) {
    EXPECT_FALSE(is_rfc5322_date_time(bad)) << bad;
  }
}

}  // namespace
}  // namespace mailgate::mime
