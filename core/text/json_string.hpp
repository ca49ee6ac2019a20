// text/json_string: appends a string as a JSON string literal (RFC 8259 §7),
// for writers that build a JSON line directly instead of through a document
// tree (the delivery log writes one per message; a tree costs a dozen heap
// allocations a record).
// Promises: the output is always valid JSON whatever the input: `"` and `\`
// escaped, the C0 controls as \b \f \n \r \t or \u00XX (lower-case hex), DEL
// and well-formed UTF-8 copied as they are, each octet that does not start a
// well-formed UTF-8 character replaced by U+FFFD. For well-formed input this
// is byte for byte what nlohmann::json::dump() writes (ensure_ascii off).
#pragma once

#include <string>
#include <string_view>

namespace mailgate::text {

void append_json_string(std::string& out, std::string_view s);

}  // namespace mailgate::text
