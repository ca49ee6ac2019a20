// config/overrides: --set KEY=VALUE on a value tree, before the schema checks
// it (so a --set value is checked exactly like one from the file).
//   - The text is split at the first '='; the key's dot-separated segments
//     are [A-Za-z0-9_]+; missing tables on the way are created; an all-digit
//     segment is an array index (dns.servers.1=127.0.0.1:5353).
//   - The value is typed from its text: "true"/"false" → boolean, -?digits →
//     integer, -?digits.digits → number, else string; the text is kept, so a
//     string key given "12345" reads the string "12345".
// Promises: malformed input is a config::Error naming the --set
// ("--set X: expected KEY=VALUE", "--set X: bad key 'K' (...)", "--set X:
// 'spool.path' is \"var/spool\", not a table"); nothing is changed then.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "config/value.hpp"

namespace mailgate::config {

struct Assignment {
  std::string text;                   // as given: "listen.2.address=[::1]:0"
  std::vector<std::string> segments;  // "listen", "2", "address"
  Value value;
};

Assignment parse_assignment(const std::string& text);

// An all-digit segment (an array index).
bool is_index(std::string_view segment);

// Sets a.value at a.segments[from..] below `node`, whose key is `path` ("" at
// the top, "listen[2]"). Returns the key as errors name it ("dns.servers[1]").
std::string assign(Value& node, const Assignment& a, std::size_t from, std::string path);

}  // namespace mailgate::config
