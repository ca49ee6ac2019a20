// Fuzz target: smtp/address (RFC 5321 / RFC 6531 path and mailbox parsing).
// The input is a path ("<...>") or a bare mailbox; both parsers see it, with
// every combination of options.
// Invariants checked:
//  - an accepted address respects the promises: local part <= 64 octets,
//    domain <= 255, "local@domain" <= 254; no control character; non-ASCII
//    only with SMTPUTF8 and only as valid UTF-8; an empty domain only for the
//    null path (allow_null) or "postmaster" (allow_postmaster); a dot-string
//    local part has no leading, trailing or double dot; a quoted one is
//    enclosed in quotes;
//  - round trip: "<" + address.str() + ">" parses to the same address, with
//    no source route;
//  - each option only widens: accepted without SMTPUTF8 / allow_null /
//    allow_postmaster => accepted with it, with the same address;
//  - parse_mailbox(s) accepts exactly what parse_path("<s>") accepts without
//    a source route, with the same address;
//  - errors are 501 5.5.4 (brackets) or 553 with 5.1.7 / 5.1.3 / 5.6.7.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_check.hpp"
#include "smtp/address.hpp"
#include "smtp_util.hpp"
#include "text/utf8.hpp"

using namespace mailgate;
using mailgate::fuzz::show;

namespace {

void check_error(const smtp::Reply& r, std::string_view in, const smtp::AddressOptions& o) {
  mailgate::fuzz::check_error_reply(r, in);
  const bool ok = (r.code == 501 && r.enhanced == "5.5.4") ||
                  (r.code == 553 &&
                   (r.enhanced == "5.6.7" || r.enhanced == (o.allow_null ? "5.1.7" : "5.1.3")));
  FUZZ_CHECK(ok,
             "unexpected error " + std::to_string(r.code) + " " + r.enhanced + " for " + show(in));
}

void check_address(const smtp::Address& a, std::string_view in, bool smtputf8) {
  const std::string s = a.str();
  FUZZ_CHECK(a.local.size() <= 64 && a.domain.size() <= 255 && s.size() <= 254,
             "length limits exceeded by " + show(s));
  FUZZ_CHECK(!mailgate::fuzz::has_ctl(s), "control character accepted in " + show(s));
  if (a.has_non_ascii()) {
    FUZZ_CHECK(smtputf8, "non-ASCII without SMTPUTF8: " + show(in));
    FUZZ_CHECK(text::valid_utf8(s), "invalid UTF-8 accepted: " + show(in));
  }
  FUZZ_CHECK(a.has_non_ascii() == smtp::has_non_ascii(s), "has_non_ascii() disagrees: " + show(s));
  FUZZ_CHECK(a.is_address_literal() == (!a.domain.empty() && a.domain.front() == '['),
             "is_address_literal: " + show(s));
  if (a.is_address_literal()) FUZZ_CHECK(a.domain.back() == ']', "literal: " + show(s));
  if (!a.local.empty() && a.local.front() == '"') {
    FUZZ_CHECK(a.local.size() >= 2 && a.local.back() == '"', "quoted local part: " + show(s));
  } else if (!a.local.empty()) {
    FUZZ_CHECK(
        a.local.front() != '.' && a.local.back() != '.' && a.local.find("..") == std::string::npos,
        "misplaced dot accepted: " + show(s));
  }
  (void)a.has_routing_chars();
}

std::optional<smtp::Path> path(std::string_view in, smtp::AddressOptions o) {
  auto r = smtp::parse_path(in, o);
  if (auto* e = std::get_if<smtp::Reply>(&r)) {
    check_error(*e, in, o);
    return std::nullopt;
  }
  auto p = std::get<smtp::Path>(std::move(r));
  const auto& a = p.address;
  check_address(a, in, o.smtputf8);
  if (a.domain.empty()) {
    const bool null_path = a.local.empty() && o.allow_null;
    const bool postmaster = a.local == "postmaster" && o.allow_postmaster;
    FUZZ_CHECK(null_path || postmaster, "address without domain accepted: " + show(in));
  }
  const std::string wire = "<" + a.str() + ">";
  auto again = smtp::parse_path(wire, o);
  FUZZ_CHECK(std::holds_alternative<smtp::Path>(again),
             "round trip refused: " + show(wire) + " (from " + show(in) + ")");
  const auto& p2 = std::get<smtp::Path>(again);
  FUZZ_CHECK(mailgate::fuzz::same(a, p2.address) && !p2.had_source_route,
             "round trip differs: " + show(in) + " -> " + show(wire));
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  // results[utf8][null][postmaster]
  std::optional<smtp::Path> results[2][2][2];
  for (int u = 0; u < 2; ++u)
    for (int n = 0; n < 2; ++n)
      for (int p = 0; p < 2; ++p) {
        smtp::AddressOptions o;
        o.smtputf8 = u == 1;
        o.allow_null = n == 1;
        o.allow_postmaster = p == 1;
        results[u][n][p] = path(in, o);
      }
  auto widens = [&](const std::optional<smtp::Path>& narrow, const std::optional<smtp::Path>& wide,
                    const char* option) {
    if (!narrow) return;
    FUZZ_CHECK(wide.has_value(),
               std::string(option) + " refuses what is accepted without it: " + show(in));
    FUZZ_CHECK(mailgate::fuzz::same(narrow->address, wide->address) &&
                   narrow->had_source_route == wide->had_source_route,
               std::string(option) + " changes the parse of " + show(in));
  };
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      widens(results[0][a][b], results[1][a][b], "SMTPUTF8");
      widens(results[a][0][b], results[a][1][b], "allow_null");
      widens(results[a][b][0], results[a][b][1], "allow_postmaster");
    }

  for (int u = 0; u < 2; ++u) {
    auto mb = smtp::parse_mailbox(in, u == 1);
    smtp::AddressOptions o;
    o.smtputf8 = u == 1;
    auto r = smtp::parse_path("<" + in + ">", o);
    const auto* p = std::get_if<smtp::Path>(&r);
    const bool path_ok = p != nullptr && !p->had_source_route;
    if (auto* e = std::get_if<smtp::Reply>(&mb)) {
      mailgate::fuzz::check_error_reply(*e, in);
      FUZZ_CHECK(!path_ok, "parse_mailbox refuses what parse_path accepts: " + show(in));
      continue;
    }
    const auto& a = std::get<smtp::Address>(mb);
    check_address(a, in, u == 1);
    FUZZ_CHECK(path_ok && mailgate::fuzz::same(a, p->address),
               "parse_mailbox and parse_path disagree on " + show(in));
    FUZZ_CHECK(a.str() == in, "mailbox is not the input: " + show(in));
  }
  return 0;
}
