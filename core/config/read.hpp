// config/read: reads one value of the tree as a typed value, or reports why
// not through the Context (the first error ends the check). These are the
// building blocks of the schema's key kinds; each error text is fixed here,
// once: "expected a string", "expected an integer from 1 to 65535", "expected
// a size (e.g. \"1GB\")", "must be at least 4096 bytes, got 100", "expected a
// duration (e.g. \"30s\", \"5m\")", "must be longer than 0", "expected an
// array of ...", "configure: unknown key 'spool.pth'".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/context.hpp"
#include "config/units.hpp"
#include "config/value.hpp"

namespace mailgate::config {

// A string; a --set value keeps its text (--set http.token=12345 is "12345").
std::string read_string(const Value& v, const std::string& key, const Context& ctx);
bool read_bool(const Value& v, const std::string& key, const Context& ctx);
// An integer (or a whole number) in [min, max].
std::uint64_t read_integer(const Value& v, const std::string& key, const Context& ctx,
                           std::uint64_t min, std::uint64_t max);
// Bytes (a whole number) or a size string; at least `min`.
std::uint64_t read_size(const Value& v, const std::string& key, const Context& ctx,
                        std::uint64_t min = 0);
// Seconds (whole milliseconds, allowing for binary floating point) or a
// duration string; zero only when `allow_zero`.
Duration read_duration(const Value& v, const std::string& key, const Context& ctx,
                       bool allow_zero = false);
// A rate string ("60/min"); `zero_hint` is what else the key takes (" or 0").
Rate read_rate(const Value& v, const std::string& key, const Context& ctx,
               std::string_view zero_hint = "");
// One of `options`; `what` describes them (default: "a | b | c").
std::string read_choice(const Value& v, const std::string& key, const Context& ctx,
                        const std::vector<std::string>& options, std::string_view what = "");
const Table& read_table(const Value& v, const std::string& key, const Context& ctx);
// An array: a table whose keys are exactly 1..n (an empty table is an empty
// array); `what` names its items ("strings", "CIDR networks").
std::vector<const Value*> read_array(const Value& v, const std::string& key, const Context& ctx,
                                     std::string_view what);
// Refuses every key of `t` outside `known` (`path`: the table's own key).
void check_keys(const Table& t, const std::string& path, const std::vector<std::string>& known,
                const Context& ctx);

}  // namespace mailgate::config
