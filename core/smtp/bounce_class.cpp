// smtp/bounce_class: reply -> BounceClass (see bounce_class.hpp for the rules).
// Promises: the text is lower-cased once per classify() (ASCII only) and then
// searched with std::string_view::find for each lower-case pattern; no regex,
// no allocation besides that one copy. Pattern lists are ordered so that the
// classes that lead to recipient suppression (bad-mailbox, bad-domain) come
// last: a reply mentioning both "mailbox unavailable" and "blocked" is policy.
#include "smtp/bounce_class.hpp"

#include <span>
#include <utility>

#include "smtp/reply_parser.hpp"
#include "text/ascii.hpp"

namespace mailgate::smtp {
namespace {

using text::to_lower;

bool contains_any(std::string_view lower_text, std::span<const std::string_view> pats) {
  for (std::string_view p : pats) {
    if (lower_text.find(p) != std::string_view::npos) return true;
  }
  return false;
}

struct Enhanced {
  bool valid = false;
  int cls = 0, subject = 0, detail = 0;
};

// A well-formed enhanced code whose class agrees with the basic code.
Enhanced parse_enhanced(std::string_view e, int code) {
  Enhanced r;
  if (e.empty() || enhanced_code_length(e) != e.size()) return r;
  r.cls = e[0] - '0';
  if (r.cls != code / 100) return r;
  std::size_t i = 2;
  for (int* v : {&r.subject, &r.detail}) {
    for (; i < e.size() && e[i] != '.'; ++i) *v = *v * 10 + (e[i] - '0');
    ++i;
  }
  r.valid = true;
  return r;
}

bool prefix_matches(std::string_view enhanced, std::string_view prefix) {
  if (prefix.empty()) return true;
  if (enhanced.substr(0, prefix.size()) != prefix) return false;
  return prefix.back() == '.' || enhanced.size() == prefix.size() || enhanced[prefix.size()] == '.';
}

// Text evidence, most specific first; BadMailbox/BadDomain last (see above).
constexpr std::string_view kPolicy[] = {"spam",       "blocked",    "blacklist",  "blocklist",
                                        "black list", "block list", "denylist",   "spamhaus",
                                        "barracuda",  "dnsbl",      "reputation", "is listed",
                                        "are listed", "listed at",  "listed by",  "listed on"};
constexpr std::string_view kQuota[] = {"mailbox full",     "mailbox is full", "over quota",
                                       "quota exceeded",   "exceeded quota",  "exceeds quota",
                                       "exceeded storage", "mailbox size"};
constexpr std::string_view kContent[] = {"too large", "too big", "size"};
constexpr std::string_view kQuota552[] = {"mailbox", "quota", "storage"};
constexpr std::string_view kNullMx[] = {"null mx", "nullmx", "does not accept mail"};
constexpr std::string_view kBadDomain[] = {
    "domain not found",      "domain name not found", "host not found", "no such domain",
    "domain does not exist", "domain doesn't exist",  "null mx",        "nullmx",
    "does not accept mail"};
constexpr std::string_view kBadMailbox[] = {
    "user unknown",      "unknown user",        "no such user",      "no such mailbox",
    "no such recipient", "mailbox unavailable", "mailbox not found", "does not exist",
    "doesn't exist",     "recipient not found", "recipientnotfound", "unknown recipient",
    "recipient unknown", "invalid recipient",   "invalid mailbox",   "user not found"};

BounceClass builtin(int code, std::string_view enhanced, std::string_view lower_text) {
  if (code < 400 || code > 599) return BounceClass::None;
  const Enhanced e = parse_enhanced(enhanced, code);
  const bool generic = !e.valid || (e.subject == 0 && e.detail == 0);

  if (code < 500) {  // never a recipient-level class for a temporary failure
    if (e.valid && e.subject == 2 && e.detail == 2) return BounceClass::Quota;
    if (generic && contains_any(lower_text, kQuota)) return BounceClass::Quota;
    return BounceClass::Transient;
  }

  if (e.valid) {
    switch (e.subject) {
      case 1:  // addressing
        switch (e.detail) {
          case 0:  // Postfix: "5.1.0 ... Sender address rejected"
            return lower_text.find("sender") != std::string_view::npos ? BounceClass::Other
                                                                       : BounceClass::BadMailbox;
          case 1:
          case 3:
          case 6:
            return BounceClass::BadMailbox;
          case 10:  // RFC 7505 null MX; Office 365 also uses it for unknown users
            return contains_any(lower_text, kNullMx) ? BounceClass::BadDomain
                                                     : BounceClass::BadMailbox;
          case 2:
            return BounceClass::BadDomain;
          case 7:
          case 8:  // the sender's address: not the recipient's fault
            return BounceClass::Other;
          default:
            break;
        }
        break;
      case 2:  // mailbox status
        if (e.detail == 1) return BounceClass::BadMailbox;
        if (e.detail == 2) return BounceClass::Quota;
        if (e.detail == 3) return BounceClass::Content;
        break;
      case 3:  // mail system status
        if (e.detail == 4) return BounceClass::Content;
        break;
      case 4:  // network and routing
        return e.detail == 4 ? BounceClass::BadDomain : BounceClass::Routing;
      case 6:  // media / content
        return BounceClass::Content;
      case 7:  // security / policy
        return BounceClass::PolicyReputation;
      default:
        break;
    }
  }

  // No (decisive) enhanced code: the text.
  if (contains_any(lower_text, kPolicy)) return BounceClass::PolicyReputation;
  if (contains_any(lower_text, kQuota)) return BounceClass::Quota;
  if (contains_any(lower_text, kContent)) return BounceClass::Content;
  // A reply about the sender's address says nothing about the recipient.
  const bool about_sender = lower_text.find("sender") != std::string_view::npos;
  if (!about_sender && contains_any(lower_text, kBadDomain)) return BounceClass::BadDomain;
  if (!about_sender && contains_any(lower_text, kBadMailbox)) return BounceClass::BadMailbox;

  // Then the basic code.
  if (code == 552) {
    return contains_any(lower_text, kQuota552) ? BounceClass::Quota : BounceClass::Content;
  }
  if (code == 556) return BounceClass::BadDomain;  // RFC 7505
  return BounceClass::Other;
}

}  // namespace

const char* to_string(BounceClass c) {
  switch (c) {
    case BounceClass::None:
      return "";
    case BounceClass::BadMailbox:
      return "bad-mailbox";
    case BounceClass::BadDomain:
      return "bad-domain";
    case BounceClass::PolicyReputation:
      return "policy";
    case BounceClass::Content:
      return "content";
    case BounceClass::Quota:
      return "quota";
    case BounceClass::Routing:
      return "routing";
    case BounceClass::Transient:
      return "transient";
    case BounceClass::Other:
      return "other";
  }
  return "";
}

std::optional<BounceClass> bounce_class_from_string(std::string_view s) {
  for (BounceClass c : {BounceClass::BadMailbox, BounceClass::BadDomain,
                        BounceClass::PolicyReputation, BounceClass::Content, BounceClass::Quota,
                        BounceClass::Routing, BounceClass::Transient, BounceClass::Other}) {
    if (s == to_string(c)) return c;
  }
  return std::nullopt;
}

BounceClassifier::BounceClassifier() = default;

void BounceClassifier::add_rule(BounceRule r) {
  r.text_pattern = to_lower(r.text_pattern);
  rules_.push_back(std::move(r));
}

BounceClass BounceClassifier::classify(int code, std::string_view enhanced,
                                       std::string_view text) const {
  const std::string lower = to_lower(text);
  for (const BounceRule& r : rules_) {
    if (code < r.code_min || code > r.code_max) continue;
    if (!prefix_matches(enhanced, r.enhanced_prefix)) continue;
    if (lower.find(r.text_pattern) == std::string::npos) continue;
    return r.cls;
  }
  return builtin(code, enhanced, lower);
}

}  // namespace mailgate::smtp
