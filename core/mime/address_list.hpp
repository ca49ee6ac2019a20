// mime/address_list: RFC 5322 §3.4 address lists as they appear in From:,
// To:, Cc:, Reply-To: — mailboxes ("Name <local@domain>", "local@domain")
// and groups ("team: a@x, b@y;"), with comments (nested, anywhere CFWS is
// allowed), quoted-strings and quoted-pairs in display names and local
// parts, domain literals, and folding. What a policy needs to know which
// domains a header names, without being fooled by quoting:
//   From: "a\" <ok@tenant.example> \"b" <ceo@victim.example>
// is ONE mailbox, ceo@victim.example.
// Promises: pure; never throws; linear in the input; input that is not an
// address list (unbalanced quotes, brackets or comments, a missing '@',
// junk between mailboxes) is rejected as a whole (nullopt) — never guessed
// at; at most 1,000 mailboxes and 64 nested comments.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::mime {

struct Mailbox {
  std::string display;  // unquoted, unfolded; "" if none
  std::string local;    // as written, quotes removed ("a b"@x → a b)
  std::string domain;   // as written (a dot-atom, or a [literal])
};

std::optional<std::vector<Mailbox>> parse_address_list(std::string_view value);

}  // namespace mailgate::mime
