// dkim/names: what a signing domain (d=) or selector (s=) may be, checked
// where an operator gives one (msg:dkim_sign, mailgate dkim keygen), so a
// value can never break the DKIM-Signature field or the DNS name
// <selector>._domainkey.<domain>.
// Promises: pure; ASCII letters, digits, '-', '_' and '.' only, no empty
// label, at most 253 octets.
#pragma once

#include <string_view>

namespace mailgate::dkim {

bool valid_dns_name(std::string_view name);

}  // namespace mailgate::dkim
