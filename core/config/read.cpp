// config/read: the typed readers of config values (see read.hpp).
#include "config/read.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace mailgate::config {

std::string read_string(const Value& v, const std::string& key, const Context& ctx) {
  if (v.type == Value::Type::String) return v.str;
  if (v.raw) return *v.raw;
  ctx.expected(key, "a string", v);
}

bool read_bool(const Value& v, const std::string& key, const Context& ctx) {
  if (v.type != Value::Type::Boolean) ctx.expected(key, "true or false", v);
  return v.boolean;
}

std::uint64_t read_integer(const Value& v, const std::string& key, const Context& ctx,
                           std::uint64_t min, std::uint64_t max) {
  std::optional<long double> n;
  if (v.type == Value::Type::Integer) n = v.integer;
  if (v.type == Value::Type::Number && std::isfinite(v.number) &&
      v.number == std::floor(v.number)) {
    n = v.number;
  }
  if (!n || *n < static_cast<long double>(min) || *n > static_cast<long double>(max)) {
    ctx.expected(key, fmt::format("an integer from {} to {}", min, max), v);
  }
  return static_cast<std::uint64_t>(*n);
}

std::uint64_t read_size(const Value& v, const std::string& key, const Context& ctx,
                        std::uint64_t min) {
  std::optional<std::uint64_t> n;
  if (v.type == Value::Type::Integer && v.integer >= 0) {
    n = static_cast<std::uint64_t>(v.integer);
  } else if (v.type == Value::Type::Number && v.number >= 0 && v.number < 0x1p64 &&
             v.number == std::floor(v.number)) {
    n = static_cast<std::uint64_t>(v.number);
  } else if (v.type == Value::Type::String) {
    n = parse_size(v.str);
  }
  if (!n) ctx.expected(key, "a size (e.g. \"1GB\")", v);
  if (*n < min) ctx.fail(key, fmt::format("{}: must be at least {} bytes, got {}", key, min, *n));
  return *n;
}

Duration read_duration(const Value& v, const std::string& key, const Context& ctx,
                       bool allow_zero) {
  std::optional<Duration> d;
  if (v.type == Value::Type::Integer && v.integer >= 0 &&
      v.integer <= std::numeric_limits<Duration::rep>::max() / 1000) {
    d = Duration{v.integer * 1000};
  } else if (v.type == Value::Type::Number && std::isfinite(v.number) && v.number >= 0 &&
             v.number < 9.2e15) {
    // Whole milliseconds, allowing for binary floating point (0.1 + 0.2).
    const double ms = v.number * 1000.0;
    const double rounded = std::round(ms);
    if (std::fabs(ms - rounded) <= 1e-6 * std::max(1.0, ms)) {
      d = Duration{static_cast<Duration::rep>(rounded)};
    }
  } else if (v.type == Value::Type::String) {
    d = parse_duration(v.str);
  }
  if (!d) ctx.expected(key, "a duration (e.g. \"30s\", \"5m\")", v);
  if (!allow_zero && d->count() == 0) ctx.fail(key, key + ": must be longer than 0");
  return *d;
}

Rate read_rate(const Value& v, const std::string& key, const Context& ctx,
               std::string_view zero_hint) {
  std::optional<Rate> r;
  if (v.type == Value::Type::String) r = parse_rate(v.str);
  if (!r || r->count <= 0)
    ctx.expected(key, fmt::format("a rate (e.g. \"60/min\"){}", zero_hint), v);
  return *r;
}

std::string read_choice(const Value& v, const std::string& key, const Context& ctx,
                        const std::vector<std::string>& options, std::string_view what) {
  if (v.type != Value::Type::String ||
      std::find(options.begin(), options.end(), v.str) == options.end()) {
    std::string all;
    for (const auto& o : options) all += (all.empty() ? "" : " | ") + o;
    ctx.expected(key, what.empty() ? std::string_view(all) : what, v);
  }
  return v.str;
}

const Table& read_table(const Value& v, const std::string& key, const Context& ctx) {
  if (v.type != Value::Type::Table) ctx.expected(key, "a table", v);
  return *v.table;
}

std::vector<const Value*> read_array(const Value& v, const std::string& key, const Context& ctx,
                                     std::string_view what) {
  if (v.type != Value::Type::Table || !v.table->fields.empty() || !v.table->odd_keys.empty()) {
    ctx.expected(key, fmt::format("an array of {}", what), v);
  }
  std::vector<const Value*> out;
  long long next = 1;
  for (const auto& [i, item] : v.table->items) {
    if (i != next++) ctx.expected(key, fmt::format("an array of {} (keys 1..n)", what), v);
    out.push_back(&item);
  }
  return out;
}

void check_keys(const Table& t, const std::string& path, const std::vector<std::string>& known,
                const Context& ctx) {
  const auto unknown = [&](const std::string& key) {
    ctx.fail(key, fmt::format("{}: unknown key '{}'", ctx.call(), key));
  };
  for (const auto& [k, v] : t.fields) {
    if (std::find(known.begin(), known.end(), k) == known.end()) unknown(field_path(path, k));
  }
  if (!t.items.empty()) unknown(item_path(path, t.items.begin()->first));
  if (!t.odd_keys.empty()) {
    unknown(path.empty() ? t.odd_keys.front() : path + "[" + t.odd_keys.front() + "]");
  }
}

}  // namespace mailgate::config
