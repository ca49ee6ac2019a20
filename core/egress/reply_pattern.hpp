// egress/reply_pattern: the `match` of a shaping rule (DESIGN §6b), a small
// regular-expression language tested against remote replies such as
// "421 4.7.0 [TS04] Messages from 192.0.2.1 temporarily deferred".
// Syntax: literals; `.`; `\` before any punctuation makes it literal
// (`\[TS04\]`, `\.`), `\d \w \s` (and `\D \W \S`); bracket classes `[...]`
// and `[^...]` with ranges (`[0-9A-F]`) and the escapes above; anchors `^`
// and `$` (only at the start / end of an alternative); quantifiers `*`,
// `+`, `?` after one item; `|` between alternatives; a leading `(?i)` makes
// the whole pattern case-insensitive. No groups, back-references or {n,m}:
// compile() refuses them with a message saying so.
// Promises: matching is a simulation of the pattern's automaton, O(length
// of text × length of pattern), no backtracking and no recursion, so a
// hostile pattern or reply cannot stall a worker or blow its stack;
// patterns are at most kMaxPattern bytes, texts are looked at up to
// kMaxText bytes. Search semantics (like std::regex_search): the pattern
// may match anywhere unless anchored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::egress {

class ReplyPattern {
 public:
  static constexpr std::size_t kMaxPattern = 512;
  static constexpr std::size_t kMaxText = 4096;

  // The compiled pattern, or nothing with `error` saying what is wrong.
  static std::optional<ReplyPattern> compile(std::string_view pattern, std::string& error);
  bool search(std::string_view text) const;
  const std::string& source() const { return source_; }

 private:
  enum class Repeat : std::uint8_t { One, Optional, Star };
  struct Item {
    std::vector<bool> set;  // 256 entries: the bytes this item accepts
    Repeat repeat = Repeat::One;
  };
  struct Alternative {
    std::vector<Item> items;
    bool anchored_start = false, anchored_end = false;
  };
  bool search(const Alternative& alt, std::string_view text) const;

  std::string source_;
  std::vector<Alternative> alternatives_;
};

}  // namespace mailgate::egress
