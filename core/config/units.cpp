// config/units: parses the size, duration and rate strings of the config file.
// Grammar: a decimal number (digits, optionally "." and more digits; no sign,
// no exponent, no surrounding blanks), an optional single space, then a
// case-sensitive suffix. Arithmetic is exact (128-bit integers): a fraction is
// allowed only when the result is a whole number of bytes ("1.5KB" = 1500,
// "0.5KiB" = 512) or milliseconds ("1.5s" = 1500ms); "0.1KiB" or "0.5ms" are
// errors rather than being rounded. Promises: negatives, overflow (beyond
// uint64 bytes / int64 milliseconds), junk, empty strings and trailing garbage
// all give nullopt, never a silent zero or a truncated value.
#include "config/units.hpp"

#include <cstddef>
#include <cstdio>
#include <iterator>
#include <limits>
#include <span>

namespace mailgate::config {
namespace {

using u128 = unsigned __int128;

constexpr std::size_t kMaxFractionDigits = 18;

struct Decimal {
  u128 integer = 0;   // integer part
  u128 frac_num = 0;  // fraction = frac_num / frac_den
  u128 frac_den = 1;
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Consumes "digits[.digits]" from the front of `s`. Fails on a missing
// integer part, a dangling ".", more than 18 fraction digits or an integer
// part beyond 2^64 (every caller's limit is below that).
std::optional<Decimal> take_decimal(std::string_view& s) {
  Decimal d;
  std::size_t i = 0;
  if (i >= s.size() || !is_digit(s[i])) return std::nullopt;
  for (; i < s.size() && is_digit(s[i]); ++i) {
    d.integer = d.integer * 10 + static_cast<unsigned>(s[i] - '0');
    if (d.integer > static_cast<u128>(std::numeric_limits<std::uint64_t>::max())) {
      return std::nullopt;
    }
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t digits = 0;
    for (; i < s.size() && is_digit(s[i]); ++i, ++digits) {
      if (digits == kMaxFractionDigits) return std::nullopt;
      d.frac_num = d.frac_num * 10 + static_cast<unsigned>(s[i] - '0');
      d.frac_den *= 10;
    }
    if (digits == 0) return std::nullopt;
  }
  s.remove_prefix(i);
  return d;
}

// d * mult, exact; nullopt if not whole or above `max`.
std::optional<u128> scale_exact(const Decimal& d, u128 mult, u128 max) {
  const u128 frac = d.frac_num * mult;  // < 10^18 * 2^40: fits easily
  if (frac % d.frac_den != 0) return std::nullopt;
  const u128 whole = d.integer * mult;  // < 2^64 * 2^40
  const u128 total = whole + frac / d.frac_den;
  if (total > max) return std::nullopt;
  return total;
}

// Strips one optional space between the number and a suffix ("25 MB"); a
// space with nothing after it is junk.
bool take_optional_space(std::string_view& s) {
  if (!s.empty() && s.front() == ' ') {
    s.remove_prefix(1);
    return !s.empty();
  }
  return true;
}

struct Suffix {
  std::string_view name;
  u128 multiplier;  // units of the result per unit of the suffix
};

// The size and duration grammar: decimal, optional space, one of `suffixes`
// (matched exactly); the value in the result's units, nullopt when it is not
// whole or above `max`.
std::optional<u128> parse_with_suffix(std::string_view s, std::span<const Suffix> suffixes,
                                      u128 max) {
  auto d = take_decimal(s);
  if (!d || !take_optional_space(s)) return std::nullopt;
  for (const auto& suffix : suffixes) {
    if (s == suffix.name) return scale_exact(*d, suffix.multiplier, max);
  }
  return std::nullopt;
}

constexpr Suffix kSizeSuffixes[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"TB", 1000ull * 1000 * 1000 * 1000},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
};

constexpr Suffix kDurationSuffixes[] = {
    {"", 1000},  // plain number: seconds
    {"ms", 1},  {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000},
};

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view s) {
  const auto bytes = parse_with_suffix(s, kSizeSuffixes, std::numeric_limits<std::uint64_t>::max());
  if (!bytes) return std::nullopt;
  return static_cast<std::uint64_t>(*bytes);
}

std::optional<Duration> parse_duration(std::string_view s) {
  const auto ms = parse_with_suffix(s, kDurationSuffixes,
                                    static_cast<u128>(std::numeric_limits<Duration::rep>::max()));
  if (!ms) return std::nullopt;
  return Duration{static_cast<Duration::rep>(*ms)};
}

std::optional<Rate> parse_rate(std::string_view s) {
  auto d = take_decimal(s);
  if (!d) return std::nullopt;
  if (s.empty() || s.front() != '/') return std::nullopt;
  s.remove_prefix(1);
  Duration per;
  if (s == "s") {
    per = Duration{1000};
  } else if (s == "min") {
    per = Duration{60 * 1000};
  } else if (s == "h") {
    per = Duration{3600 * 1000};
  } else {
    return std::nullopt;
  }
  const double count = static_cast<double>(d->integer) +
                       static_cast<double>(d->frac_num) / static_cast<double>(d->frac_den);
  // A rate of zero would stop all traffic silently; use a hook to refuse.
  if (!(count > 0)) return std::nullopt;
  return Rate{count, per};
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  std::uint64_t best = bytes;
  std::string_view unit = " bytes";
  for (const auto& s : kSizeSuffixes) {
    const auto m = static_cast<std::uint64_t>(s.multiplier);
    if (s.name.size() < 2 || bytes % m != 0) continue;
    if (bytes / m < best) best = bytes / m, unit = s.name;  // KB before KiB: a tie stays decimal
  }
  return std::to_string(best) + std::string(unit);
}

std::string format_duration(Duration d) {
  const auto ms = d.count();
  if (ms == 0) return "0s";
  // Largest unit first: "d", "h", "m", "s", "ms".
  for (auto it = std::rbegin(kDurationSuffixes); it != std::rend(kDurationSuffixes); ++it) {
    const auto m = static_cast<Duration::rep>(it->multiplier);
    if (!it->name.empty() && ms % m == 0) return std::to_string(ms / m) + std::string(it->name);
  }
  return std::to_string(ms) + "ms";
}

std::string format_rate(const Rate& r) {
  const auto per = r.per.count();
  const char* unit = per == 1000 ? "s" : per == 60 * 1000 ? "min" : "h";
  char count[32];
  std::snprintf(count, sizeof count, "%.15g", r.count);
  return std::string(count) + "/" + unit;
}

}  // namespace mailgate::config
