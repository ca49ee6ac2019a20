// smtp/bounce_class: classification of failed-delivery replies into a small,
// bounded set of classes (delivery log `bounce_class`, metrics, suppression).
// Promises:
//  - classify() is a pure function of (code, enhanced, text) and the rules;
//    text patterns are case-insensitive substrings (no regex);
//  - operator rules (add_rule) are tried first, in the order added; the first
//    match wins. A rule matches when code_min <= code <= code_max, the enhanced
//    code starts with `enhanced_prefix` on a component boundary ("5.1.1" does
//    not match "5.1.10"; "5.7." and "5.7" match any 5.7.x; "" matches any
//    reply, including one without an enhanced code) and the text contains
//    `text_pattern` ("" matches any text);
//  - built-in rules: codes outside 400..599 are None; a 4xx is Transient
//    unless it is about quota (4.2.2 / quota text), never a recipient-level
//    class; for a 5xx a specific enhanced code decides (5.1.1 5.1.0 5.1.3 5.1.6
//    5.1.10 5.2.1 bad-mailbox, 5.1.10 for a null MX, 5.1.2 and 5.4.4
//    bad-domain, 5.2.2 quota, 5.2.3 5.3.4 5.6.x content, 5.7.x policy, other
//    5.4.x routing, 5.1.7/5.1.8 (sender's address) other), otherwise text
//    patterns (checked policy first, then quota, content, bad-domain,
//    bad-mailbox), otherwise the basic code (552 quota or content, 556
//    bad-domain, anything else other). BadMailbox is only given on clear
//    evidence because a suppression list relies on it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::smtp {

enum class BounceClass {
  None,              // not a failure (or not classified)
  BadMailbox,        // the recipient does not exist / is disabled
  BadDomain,         // the recipient domain does not exist / accepts no mail
  PolicyReputation,  // rejected by policy: spam, blocklists, reputation, auth
  Content,           // the message itself: size, content, media
  Quota,             // mailbox full / over quota
  Routing,           // routing problems, mail loops
  Transient,         // temporary failure (4xx)
  Other,             // anything else
};

// "bad-mailbox", "bad-domain", "policy", "content", "quota", "routing",
// "transient", "other"; "" for None.
const char* to_string(BounceClass c);
// Inverse of to_string() (exact, lower-case names); nullopt for unknown names.
std::optional<BounceClass> bounce_class_from_string(std::string_view s);

struct BounceRule {
  int code_min = 400, code_max = 599;
  std::string enhanced_prefix;  // e.g. "5.1.1" or "5.7." or ""
  std::string text_pattern;     // case-insensitive substring, or ""
  BounceClass cls = BounceClass::Other;
};

class BounceClassifier {
 public:
  BounceClassifier();  // built-in rules only

  // Operator rules, checked before the built-ins, in the order added.
  void add_rule(BounceRule r);

  // `enhanced` is the reply's enhanced status code ("5.1.1") or empty; `text`
  // its text (lines separated by '\n'), as smtp::ReplyParser produces them.
  BounceClass classify(int code, std::string_view enhanced, std::string_view text) const;

 private:
  std::vector<BounceRule> rules_;  // patterns stored lower-cased
};

}  // namespace mailgate::smtp
