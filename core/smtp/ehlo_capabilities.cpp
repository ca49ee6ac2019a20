// smtp/ehlo_capabilities: parsing of EHLO replies into capability flags.
// Promises (see ehlo_capabilities.hpp): total (no input makes it fail), a
// keyword matches only as a whole word, SIZE values are range-checked.
#include "smtp/ehlo_capabilities.hpp"

#include <algorithm>
#include <string_view>
#include <utility>

#include "text/ascii.hpp"

namespace mailgate::smtp {
namespace {

using text::iequals;

// A CR left over from a CRLF line end counts as a blank too.
constexpr std::string_view kBlanks = " \t\r";
constexpr bool is_space(char c) { return kBlanks.find(c) != std::string_view::npos; }

std::string_view trim(std::string_view s) { return text::trim(s, kBlanks); }

// Splits off the first space-separated word of `s` (leading spaces skipped).
std::string_view next_word(std::string_view& s) {
  s = trim(s);
  std::size_t i = 0;
  while (i < s.size() && !is_space(s[i])) ++i;
  std::string_view w = s.substr(0, i);
  s.remove_prefix(i);
  return w;
}

// RFC 4422 §3.1 mechanism name: 1-20 of [A-Z0-9-_] (accepted in any case).
bool valid_mechanism(std::string_view m) {
  if (m.empty() || m.size() > 20) return false;
  return std::all_of(m.begin(), m.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
  });
}

void add_mechanisms(std::string_view params, std::vector<std::string>& out) {
  for (std::string_view m = next_word(params); !m.empty(); m = next_word(params)) {
    if (!valid_mechanism(m)) continue;
    std::string up = text::to_upper(m);
    if (std::find(out.begin(), out.end(), up) == out.end()) out.push_back(std::move(up));
  }
}

// RFC 1870 SIZE parameter: 0 when absent, zero, malformed or too large.
std::uint64_t parse_size(std::string_view params) {
  const std::string_view num = next_word(params);
  if (num.empty() || num.size() > 19) return 0;  // 19 digits always fit in 64 bits
  std::uint64_t v = 0;
  for (char c : num) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

// Keywords that only switch a capability on (their parameters are ignored).
constexpr std::pair<std::string_view, bool EhloCapabilities::*> kFlagKeywords[] = {
    {"PIPELINING", &EhloCapabilities::pipelining},
    {"8BITMIME", &EhloCapabilities::eightbitmime},
    {"SMTPUTF8", &EhloCapabilities::smtputf8},
    {"DSN", &EhloCapabilities::dsn},
    {"STARTTLS", &EhloCapabilities::starttls},
    {"CHUNKING", &EhloCapabilities::chunking},
    {"ENHANCEDSTATUSCODES", &EhloCapabilities::enhanced_status_codes},
    {"BINARYMIME", &EhloCapabilities::binarymime},
};

void keyword_line(std::string_view line, EhloCapabilities& caps) {
  line = trim(line);
  // Legacy "AUTH=LOGIN PLAIN" (pre-RFC 2554 servers and clients).
  if (line.size() > 5 && iequals(line.substr(0, 5), "AUTH=")) {
    add_mechanisms(line.substr(5), caps.auth_mechanisms);
    return;
  }
  std::string_view params = line;
  const std::string_view kw = next_word(params);
  for (const auto& [name, flag] : kFlagKeywords) {
    if (iequals(kw, name)) {
      caps.*flag = true;
      return;
    }
  }
  if (iequals(kw, "SIZE")) {
    caps.size = parse_size(params);
  } else if (iequals(kw, "AUTH")) {
    add_mechanisms(params, caps.auth_mechanisms);
  }
}

}  // namespace

EhloCapabilities parse_ehlo(const Reply& ehlo_reply) {
  EhloCapabilities caps;
  if (ehlo_reply.code != 250) return caps;
  std::string_view text = ehlo_reply.text;
  std::size_t nl = text.find('\n');
  std::string_view greeting = text.substr(0, nl);
  caps.domain = std::string(next_word(greeting));
  while (nl != std::string_view::npos) {
    text.remove_prefix(nl + 1);
    nl = text.find('\n');
    keyword_line(text.substr(0, nl), caps);
  }
  return caps;
}

}  // namespace mailgate::smtp
