// feedback/report_mime: see report_mime.hpp.
#include "feedback/report_mime.hpp"

#include "mime/encoding.hpp"
#include "mime/header_section.hpp"
#include "text/ascii.hpp"

namespace mailgate::feedback {

namespace {

// Lines of `text` without their line ends (CRLF or LF).
template <class F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    const auto end = nl == std::string_view::npos ? text.size() : nl;
    auto line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!f(line)) return;
    pos = end + 1;
  }
}

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

}  // namespace

Entity split_entity(std::string_view raw) {
  const auto n = mime::header_section_length(raw);
  Entity e{raw.substr(0, n), {}};
  auto rest = raw.substr(n);
  // Skip the empty line itself.
  if (rest.starts_with("\r\n"))
    rest.remove_prefix(2);
  else if (rest.starts_with("\n") || rest.starts_with("\r"))
    rest.remove_prefix(1);
  e.body = rest;
  return e;
}

Fields read_fields(std::string_view lines) {
  Fields out;
  bool dropping = false;  // past kMaxFields
  for_each_line(lines, [&](std::string_view line) {
    if (line.empty()) return true;
    if (is_wsp(line.front())) {  // continuation
      if (!out.empty() && !dropping) {
        auto& v = out.back().second;
        const auto more = text::trim(line);
        if (v.size() + 1 + more.size() <= kMaxValue) {
          if (!v.empty()) v.push_back(' ');
          v.append(more);
        }
      }
      return true;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return true;  // not a field
    auto name = text::trim(line.substr(0, colon));
    if (!mime::valid_field_name(name)) return true;
    if (out.size() >= kMaxFields) {
      dropping = true;
      return true;
    }
    auto value = text::trim(line.substr(colon + 1));
    out.emplace_back(std::string(name), std::string(value.substr(0, kMaxValue)));
    return true;
  });
  return out;
}

std::optional<std::string> field(const Fields& fields, std::string_view name) {
  for (const auto& [n, v] : fields)
    if (text::iequals(n, name)) return v;
  return std::nullopt;
}

std::vector<std::string> fields_named(const Fields& fields, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [n, v] : fields)
    if (text::iequals(n, name)) out.push_back(v);
  return out;
}

ContentType content_type(const Fields& headers) {
  ContentType ct;
  auto v = field(headers, "Content-Type");
  if (!v) return ct;
  std::string_view s = *v;
  const auto semi = s.find(';');
  auto media = text::trim(s.substr(0, semi));
  const auto slash = media.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == media.size()) return ct;
  ct.type = text::to_lower(text::trim(media.substr(0, slash)));
  ct.subtype = text::to_lower(text::trim(media.substr(slash + 1)));
  if (semi == std::string_view::npos) return ct;
  s.remove_prefix(semi + 1);
  // name=value or name="quoted\"value" pairs separated by ';'.
  while (!s.empty() && ct.params.size() < 16) {
    s = text::trim(s);
    const auto eq = s.find('=');
    if (eq == std::string_view::npos) break;
    auto name = text::to_lower(text::trim(s.substr(0, eq)));
    s.remove_prefix(eq + 1);
    s = text::trim(s);
    std::string value;
    if (!s.empty() && s.front() == '"') {
      std::size_t i = 1;
      for (; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        value.push_back(s[i]);
      }
      s.remove_prefix(std::min(s.size(), i + 1));
      const auto next = s.find(';');
      s.remove_prefix(next == std::string_view::npos ? s.size() : next + 1);
    } else {
      const auto next = s.find(';');
      value = std::string(text::trim(s.substr(0, next)));
      s.remove_prefix(next == std::string_view::npos ? s.size() : next + 1);
    }
    if (!name.empty() && value.size() <= 256) ct.params.emplace(std::move(name), std::move(value));
  }
  return ct;
}

std::vector<std::string_view> split_multipart(std::string_view body, std::string_view boundary) {
  std::vector<std::string_view> parts;
  if (boundary.empty() || boundary.size() > 70) return parts;
  const std::string delim = "--" + std::string(boundary);
  std::size_t part_start = std::string_view::npos;
  std::size_t pos = 0;
  while (pos <= body.size() && parts.size() < kMaxParts) {
    const auto at = body.find(delim, pos);
    if (at == std::string_view::npos) break;
    if (at != 0 && body[at - 1] != '\n') {  // not at a line start
      pos = at + delim.size();
      continue;
    }
    auto after = body.substr(at + delim.size());
    const bool close = after.starts_with("--");
    auto nl = after.find('\n');
    auto rest_of_line =
        after.substr(close ? 2 : 0, nl == std::string_view::npos ? after.size() : nl);
    if (!close && !text::trim(text::trim(rest_of_line), "\r").empty()) {
      pos = at + delim.size();  // "--boundaryX": a longer boundary, not this one
      continue;
    }
    if (part_start != std::string_view::npos) {
      auto end = at;  // the line end before the delimiter belongs to it
      if (end > part_start && body[end - 1] == '\n') --end;
      if (end > part_start && body[end - 1] == '\r') --end;
      parts.push_back(body.substr(part_start, end - part_start));
    }
    if (close || nl == std::string_view::npos) break;
    part_start = at + delim.size() + nl + 1;
    pos = part_start;
  }
  return parts;
}

std::optional<std::string> decoded_body(const Fields& headers, std::string_view body) {
  const auto cte = text::to_lower(field(headers, "Content-Transfer-Encoding").value_or(""));
  if (cte == "base64") return mime::base64_decode(body);
  if (cte == "quoted-printable") {
    // Lenient: =XX and soft breaks decoded, anything else kept as is.
    std::string out;
    out.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
      if (body[i] != '=') {
        out.push_back(body[i]);
        continue;
      }
      if (i + 2 < body.size() + 0 && body[i + 1] == '\r' && body[i + 2] == '\n') {
        i += 2;
      } else if (i + 1 < body.size() && body[i + 1] == '\n') {
        i += 1;
      } else if (i + 2 < body.size() && text::hex_value(body[i + 1]) >= 0 &&
                 text::hex_value(body[i + 2]) >= 0) {
        out.push_back(
            static_cast<char>(text::hex_value(body[i + 1]) * 16 + text::hex_value(body[i + 2])));
        i += 2;
      } else {
        out.push_back('=');
      }
    }
    return out;
  }
  return std::string(body);
}

Walk walk(std::string_view message) {
  Walk out;
  struct Pending {
    std::string_view raw;
    std::size_t depth;
  };
  std::vector<Pending> stack{{message, 0}};
  std::size_t seen = 0;
  bool top = true;
  while (!stack.empty() && seen < kMaxParts) {
    auto [raw, depth] = stack.back();
    stack.pop_back();
    ++seen;
    const auto e = split_entity(raw);
    auto headers = read_fields(e.headers);
    auto ct = content_type(headers);
    if (top) {
      out.top = ct;
      top = false;
    }
    if (ct.type == "multipart") {
      if (depth >= kMaxDepth) continue;
      auto b = ct.params.find("boundary");
      if (b == ct.params.end()) continue;
      auto parts = split_multipart(e.body, b->second);
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) stack.push_back({*it, depth + 1});
      continue;
    }
    out.leaves.push_back({std::move(ct), std::move(headers), e.body});
  }
  return out;
}

std::vector<Fields> field_groups(std::string_view text) {
  std::vector<Fields> groups;
  std::size_t start = 0;
  std::size_t pos = 0;
  bool in_group = false;
  auto close = [&](std::size_t end) {
    if (in_group && groups.size() < kMaxFields)
      groups.push_back(read_fields(text.substr(start, end - start)));
    in_group = false;
  };
  while (pos <= text.size()) {
    auto nl = text.find('\n', pos);
    const auto end = nl == std::string_view::npos ? text.size() : nl;
    auto line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (text::trim(line).empty()) {
      close(pos);
    } else if (!in_group) {
      in_group = true;
      start = pos;
    }
    if (nl == std::string_view::npos) break;
    pos = end + 1;
  }
  close(text.size());
  return groups;
}

std::string normalize_message_id(std::string_view value) {
  const auto open = value.find('<');
  if (open == std::string_view::npos) return {};
  const auto close = value.find('>', open);
  if (close == std::string_view::npos) return {};
  std::string out = "<";
  for (char c : value.substr(open + 1, close - open - 1)) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) continue;
    out.push_back(c);
  }
  out.push_back('>');
  if (out.size() <= 2 || out.size() > 998 || out.find('@') == std::string::npos) return {};
  return out;
}

std::string report_address(std::string_view value) {
  auto v = text::trim(value);
  if (const auto semi = v.find(';'); semi != std::string_view::npos) {
    // "rfc822; addr" (address type first, RFC 3464 §2.3.2); other types are not addresses.
    if (!text::iequals(text::trim(v.substr(0, semi)), "rfc822") &&
        !text::iequals(text::trim(v.substr(0, semi)), "utf-8"))
      return {};
    v = text::trim(v.substr(semi + 1));
  }
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 254) return {};
  const auto at = v.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == v.size() || v.find('@') != at) return {};
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '<' || c == '>' || c == '"' || c == '(' || c == ')' ||
        c == ',' || c == ';' || c == ':' || c == '[' || c == ']' || c == '\\')
      return {};
  }
  return std::string(v);
}

}  // namespace mailgate::feedback
