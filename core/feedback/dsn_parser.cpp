// feedback/dsn_parser: parse_dsn() (see reports.hpp).
#include <optional>

#include "feedback/report_mime.hpp"
#include "feedback/reports.hpp"
#include "text/ascii.hpp"

namespace mailgate::feedback {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "5.1.1" at the start of `s` (class 2, 4 or 5; 1-3 digits each), or "".
std::string status_at(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return {};
  std::size_t i = 2, n = 0;
  while (i < s.size() && is_digit(s[i]) && n < 3) ++i, ++n;
  if (n == 0 || i >= s.size() || s[i] != '.') return {};
  ++i;
  n = 0;
  while (i < s.size() && is_digit(s[i]) && n < 3) ++i, ++n;
  if (n == 0 || (i < s.size() && is_digit(s[i]))) return {};
  return std::string(s.substr(0, i));
}

// A reply code and enhanced status in free text: the first "NNN" ([245]xx,
// a word of its own) and the first "x.y.z" (after a word boundary, '#' or
// '('). Either may be missing.
struct FoundStatus {
  int code = 0;
  std::string status;
  std::size_t code_end = 0;  // where the text after the code starts
};
FoundStatus find_status(std::string_view s) {
  FoundStatus f;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool boundary = i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t' || s[i - 1] == '#' ||
                          s[i - 1] == '(' || s[i - 1] == ':' || s[i - 1] == '[';
    if (!boundary) continue;
    if (f.status.empty()) {
      auto st = status_at(s.substr(i));
      if (!st.empty()) {
        f.status = st;
        continue;
      }
    }
    if (!f.code && i + 3 <= s.size() && (s[i] == '2' || s[i] == '4' || s[i] == '5') &&
        is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
        (i + 3 == s.size() || s[i + 3] == ' ' || s[i + 3] == '-')) {
      f.code = (s[i] - '0') * 100 + (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
      f.code_end = i + 3;
    }
  }
  return f;
}

// RFC 3464 §2.3.6 "smtp; 550 5.1.1 <a@b>: Recipient address rejected".
void read_diagnostic(std::string_view value, FailedRecipient& r) {
  auto v = value;
  if (const auto semi = v.find(';'); semi != std::string_view::npos && semi < 16)
    v = text::trim(v.substr(semi + 1));
  auto f = find_status(v.substr(0, std::min<std::size_t>(v.size(), 4)));
  if (f.code) {
    r.code = f.code;
    v = text::trim(v.substr(3));
    if (v.starts_with("-")) v.remove_prefix(1);
    auto st = status_at(v);
    if (!st.empty() && r.status.empty()) r.status = st;
    if (!st.empty()) v = text::trim(v.substr(st.size()));
  }
  r.text = one_line(v);
}

int code_for(const std::string& status) {
  if (status.empty()) return 0;
  return status[0] == '5' ? 550 : status[0] == '4' ? 450 : 250;
}

const Leaf* find_leaf(const Walk& w,
                      std::initializer_list<std::pair<const char*, const char*>> types) {
  for (const auto& l : w.leaves)
    for (const auto& [t, s] : types)
      if (l.type.is(t, s)) return &l;
  return nullptr;
}

std::string returned_message_id(const Walk& w) {
  const auto* l = find_leaf(w, {{"message", "rfc822"},
                                {"text", "rfc822-headers"},
                                {"message", "global"},
                                {"message", "global-headers"},
                                {"message", "rfc822-headers"}});
  if (!l) return {};
  auto body = decoded_body(l->headers, l->body);
  if (!body) return {};
  auto fields = read_fields(split_entity(*body).headers);
  auto id = field(fields, "Message-ID");
  return id ? normalize_message_id(*id) : std::string();
}

bool standard_dsn(const Leaf& status, DsnReport& out) {
  auto body = decoded_body(status.headers, status.body);
  if (!body) return false;
  auto groups = field_groups(*body);
  if (groups.empty()) return false;
  out.standard = true;
  out.reporting_mta = one_line(field(groups[0], "Reporting-MTA").value_or(""), 256);
  out.original_envid = one_line(field(groups[0], "Original-Envelope-Id").value_or(""), 256);
  for (std::size_t g = 1; g < groups.size(); ++g) {
    const auto& f = groups[g];
    auto final_rcpt = field(f, "Final-Recipient");
    if (!final_rcpt) continue;
    FailedRecipient r;
    r.recipient = report_address(*final_rcpt);
    if (r.recipient.empty()) continue;  // not an address we can name
    r.original_recipient = report_address(field(f, "Original-Recipient").value_or(""));
    const auto action = text::to_lower(text::trim(field(f, "Action").value_or("")));
    r.status = status_at(text::trim(field(f, "Status").value_or("")));
    if (auto d = field(f, "Diagnostic-Code")) read_diagnostic(*d, r);
    if (!r.code) r.code = code_for(r.status);
    // Failed = Action: failed, or (no Action) a permanent status.
    const bool failed = action == "failed" || (action.empty() && r.code >= 500);
    if (!failed || r.code < 500 || r.code > 599) continue;
    if (!r.status.empty() && r.status[0] != '5') r.status.clear();  // contradicts the code
    if (auto m = field(f, "Remote-MTA")) {
      auto v = std::string_view(*m);
      if (auto semi = v.find(';'); semi != std::string_view::npos) v = v.substr(semi + 1);
      r.remote_mta = one_line(text::trim(v), 256);
    }
    out.failed.push_back(std::move(r));
    if (out.failed.size() >= kMaxFields) break;
  }
  return true;
}

// The markers after which a plain-text bounce quotes the original message.
bool returned_message_marker(std::string_view line) {
  const auto l = text::to_lower(line);
  for (const char* m :
       {"this is a copy of the message", "below this line is a copy", "original message follows",
        "--- original message", "undelivered message", "returned message follows"})
    if (l.find(m) != std::string::npos) return true;
  return false;
}

// An address line: "addr", "addr:", "<addr>", "<addr>:" alone, or
// "<addr>: text" (the text is part of the diagnostic).
std::string address_line(std::string_view line, std::string_view& rest) {
  auto t = text::trim(line);
  rest = {};
  if (!t.empty() && t.front() == '<') {
    const auto close = t.find('>');
    if (close == std::string_view::npos) return {};
    auto a = report_address(t.substr(0, close + 1));
    auto after = t.substr(close + 1);
    if (after.empty() || after.front() == ':') {
      if (!after.empty()) rest = text::trim(after.substr(1));
      return a;
    }
    return {};
  }
  if (!t.empty() && t.back() == ':') t.remove_suffix(1);
  return report_address(t);
}

bool plain_text_dsn(const Walk& w, std::string_view top_body, DsnReport& out) {
  std::optional<std::string> decoded;
  std::string_view text = top_body;
  if (const auto* l = find_leaf(w, {{"text", "plain"}}); l && w.top.type == "multipart") {
    decoded = decoded_body(l->headers, l->body);
    if (!decoded) return false;
    text = *decoded;
  } else if (!w.top.is("text", "plain")) {
    return false;
  }
  // Lines up to the returned message.
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos < text.size() && lines.size() < 2000) {
    auto nl = text.find('\n', pos);
    const auto end = nl == std::string_view::npos ? text.size() : nl;
    auto line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (returned_message_marker(line)) break;
    lines.push_back(line);
    pos = end + 1;
  }
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view rest;
    auto addr = address_line(lines[i], rest);
    if (addr.empty()) continue;
    // The status is on the address line or the few lines after it, before
    // the next address or an empty line after some text.
    std::string window(rest);
    for (std::size_t j = i + 1; j < lines.size() && j <= i + 8; ++j) {
      std::string_view r2;
      if (!address_line(lines[j], r2).empty()) break;
      if (text::trim(lines[j]).empty()) {
        if (!window.empty()) break;
        continue;
      }
      window += ' ';
      window += text::trim(lines[j]);
    }
    auto f = find_status(window);
    FailedRecipient r;
    r.recipient = addr;
    r.status = f.status;
    r.code = f.code ? f.code : code_for(f.status);
    if (r.code < 500 || r.code > 599) continue;  // no permanent failure named
    if (!r.status.empty() && r.status[0] != '5') r.status.clear();
    r.text = one_line(text::trim(window));
    out.failed.push_back(std::move(r));
    if (out.failed.size() >= kMaxFields) break;
  }
  return !out.failed.empty();
}

}  // namespace

std::string one_line(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) break;
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  return out;
}

bool parse_dsn(std::string_view message, DsnReport& out, std::string& why) {
  out = {};
  const auto w = walk(message);
  out.original_message_id = returned_message_id(w);
  if (const auto* status =
          find_leaf(w, {{"message", "delivery-status"}, {"message", "global-delivery-status"}})) {
    if (!standard_dsn(*status, out)) {
      why = "unreadable delivery-status part";
      return false;
    }
    return true;
  }
  if (plain_text_dsn(w, split_entity(message).body, out)) return true;
  why = "no delivery-status part and no failed address with a permanent status in the text";
  return false;
}

}  // namespace mailgate::feedback
