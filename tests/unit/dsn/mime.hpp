// Test helper: a small, strict MIME reader for the DSNs under test (header
// section, unfolding, Content-Type parameters, multipart split, delivery-status
// blocks). Independent of the builder's own code.
#pragma once

#include <cctype>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::dsn::test {

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Entity {
  std::vector<std::pair<std::string, std::string>> fields;  // lower-case name, unfolded value
  std::string body;
  int count(std::string_view name) const {
    int n = 0;
    for (const auto& f : fields) n += f.first == name;
    return n;
  }
  std::string get(std::string_view name) const {
    for (const auto& f : fields) {
      if (f.first == name) return f.second;
    }
    return {};
  }
  bool has(std::string_view name) const { return count(name) > 0; }
};

// Header fields up to the first empty line (CRLF only), unfolded (CRLF removed,
// leading/trailing WSP of the value trimmed); the rest is the body.
inline Entity parse_entity(std::string_view s) {
  Entity e;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t eol = s.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = s.size();
    std::string_view line = s.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !e.fields.empty()) {
      e.fields.back().second.append(line);
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      e.fields.emplace_back("!malformed", std::string(line));
      continue;
    }
    e.fields.emplace_back(lower(line.substr(0, colon)), std::string(line.substr(colon + 1)));
  }
  for (auto& f : e.fields) {
    const auto b = f.second.find_first_not_of(" \t");
    const auto t = f.second.find_last_not_of(" \t");
    f.second = b == std::string::npos ? "" : f.second.substr(b, t - b + 1);
  }
  if (pos < s.size()) e.body = std::string(s.substr(pos));
  return e;
}

inline std::string media_type(const std::string& content_type) {
  auto t = lower(content_type.substr(0, content_type.find(';')));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

// Parameter value (quoted or token) of a Content-Type value; "" when absent.
inline std::string param(const std::string& value, std::string_view name) {
  std::size_t pos = value.find(';');
  while (pos != std::string::npos) {
    std::size_t b = value.find_first_not_of(" \t;", pos);
    if (b == std::string::npos) break;
    const std::size_t eq = value.find('=', b);
    if (eq == std::string::npos) break;
    const std::string key = lower(value.substr(b, eq - b));
    std::string v;
    std::size_t next;
    if (eq + 1 < value.size() && value[eq + 1] == '"') {
      const std::size_t close = value.find('"', eq + 2);
      v = value.substr(eq + 2, close - eq - 2);
      next = value.find(';', close);
    } else {
      next = value.find(';', eq);
      v = value.substr(eq + 1, next == std::string::npos ? std::string::npos : next - eq - 1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    }
    if (key == name) return v;
    pos = next;
  }
  return {};
}

struct Multipart {
  std::string preamble;
  std::vector<std::string> parts;  // raw part text (headers + body), delimiter CRLF excluded
  bool closed = false;             // the close delimiter was found
  std::string epilogue;
};

// RFC 2046 §5.1.1: a delimiter is CRLF "--" boundary at the start of a line.
inline Multipart split_multipart(std::string_view body, const std::string& boundary) {
  Multipart m;
  const std::string delim = "\r\n--" + boundary;
  std::string_view rest = body;
  // The first delimiter may be at the very start (no preamble).
  std::size_t at;
  if (rest.substr(0, delim.size() - 2) == delim.substr(2)) {
    at = 0;
    rest.remove_prefix(delim.size() - 2);
  } else {
    at = rest.find(delim);
    if (at == std::string_view::npos) return m;
    m.preamble = std::string(rest.substr(0, at));
    rest.remove_prefix(at + delim.size());
  }
  for (;;) {
    if (rest.substr(0, 2) == "--") {
      m.closed = true;
      m.epilogue = std::string(rest.substr(2));
      return m;
    }
    const std::size_t eol = rest.find("\r\n");
    if (eol == std::string_view::npos) return m;
    rest.remove_prefix(eol + 2);  // transport padding + CRLF after the delimiter
    at = rest.find(delim);
    if (at == std::string_view::npos) return m;
    m.parts.emplace_back(rest.substr(0, at));
    rest.remove_prefix(at + delim.size());
  }
}

// message/delivery-status body: blocks of fields separated by empty lines.
inline std::vector<Entity> status_blocks(std::string_view body) {
  std::vector<Entity> blocks;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t end = body.find("\r\n\r\n", pos);
    std::string_view block =
        body.substr(pos, end == std::string_view::npos ? std::string_view::npos : end + 2 - pos);
    blocks.push_back(parse_entity(std::string(block) + "\r\n"));
    if (end == std::string_view::npos) break;
    pos = end + 4;
  }
  return blocks;
}

struct Dsn {
  Entity top;
  Multipart mp;
  std::vector<Entity> parts;
};

inline Dsn parse_dsn(std::string_view message) {
  Dsn d;
  d.top = parse_entity(message);
  d.mp = split_multipart(d.top.body, param(d.top.get("content-type"), "boundary"));
  for (const auto& p : d.mp.parts) d.parts.push_back(parse_entity(p));
  return d;
}

inline std::vector<std::string> lines(std::string_view s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t eol = s.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = s.size();
    out.emplace_back(s.substr(pos, eol - pos));
    pos = eol + 2;
  }
  return out;
}

}  // namespace mailgate::dsn::test
