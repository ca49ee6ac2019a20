// config/context: how a config error is reported. Every error is one
// config::Error whose text starts with the config file and names the dotted
// key ("conf/mailgate.lua: spool.min_free_space: expected a size (e.g.
// \"1GB\"), got boolean"); an error about a key that a --set gave (or that
// lies below or above one) ends with " (from --set KEY=VALUE)". Checking
// stops at the first error.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/value.hpp"

namespace mailgate::config {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One applied --set, as errors refer to it.
struct Override {
  std::string text;  // as given: "spool.path=/tmp/x"
  std::string key;   // as errors name it: "spool.path", "listen[1].address"
};

class Context {
 public:
  // `call` names the table's origin in unknown-key errors ("configure: unknown key 'x'").
  explicit Context(std::string file, std::vector<Override> overrides = {},
                   std::string call = "configure");

  Context in_call(std::string call) const;
  const std::string& call() const { return call_; }

  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // "KEY: expected WHAT, got DESCRIBE(v)".
  [[noreturn]] void expected(const std::string& key, std::string_view what, const Value& v) const;

 private:
  std::string file_;
  std::vector<Override> overrides_;
  std::string call_;
};

}  // namespace mailgate::config
