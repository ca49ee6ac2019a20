// mtasts/policy: see policy.hpp. The grammar is RFC 8461 §3.1 (TXT:
// "v=STSv1; id=...;" fields separated by ";" with optional blanks) and §3.2
// (policy: "key: value" lines ending in CRLF or LF).
#include "mtasts/policy.hpp"

#include <algorithm>

#include "text/ascii.hpp"

namespace mailgate::mtasts {

namespace {

bool alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string without_dot(std::string_view s) {
  std::string out = text::to_lower(s);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// A DNS name of LDH labels, optionally "*." in front (§3.2 mx patterns).
bool valid_pattern(std::string_view p) {
  if (p.rfind("*.", 0) == 0) p.remove_prefix(2);
  if (p.empty() || p.size() > 253) return false;
  std::size_t start = 0;
  while (start <= p.size()) {
    auto dot = p.find('.', start);
    auto label = p.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label)
      if (!alnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

}  // namespace

std::string_view to_string(Mode m) {
  switch (m) {
    case Mode::Enforce:
      return "enforce";
    case Mode::Testing:
      return "testing";
    case Mode::None:
      break;
  }
  return "none";
}

ParsedPolicy parse_policy(std::string_view body) {
  ParsedPolicy out;
  auto fail = [&](std::string e) {
    out.error = std::move(e);
    return out;
  };
  if (body.size() > kMaxPolicySize) return fail("policy larger than 64 KiB");
  Policy p;
  int versions = 0, modes = 0, ages = 0;
  std::size_t line_no = 0;
  while (!body.empty()) {
    ++line_no;
    auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (text::trim(line).empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return fail("line " + std::to_string(line_no) + ": no \"key: value\"");
    const auto key = text::trim(line.substr(0, colon));
    const auto value = text::trim(line.substr(colon + 1));
    const std::string where = "line " + std::to_string(line_no) + ": ";
    if (key == "version") {
      if (value != "STSv1") return fail(where + "version must be STSv1");
      ++versions;
    } else if (key == "mode") {
      if (value == "enforce")
        p.mode = Mode::Enforce;
      else if (value == "testing")
        p.mode = Mode::Testing;
      else if (value == "none")
        p.mode = Mode::None;
      else
        return fail(where + "mode must be enforce, testing or none");
      ++modes;
    } else if (key == "max_age") {
      if (value.empty() || value.size() > 10 ||
          !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return fail(where + "max_age must be a number of seconds");
      const auto age = std::stoull(std::string(value));
      if (age > kMaxAge) return fail(where + "max_age is above 31557600");
      p.max_age = static_cast<std::uint32_t>(age);
      ++ages;
    } else if (key == "mx") {
      if (!valid_pattern(value)) return fail(where + "not an MX host pattern");
      p.mx.push_back(without_dot(value));
    }
    // Other keys: ignored (§3.2, for extensions).
  }
  if (versions != 1) return fail("policy needs exactly one version: STSv1");
  if (modes != 1) return fail("policy needs exactly one mode");
  if (ages != 1) return fail("policy needs exactly one max_age");
  if (p.mode != Mode::None && p.mx.empty()) return fail("policy has no mx");
  out.policy = std::move(p);
  return out;
}

std::optional<std::string> parse_txt_id(const std::vector<std::string>& records,
                                        std::string& error) {
  const std::string* found = nullptr;
  for (const auto& r : records) {
    if (r.rfind("v=STSv1", 0) != 0) continue;
    if (found) {
      error = "more than one v=STSv1 TXT record";
      return std::nullopt;
    }
    found = &r;
  }
  if (!found) {
    error = "no v=STSv1 TXT record";
    return std::nullopt;
  }
  // sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
  std::string_view rest(*found);
  std::optional<std::string> id;
  bool first = true;
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    const auto field = text::trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    if (first) {
      first = false;
      if (field != "v=STSv1") break;
      continue;
    }
    if (field.empty()) {
      if (!text::trim(rest).empty()) {
        error = "empty field in the TXT record";
        return std::nullopt;
      }
      break;
    }
    const auto eq = field.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      error = "malformed field in the TXT record";
      return std::nullopt;
    }
    if (field.substr(0, eq) == "id") {
      const auto v = field.substr(eq + 1);
      if (id || v.empty() || v.size() > 32 || !std::all_of(v.begin(), v.end(), alnum)) {
        error = "the TXT record's id is not 1 to 32 letters and digits (or is repeated)";
        return std::nullopt;
      }
      id = std::string(v);
    }
  }
  if (!id) error = "the v=STSv1 TXT record has no id";
  return id;
}

bool mx_matches(const Policy& policy, std::string_view host) {
  const std::string name = without_dot(host);
  for (const auto& pattern : policy.mx) {
    if (pattern.rfind("*.", 0) == 0) {
      // "*.example.com" covers "mx.example.com", not "example.com" or "a.b.example.com".
      const std::string_view suffix = std::string_view(pattern).substr(1);  // ".example.com"
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix.data(), suffix.size()) ==
              0 &&
          name.find('.') == name.size() - suffix.size())
        return true;
    } else if (name == pattern) {
      return true;
    }
  }
  return false;
}

}  // namespace mailgate::mtasts
