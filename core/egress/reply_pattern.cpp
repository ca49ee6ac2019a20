// egress/reply_pattern: see reply_pattern.hpp.
#include "egress/reply_pattern.hpp"

#include <cctype>

namespace mailgate::egress {
namespace {

using Set = std::vector<bool>;

void add_class(Set& s, char cls) {
  for (int c = 0; c < 256; ++c) {
    const bool in = (cls == 'd' || cls == 'D')   ? std::isdigit(c) != 0
                    : (cls == 'w' || cls == 'W') ? (std::isalnum(c) != 0 || c == '_')
                                                 : (c == ' ' || (c >= '\t' && c <= '\r'));
    const bool negated = std::isupper(static_cast<unsigned char>(cls)) != 0;
    if (in != negated) s[static_cast<std::size_t>(c)] = true;
  }
}

bool is_class_escape(char c) {
  return std::string_view("dDwWsS").find(c) != std::string_view::npos;
}

// After '\': a class escape, or punctuation taken literally. Letters and
// digits other than the classes are refused (they mean something else in
// other regex dialects, and silently taking them literally would surprise).
bool escape_ok(char c) {
  return is_class_escape(c) || std::ispunct(static_cast<unsigned char>(c)) != 0 || c == ' ';
}

void fold_case(Set& s) {
  for (int c = 'a'; c <= 'z'; ++c) {
    const auto lo = static_cast<std::size_t>(c), up = static_cast<std::size_t>(c - 'a' + 'A');
    if (s[lo] || s[up]) s[lo] = s[up] = true;
  }
}

}  // namespace

std::optional<ReplyPattern> ReplyPattern::compile(std::string_view pattern, std::string& error) {
  if (pattern.empty()) {
    error = "empty pattern";
    return std::nullopt;
  }
  if (pattern.size() > kMaxPattern) {
    error = "pattern longer than " + std::to_string(kMaxPattern) + " bytes";
    return std::nullopt;
  }
  ReplyPattern out;
  out.source_ = std::string(pattern);
  bool nocase = false;
  if (pattern.substr(0, 4) == "(?i)") {
    nocase = true;
    pattern.remove_prefix(4);
  }
  Alternative alt;
  std::size_t i = 0;
  auto fail = [&](std::string why) {
    error = why + " at offset " + std::to_string(i);
    return std::nullopt;
  };
  while (i <= pattern.size()) {
    if (i == pattern.size() || pattern[i] == '|') {
      if (alt.items.empty() && !alt.anchored_start && !alt.anchored_end)
        return fail("empty alternative");
      out.alternatives_.push_back(std::move(alt));
      alt = Alternative{};
      ++i;
      continue;
    }
    const char c = pattern[i];
    if (alt.anchored_end) return fail("'$' must end its alternative");
    if (c == '^') {
      if (!alt.items.empty() || alt.anchored_start) return fail("'^' must start its alternative");
      alt.anchored_start = true;
      ++i;
      continue;
    }
    if (c == '$') {
      alt.anchored_end = true;
      ++i;
      continue;
    }
    if (c == '*' || c == '+' || c == '?') {
      if (alt.items.empty() || alt.items.back().repeat != Repeat::One)
        return fail(std::string("'") + c + "' must follow one item");
      if (c == '?') alt.items.back().repeat = Repeat::Optional;
      if (c == '*') alt.items.back().repeat = Repeat::Star;
      if (c == '+') {  // a+ = a a*
        Item again = alt.items.back();
        again.repeat = Repeat::Star;
        alt.items.push_back(std::move(again));
      }
      ++i;
      continue;
    }
    if (c == '(' || c == ')' || c == '{' || c == '}')
      return fail(std::string("'") + c +
                  "' is not supported (no groups or counted repeats: escape it as '\\" + c +
                  "' to match it, use '|' between whole alternatives)");
    Item item;
    item.set.assign(256, false);
    if (c == '.') {
      item.set.assign(256, true);
      ++i;
    } else if (c == '\\') {
      if (i + 1 >= pattern.size()) return fail("'\\' at the end");
      const char e = pattern[i + 1];
      if (!escape_ok(e)) return fail(std::string("unknown escape '\\") + e + "'");
      if (is_class_escape(e))
        add_class(item.set, e);
      else
        item.set[static_cast<unsigned char>(e)] = true;
      i += 2;
    } else if (c == '[') {
      ++i;
      const bool negate = i < pattern.size() && pattern[i] == '^';
      if (negate) ++i;
      bool first = true, closed = false;
      while (i < pattern.size()) {
        char a = pattern[i];
        if (a == ']' && !first) {
          closed = true;
          ++i;
          break;
        }
        first = false;
        if (a == '\\') {
          if (i + 1 >= pattern.size()) return fail("'\\' at the end");
          const char e = pattern[i + 1];
          if (!escape_ok(e)) return fail(std::string("unknown escape '\\") + e + "'");
          i += 2;
          if (is_class_escape(e)) {
            add_class(item.set, e);
            continue;
          }
          a = e;
        } else {
          ++i;
        }
        if (i + 1 < pattern.size() && pattern[i] == '-' && pattern[i + 1] != ']') {
          const char b =
              pattern[i + 1] == '\\' && i + 2 < pattern.size() ? pattern[i + 2] : pattern[i + 1];
          i += pattern[i + 1] == '\\' ? 3 : 2;
          if (static_cast<unsigned char>(b) < static_cast<unsigned char>(a))
            return fail("reversed range in '[...]'");
          for (int x = static_cast<unsigned char>(a); x <= static_cast<unsigned char>(b); ++x)
            item.set[static_cast<std::size_t>(x)] = true;
        } else {
          item.set[static_cast<unsigned char>(a)] = true;
        }
      }
      if (!closed) return fail("'[' without ']'");
      if (nocase) fold_case(item.set);
      if (negate) item.set.flip();
      alt.items.push_back(std::move(item));
      continue;
    } else {
      item.set[static_cast<unsigned char>(c)] = true;
      ++i;
    }
    if (nocase) fold_case(item.set);
    alt.items.push_back(std::move(item));
  }
  return out;
}

bool ReplyPattern::search(std::string_view text) const {
  if (text.size() > kMaxText) text = text.substr(0, kMaxText);
  for (const auto& alt : alternatives_)
    if (search(alt, text)) return true;
  return false;
}

// The automaton's states are "the next item to match" (0..k, k: matched).
// Items marked Optional or Star may be skipped (an epsilon edge i → i+1); a
// Star item matching stays at i. States only move forward through epsilon
// edges, so one pass in index order closes a state set.
bool ReplyPattern::search(const Alternative& alt, std::string_view text) const {
  const std::size_t k = alt.items.size();
  std::vector<char> cur(k + 1, 0), next(k + 1, 0);
  auto close = [&](std::vector<char>& s) {
    for (std::size_t i = 0; i < k; ++i)
      if (s[i] && alt.items[i].repeat != Repeat::One) s[i + 1] = 1;
  };
  auto accepted = [&](std::size_t pos) {
    return cur[k] && (!alt.anchored_end || pos == text.size());
  };
  cur[0] = 1;
  close(cur);
  for (std::size_t pos = 0;; ++pos) {
    if (accepted(pos)) return true;
    if (pos == text.size()) return false;
    const auto ch = static_cast<unsigned char>(text[pos]);
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    for (std::size_t i = 0; i < k; ++i) {
      if (!cur[i] || !alt.items[i].set[ch]) continue;
      next[alt.items[i].repeat == Repeat::Star ? i : i + 1] = 1;
      any = true;
    }
    if (!alt.anchored_start) {
      next[0] = 1;  // a match may start at the next position
      any = true;
    }
    if (!any) return false;
    close(next);
    cur.swap(next);
  }
}

}  // namespace mailgate::egress
