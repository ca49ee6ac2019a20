// Fuzz target: smtp/command (command-line splitting, EHLO/HELO, MAIL FROM,
// RCPT TO, BDAT arguments). The input is one command line without its CRLF.
// Invariants checked (beyond "no crash, no sanitizer report"):
//  - parse_command: the argument is a blank-trimmed slice of the line; a known
//    verb is the line's first word (case-insensitively); rebuilding
//    "<word> <arg>" parses to the same verb and argument; a line
//    is_http_request_line() flags is never an SMTP verb (the session drops
//    such a client only when the verb is unknown);
//  - every structured parser either succeeds or returns a 5xx reply with a
//    5.x.x enhanced code that a client parses back;
//  - MAIL / RCPT / BDAT / HELO: parse -> canonical wire form -> parse gives
//    the same value (address, every ESMTP parameter, size and LAST);
//  - RCPT TO: SMTPUTF8 only widens what is accepted (accepted without it =>
//    accepted with it, with the same result); non-ASCII is refused without it.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "smtp/command.hpp"
#include "smtp_util.hpp"
#include "text/ascii.hpp"

using namespace mailgate;
using mailgate::fuzz::show;

namespace {

std::string_view verb_name(smtp::Verb v) {
  using smtp::Verb;
  switch (v) {
    case Verb::Ehlo:
      return "EHLO";
    case Verb::Helo:
      return "HELO";
    case Verb::Mail:
      return "MAIL";
    case Verb::Rcpt:
      return "RCPT";
    case Verb::Data:
      return "DATA";
    case Verb::Bdat:
      return "BDAT";
    case Verb::Rset:
      return "RSET";
    case Verb::Noop:
      return "NOOP";
    case Verb::Quit:
      return "QUIT";
    case Verb::Vrfy:
      return "VRFY";
    case Verb::Help:
      return "HELP";
    case Verb::Starttls:
      return "STARTTLS";
    case Verb::Auth:
      return "AUTH";
    case Verb::Expn:
      return "EXPN";
    case Verb::Unknown:
      return "";
  }
  return "";
}

bool blank(char c) { return c == ' ' || c == '\t'; }

void check_command(std::string_view line) {
  const auto cmd = smtp::parse_command(line);
  const std::string_view word = line.substr(0, line.find(' '));
  if (cmd.verb != smtp::Verb::Unknown) {
    FUZZ_CHECK(text::iequals(word, verb_name(cmd.verb)), "verb from " + show(line));
  }
  if (!cmd.arg.empty()) {
    FUZZ_CHECK(cmd.arg.data() >= line.data() + word.size() &&
                   cmd.arg.data() + cmd.arg.size() <= line.data() + line.size(),
               "argument is not a slice of the line after the verb: " + show(line));
    FUZZ_CHECK(!blank(cmd.arg.front()) && !blank(cmd.arg.back()),
               "argument not trimmed: " + show(cmd.arg));
  }
  std::string rebuilt(word);
  if (!cmd.arg.empty()) rebuilt.append(" ").append(cmd.arg);
  const auto again = smtp::parse_command(rebuilt);
  FUZZ_CHECK(again.verb == cmd.verb && again.arg == cmd.arg,
             "rebuilt command " + show(rebuilt) + " parses differently from " + show(line));
  if (smtp::is_http_request_line(line)) {
    FUZZ_CHECK(cmd.verb == smtp::Verb::Unknown,
               "HTTP request line parses as a verb: " + show(line));
  }
}

void check_helo(std::string_view arg) {
  auto r = smtp::parse_helo(arg);
  if (auto* e = std::get_if<smtp::Reply>(&r)) return mailgate::fuzz::check_error_reply(*e, arg);
  const auto& name = std::get<std::string>(r);
  FUZZ_CHECK(name == text::trim(arg), "HELO argument changed: " + show(arg) + " -> " + show(name));
  auto again = smtp::parse_helo(name);
  FUZZ_CHECK(std::holds_alternative<std::string>(again) && std::get<std::string>(again) == name,
             "HELO name does not parse again: " + show(name));
}

void check_mail(std::string_view arg) {
  auto r = smtp::parse_mail_from(arg);
  if (auto* e = std::get_if<smtp::Reply>(&r)) return mailgate::fuzz::check_error_reply(*e, arg);
  const auto& mf = std::get<smtp::MailFrom>(r);
  if (!mf.params.smtputf8) {
    FUZZ_CHECK(!mf.path.address.has_non_ascii(), "non-ASCII sender without SMTPUTF8: " + show(arg));
  }
  const std::string wire =
      "FROM:<" + mf.path.address.str() + ">" + mailgate::fuzz::format_mail_params(mf.params);
  auto r2 = smtp::parse_mail_from(wire);
  FUZZ_CHECK(std::holds_alternative<smtp::MailFrom>(r2),
             "canonical MAIL argument refused: " + show(wire) + " (from " + show(arg) + ")");
  const auto& mf2 = std::get<smtp::MailFrom>(r2);
  FUZZ_CHECK(mailgate::fuzz::same(mf.path.address, mf2.path.address) &&
                 mailgate::fuzz::same(mf.params, mf2.params) && !mf2.path.had_source_route,
             "MAIL round trip differs: " + show(arg) + " -> " + show(wire));
}

void check_rcpt(std::string_view arg) {
  std::array<std::optional<smtp::RcptTo>, 2> ok;
  for (int utf8 = 0; utf8 < 2; ++utf8) {
    auto r = smtp::parse_rcpt_to(arg, utf8 == 1);
    if (auto* e = std::get_if<smtp::Reply>(&r)) {
      mailgate::fuzz::check_error_reply(*e, arg);
      continue;
    }
    const auto& rt = std::get<smtp::RcptTo>(r);
    FUZZ_CHECK(!rt.path.address.empty(), "null recipient accepted: " + show(arg));
    if (!utf8)
      FUZZ_CHECK(!rt.path.address.has_non_ascii(), "non-ASCII without SMTPUTF8: " + show(arg));
    const std::string wire =
        "TO:<" + rt.path.address.str() + ">" + mailgate::fuzz::format_rcpt_params(rt.params);
    auto r2 = smtp::parse_rcpt_to(wire, utf8 == 1);
    FUZZ_CHECK(std::holds_alternative<smtp::RcptTo>(r2),
               "canonical RCPT argument refused: " + show(wire) + " (from " + show(arg) + ")");
    const auto& rt2 = std::get<smtp::RcptTo>(r2);
    FUZZ_CHECK(mailgate::fuzz::same(rt.path.address, rt2.path.address) &&
                   mailgate::fuzz::same(rt.params, rt2.params),
               "RCPT round trip differs: " + show(arg) + " -> " + show(wire));
    ok[utf8] = rt;
  }
  if (ok[0]) {
    FUZZ_CHECK(ok[1].has_value(), "accepted without SMTPUTF8 but not with it: " + show(arg));
    FUZZ_CHECK(mailgate::fuzz::same(ok[0]->path.address, ok[1]->path.address) &&
                   mailgate::fuzz::same(ok[0]->params, ok[1]->params),
               "SMTPUTF8 changes the parse of " + show(arg));
  }
}

void check_bdat(std::string_view arg) {
  auto r = smtp::parse_bdat(arg);
  if (auto* e = std::get_if<smtp::Reply>(&r)) return mailgate::fuzz::check_error_reply(*e, arg);
  const auto b = std::get<smtp::Bdat>(r);
  const std::string wire = std::to_string(b.size) + (b.last ? " LAST" : "");
  auto r2 = smtp::parse_bdat(wire);
  FUZZ_CHECK(std::holds_alternative<smtp::Bdat>(r2) && std::get<smtp::Bdat>(r2).size == b.size &&
                 std::get<smtp::Bdat>(r2).last == b.last,
             "BDAT round trip differs: " + show(arg) + " -> " + show(wire));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  check_command(line);
  // Every structured parser sees the argument whatever the verb: the
  // corpus's MAIL lines then feed RCPT's parser too, and vice versa.
  const auto cmd = smtp::parse_command(line);
  check_helo(cmd.arg);
  check_mail(cmd.arg);
  check_rcpt(cmd.arg);
  check_bdat(cmd.arg);
  return 0;
}
