// Fuzz target: smtp/params (ESMTP parameters of MAIL and RCPT, RFC 3461
// xtext). The input is a parameter text as it follows "<path>" and also an
// xtext value.
// Invariants checked:
//  - accepted MAIL parameters: ENVID 1..100 printable octets, AUTH "<>" or a
//    mailbox parse_mailbox() accepts, no control character in any decoded
//    value; accepted RCPT parameters: NEVER excludes the other NOTIFY flags,
//    ORCPT is "type;value" without control characters;
//  - parse -> canonical form -> parse gives the same parameters (MAIL, and
//    RCPT with and without SMTPUTF8); SMTPUTF8 only widens RCPT's;
//  - errors are 501 5.5.4 or 555 5.5.4;
//  - xtext: decode(encode(s)) == s exactly when s has no control character
//    (decode refuses those); a decoded value holds no control character and
//    re-encodes to xtext that decodes to it again.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_check.hpp"
#include "smtp/address.hpp"
#include "smtp/params.hpp"
#include "smtp_util.hpp"

using namespace mailgate;
using mailgate::fuzz::show;

namespace {

void check_error(const smtp::Reply& r, std::string_view in) {
  mailgate::fuzz::check_error_reply(r, in);
  FUZZ_CHECK((r.code == 501 || r.code == 555) && r.enhanced == "5.5.4",
             "unexpected error " + std::to_string(r.code) + " for " + show(in));
}

bool valid_xtext(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < '!' || c > '~' || c == '=') return false;
  }
  return true;
}

void check_mail(std::string_view in) {
  auto r = smtp::parse_mail_params(in);
  if (auto* e = std::get_if<smtp::Reply>(&r)) return check_error(*e, in);
  const auto& p = std::get<smtp::MailParams>(r);
  if (!p.envid.empty()) {
    FUZZ_CHECK(p.envid.size() <= 100, "ENVID too long from " + show(in));
    for (char c : p.envid) FUZZ_CHECK(c >= 0x20 && c <= 0x7e, "ENVID octet from " + show(in));
  }
  if (!p.auth.empty() && p.auth != "<>") {
    FUZZ_CHECK(!mailgate::fuzz::has_ctl(p.auth), "AUTH control character from " + show(in));
    FUZZ_CHECK(std::holds_alternative<smtp::Address>(smtp::parse_mailbox(p.auth, p.smtputf8)),
               "AUTH is not a mailbox: " + show(p.auth));
  }
  const std::string wire = mailgate::fuzz::format_mail_params(p);
  auto r2 = smtp::parse_mail_params(wire);
  FUZZ_CHECK(std::holds_alternative<smtp::MailParams>(r2),
             "canonical MAIL parameters refused: " + show(wire) + " (from " + show(in) + ")");
  FUZZ_CHECK(mailgate::fuzz::same(p, std::get<smtp::MailParams>(r2)),
             "MAIL parameters round trip differs: " + show(in) + " -> " + show(wire));
}

void check_rcpt(std::string_view in) {
  std::optional<smtp::RcptParams> ok[2];
  for (int u = 0; u < 2; ++u) {
    auto r = smtp::parse_rcpt_params(in, u == 1);
    if (auto* e = std::get_if<smtp::Reply>(&r)) {
      check_error(*e, in);
      continue;
    }
    const auto& p = std::get<smtp::RcptParams>(r);
    if (p.notify & smtp::kNotifyNever) {
      FUZZ_CHECK(p.notify == smtp::kNotifyNever, "NEVER combined, from " + show(in));
    }
    FUZZ_CHECK(p.notify < 16, "NOTIFY bits from " + show(in));
    FUZZ_CHECK(!mailgate::fuzz::has_ctl(p.orcpt), "ORCPT control character from " + show(in));
    const std::string wire = mailgate::fuzz::format_rcpt_params(p);
    auto r2 = smtp::parse_rcpt_params(wire, u == 1);
    FUZZ_CHECK(std::holds_alternative<smtp::RcptParams>(r2),
               "canonical RCPT parameters refused: " + show(wire) + " (from " + show(in) + ")");
    FUZZ_CHECK(mailgate::fuzz::same(p, std::get<smtp::RcptParams>(r2)),
               "RCPT parameters round trip differs: " + show(in) + " -> " + show(wire));
    ok[u] = p;
  }
  if (ok[0]) {
    FUZZ_CHECK(ok[1] && mailgate::fuzz::same(*ok[0], *ok[1]),
               "SMTPUTF8 narrows or changes RCPT parameters " + show(in));
  }
}

void check_xtext(std::string_view in) {
  const std::string enc = smtp::xtext_encode(in);
  FUZZ_CHECK(valid_xtext(enc), "xtext_encode output is not xtext: " + show(enc));
  const auto dec = smtp::xtext_decode(enc);
  if (mailgate::fuzz::has_ctl(in)) {
    FUZZ_CHECK(!dec, "xtext_decode let a control character through: " + show(enc));
  } else {
    FUZZ_CHECK(dec && *dec == in, "xtext round trip differs for " + show(in));
  }
  if (auto d = smtp::xtext_decode(in)) {
    FUZZ_CHECK(valid_xtext(in), "xtext_decode accepted non-xtext " + show(in));
    FUZZ_CHECK(!mailgate::fuzz::has_ctl(*d),
               "decoded xtext holds a control character: " + show(in));
    FUZZ_CHECK(d->size() <= in.size(), "decoded xtext grew: " + show(in));
    auto again = smtp::xtext_decode(smtp::xtext_encode(*d));
    FUZZ_CHECK(again && *again == *d, "re-encoded xtext differs for " + show(in));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  check_mail(in);
  check_rcpt(in);
  check_xtext(in);
  return 0;
}
