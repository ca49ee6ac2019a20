// dns/idna: domain names as they go on the wire. A domain in UTF-8 (an
// SMTPUTF8 recipient such as "bücher.example") is converted to its A-label
// form ("xn--bcher-kva.example") with libidn2 under IDNA2008 non-transitional
// rules; ASCII names are checked and lower-cased.
// Promises: the result is lower case, has no trailing dot, is at most 253
// octets, every label is 1–63 octets of [a-z0-9_-]; anything else (empty
// labels, invalid UTF-8, code points IDNA2008 disallows, bad punycode, IP
// literals in brackets) is rejected with a reason. Never throws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailgate::dns {

std::optional<std::string> to_a_label(std::string_view domain, std::string& error);
inline std::optional<std::string> to_a_label(std::string_view domain) {
  std::string ignored;
  return to_a_label(domain, ignored);
}

// The one form every stored or compared domain takes (envelope domains,
// relay_domains, metrics.destinations, suppression keys, routing): what
// to_a_label gives (A-label, lower case; "ｇmail.com" and "GMAIL.com" are
// both "gmail.com", as the resolver will see them), so policy never matches
// a name other than the one mail goes to. An address literal ("[192.0.2.1]")
// or a name to_a_label refuses is only lower-cased (delivery then fails on
// it with a clear reason; it cannot alias a valid name).
std::string normalize_domain(std::string_view domain);
// The Unicode form of normalize_domain(domain) for people and hooks
// ("xn--bcher-kva.example" → "bücher.example"); the normalized form itself
// when it has no A-label or does not convert.
std::string to_unicode(std::string_view domain);

}  // namespace mailgate::dns
