// config/schema: the non-template parts of the key kinds (see schema.hpp).
#include "config/schema.hpp"

#include <fmt/format.h>

#include "config/host_port.hpp"

namespace mailgate::config {

std::string integer_type(std::uint64_t min, std::uint64_t max, bool open_ended) {
  return open_ended ? fmt::format("integer ≥ {}", min) : fmt::format("integer {}–{}", min, max);
}

std::string size_type(std::uint64_t min) {
  if (min == 0) return "size";
  return min == 1 ? "size > 0" : "size ≥ " + format_size(min);
}

std::string choice_type(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "`" : " | `") + n + "`";
  return out;
}

void nonempty(const std::string& s, const std::string& key, const Context& ctx) {
  if (s.empty()) ctx.fail(key, key + ": must not be empty");
}

std::string read_host_port(const Value& v, const std::string& key, const Context& ctx) {
  auto s = read_string(v, key, ctx);
  if (!parse_host_port(s)) ctx.expected(key, "\"ip:port\" or \"[ipv6]:port\"", v);
  return s;
}

}  // namespace mailgate::config
