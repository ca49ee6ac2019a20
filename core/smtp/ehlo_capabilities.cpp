// smtp/ehlo_capabilities: parsing of EHLO replies into capability flags.
// Promises (see ehlo_capabilities.hpp): total (no input makes it fail), a
// keyword matches only as a whole word, SIZE values are range-checked.
#include "smtp/ehlo_capabilities.hpp"

#include <algorithm>
#include <string_view>

namespace mailgate::smtp {
namespace {

constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Splits off the first space-separated word of `s` (leading spaces skipped).
std::string_view next_word(std::string_view& s) {
  s = trim(s);
  std::size_t i = 0;
  while (i < s.size() && !is_space(s[i])) ++i;
  std::string_view w = s.substr(0, i);
  s.remove_prefix(i);
  return w;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 32);
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 32);
    if (x != y) return false;
  }
  return true;
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
    std::string up(m);
    for (char& c : up) {
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    }
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

void keyword_line(std::string_view line, EhloCapabilities& caps) {
  line = trim(line);
  // Legacy "AUTH=LOGIN PLAIN" (pre-RFC 2554 servers and clients).
  if (line.size() > 5 && iequals(line.substr(0, 5), "AUTH=")) {
    add_mechanisms(line.substr(5), caps.auth_mechanisms);
    return;
  }
  std::string_view params = line;
  const std::string_view kw = next_word(params);
  if (iequals(kw, "PIPELINING")) {
    caps.pipelining = true;
  } else if (iequals(kw, "8BITMIME")) {
    caps.eightbitmime = true;
  } else if (iequals(kw, "SMTPUTF8")) {
    caps.smtputf8 = true;
  } else if (iequals(kw, "DSN")) {
    caps.dsn = true;
  } else if (iequals(kw, "STARTTLS")) {
    caps.starttls = true;
  } else if (iequals(kw, "CHUNKING")) {
    caps.chunking = true;
  } else if (iequals(kw, "ENHANCEDSTATUSCODES")) {
    caps.enhanced_status_codes = true;
  } else if (iequals(kw, "BINARYMIME")) {
    caps.binarymime = true;
  } else if (iequals(kw, "SIZE")) {
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
