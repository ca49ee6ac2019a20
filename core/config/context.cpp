// config/context: error texts (see context.hpp).
#include "config/context.hpp"

#include <fmt/format.h>

namespace mailgate::config {

Context::Context(std::string file, std::vector<Override> overrides, std::string call)
    : file_(std::move(file)), overrides_(std::move(overrides)), call_(std::move(call)) {}

Context Context::in_call(std::string call) const {
  Context c = *this;
  c.call_ = std::move(call);
  return c;
}

void Context::fail(const std::string& key, const std::string& message) const {
  std::string msg = file_.empty() ? message : file_ + ": " + message;
  for (const auto& o : overrides_) {
    // A --set names the key itself, one inside it, or a table it sits in.
    const bool related = o.key == key || o.key.starts_with(key + ".") ||
                         o.key.starts_with(key + "[") || key.starts_with(o.key + ".") ||
                         key.starts_with(o.key + "[");
    if (related) {
      msg += " (from --set " + o.text + ")";
      break;
    }
  }
  throw Error(msg);
}

void Context::expected(const std::string& key, std::string_view what, const Value& v) const {
  fail(key, fmt::format("{}: expected {}, got {}", key, what, describe(v)));
}

}  // namespace mailgate::config
