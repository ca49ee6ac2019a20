// policy/units: the units of the config file (DESIGN §6).
// Sizes: integer bytes, or "N KB|MB|GB" (powers of 1000) / "N KiB|MiB|GiB"
// (powers of 1024), "B" allowed, optional space, case-sensitive suffixes.
// Durations: seconds (number), or "N ms|s|m|h|d" (e.g. "500ms", "5m").
// Rates: "N/s", "N/min", "N/h". Promises: overflow, negatives, junk and empty
// strings are errors (nullopt), never silently zero. Fractions ("1.5MB",
// "0.5s") are allowed when the result is a whole number of bytes /
// milliseconds, else an error (no rounding). A rate's N must be > 0.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace mailgate::policy {

using Duration = std::chrono::milliseconds;

struct Rate {
  double count = 0;    // events ...
  Duration per{1000};  // ... per this interval
  double per_second() const { return count * 1000.0 / static_cast<double>(per.count()); }
};

std::optional<std::uint64_t> parse_size(std::string_view s);
std::optional<Duration> parse_duration(std::string_view s);
std::optional<Rate> parse_rate(std::string_view s);

}  // namespace mailgate::policy
