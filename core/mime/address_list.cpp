// mime/address_list: see address_list.hpp. A small recursive-descent parser
// over the RFC 5322 grammar (address-list, mailbox, group, angle-addr,
// addr-spec, phrase, CFWS), with the obsolete forms most often seen in real
// mail (obs-phrase dots) accepted and the rest rejected.
#include "mime/address_list.hpp"

#include <cstring>

namespace mailgate::mime {
namespace {

constexpr std::size_t kMaxMailboxes = 1000;
constexpr int kMaxCommentDepth = 64;

bool is_atext(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x80) return true;  // RFC 6532: UTF-8 in headers
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr && c != '\0';
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::optional<std::vector<Mailbox>> list() {
    std::vector<Mailbox> out;
    cfws();
    while (pos_ < s_.size()) {
      if (peek(',')) {  // obs-addr-list: empty elements
        ++pos_;
        cfws();
        continue;
      }
      if (!address(out) || out.size() > kMaxMailboxes) return std::nullopt;
      cfws();
      if (pos_ == s_.size()) break;
      if (!peek(',')) return std::nullopt;
      ++pos_;
      cfws();
    }
    if (!ok_) return std::nullopt;
    return out;
  }

 private:
  bool peek(char c) const { return pos_ < s_.size() && s_[pos_] == c; }

  // CFWS: whitespace, folding and (nested) comments.
  void cfws() {
    while (pos_ < s_.size() && ok_) {
      const char c = s_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++pos_;
      } else if (c == '(') {
        comment();
      } else {
        break;
      }
    }
  }

  void comment() {
    int depth = 0;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ == s_.size()) break;
        ++pos_;
      } else if (c == '(') {
        if (++depth > kMaxCommentDepth) break;
      } else if (c == ')') {
        if (--depth == 0) return;
      }
    }
    ok_ = false;  // unbalanced or too deep
  }

  std::optional<std::string> quoted_string() {
    if (!peek('"')) return std::nullopt;
    ++pos_;
    std::string out;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c == '\\') {
        if (pos_ == s_.size()) break;
        out.push_back(s_[pos_++]);
      } else if (c != '\r' && c != '\n') {
        out.push_back(c);
      }
    }
    ok_ = false;
    return std::nullopt;
  }

  std::string atom() {
    const auto start = pos_;
    while (pos_ < s_.size() && is_atext(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  // word = atom / quoted-string (with CFWS around); "" and false at neither.
  bool word(std::string& out) {
    cfws();
    if (peek('"')) {
      auto q = quoted_string();
      if (!q) return false;
      out = *q;
    } else {
      out = atom();
      if (out.empty()) return false;
    }
    cfws();
    return true;
  }

  // addr-spec = local-part "@" domain
  bool addr_spec(Mailbox& m) {
    // local-part: dot-atom or quoted-string (obs: words joined by dots)
    std::string local, w;
    if (!word(w)) return false;
    local = w;
    while (peek('.')) {
      ++pos_;
      if (!word(w)) return false;
      local += "." + w;
    }
    if (!peek('@')) return false;
    ++pos_;
    cfws();
    std::string domain;
    if (peek('[')) {
      const auto end = s_.find(']', pos_);
      if (end == std::string_view::npos) return false;
      const auto lit = s_.substr(pos_, end + 1 - pos_);
      if (lit.find_first_of("[\\", 1) != std::string_view::npos) return false;
      domain = std::string(lit);
      pos_ = end + 1;
    } else {
      domain = atom();
      if (domain.empty()) return false;
      while (peek('.')) {
        ++pos_;
        const auto label = atom();
        if (label.empty()) return false;
        domain += "." + label;
      }
    }
    cfws();
    m.local = std::move(local);
    m.domain = std::move(domain);
    return true;
  }

  bool angle_addr(Mailbox& m) {
    if (!peek('<')) return false;
    ++pos_;
    cfws();
    if (peek('@')) return false;  // obs-route: not honoured
    if (!addr_spec(m) || !peek('>')) return false;
    ++pos_;
    cfws();
    return true;
  }

  // mailbox = name-addr / addr-spec; group = display-name ":" [mailbox-list] ";"
  // Groups do not nest (RFC 5322 group-list holds mailboxes), which also
  // bounds the recursion.
  bool address(std::vector<Mailbox>& out, bool in_group = false) {
    const auto start = pos_;
    Mailbox m;
    if (addr_spec(m) && (pos_ == s_.size() || peek(','))) {
      out.push_back(std::move(m));
      return ok_;
    }
    // A display name (phrase), then an angle-addr or a group.
    pos_ = start;
    ok_ = true;
    std::string phrase, w;
    while (true) {
      cfws();
      if (peek('<') || peek(':') || pos_ == s_.size()) break;
      if (peek('.')) {  // obs-phrase
        ++pos_;
        phrase += ".";
        continue;
      }
      if (!word(w)) return false;
      if (!phrase.empty()) phrase += " ";
      phrase += w;
    }
    if (peek('<')) {
      Mailbox named;
      if (!angle_addr(named)) return false;
      named.display = std::move(phrase);
      out.push_back(std::move(named));
      return ok_;
    }
    if (peek(':') && !phrase.empty() && !in_group) {
      ++pos_;
      cfws();
      while (!peek(';')) {
        if (pos_ == s_.size()) return false;
        if (peek(',')) {
          ++pos_;
          cfws();
          continue;
        }
        const auto before = out.size();
        if (!address(out, true) || out.size() == before) return false;
        cfws();
        if (!peek(',') && !peek(';')) return false;
      }
      ++pos_;
      cfws();
      return ok_;
    }
    return false;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::optional<std::vector<Mailbox>> parse_address_list(std::string_view value) {
  if (value.size() > 64 * 1024) return std::nullopt;
  return Parser(value).list();
}

}  // namespace mailgate::mime
