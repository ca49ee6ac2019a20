// config/units: the units of the config file (DESIGN §6).
// Sizes: integer bytes, or "N KB|MB|GB" (powers of 1000) / "N KiB|MiB|GiB"
// (powers of 1024), "B" allowed, optional space, case-sensitive suffixes.
// Durations: seconds (number), or "N ms|s|m|h|d" (e.g. "500ms", "5m").
// Rates: "N/s", "N/min", "N/h". Promises: overflow, negatives, junk and empty
// strings are errors (nullopt), never silently zero. Fractions ("1.5MB",
// "0.5s") are allowed when the result is a whole number of bytes /
// milliseconds, else an error (no rounding). A rate's N must be > 0.
// The format_* functions write a value back in the same units, exactly
// (parse(format(x)) == x), as the reference and log lines show limits.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::config {

using Duration = std::chrono::milliseconds;

struct Rate {
  double count = 0;    // events ...
  Duration per{1000};  // ... per this interval
  double per_second() const { return count * 1000.0 / static_cast<double>(per.count()); }
};

std::optional<std::uint64_t> parse_size(std::string_view s);
std::optional<Duration> parse_duration(std::string_view s);
std::optional<Rate> parse_rate(std::string_view s);

// "1GB", "256KiB", "1500 bytes"... the shortest whole number of the largest unit
// (decimal units win a tie); "0" for zero.
std::string format_size(std::uint64_t bytes);
// "5m", "300ms", "4h", "5d": the largest unit that divides the value exactly.
std::string format_duration(Duration d);
// "60/min", "2.5/s".
std::string format_rate(const Rate& r);

}  // namespace mailgate::config
