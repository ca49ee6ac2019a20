// smtp/command: splits an SMTP command line into verb and argument and parses
// the arguments of the verbs that have structured ones (MAIL, RCPT, BDAT, EHLO).
// Pure functions: no I/O, no allocation beyond the returned values.
// Promises: verbs are matched case-insensitively; any syntax problem is
// returned as a ready-to-send Reply (5xx with an enhanced code), never thrown.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/address.hpp"
#include "smtp/params.hpp"
#include "smtp/reply.hpp"

namespace mailgate::smtp {

enum class Verb {
  Ehlo,
  Helo,
  Mail,
  Rcpt,
  Data,
  Bdat,
  Rset,
  Noop,
  Quit,
  Vrfy,
  Help,
  Starttls,
  Auth,
  Expn,
  Unknown
};

struct Command {
  Verb verb = Verb::Unknown;
  std::string_view arg;  // text after the verb and its separating space(s); may be empty
};

// `line` excludes the trailing CRLF. Never fails: unknown verbs give Verb::Unknown.
Command parse_command(std::string_view line);

// true when `line` starts with an HTTP method (GET, POST, CONNECT, PUT, HEAD):
// a web client or a cross-protocol attack talking to the SMTP port.
bool is_http_request_line(std::string_view line);

template <class T>
using Parsed = std::variant<T, Reply>;  // value, or the error reply to send

// EHLO/HELO argument: a domain or an address literal ("[1.2.3.4]", "[IPv6:...]").
// Returns the argument as given (trimmed).
Parsed<std::string> parse_helo(std::string_view arg);

struct MailFrom {
  Path path;  // null path allowed (path.address.empty())
  MailParams params;
};
// `arg` is everything after "MAIL" (must start with "FROM:", case-insensitive;
// a space after the colon is tolerated as many clients send it).
// `smtputf8_offered` = the server advertised SMTPUTF8 (it always does today).
Parsed<MailFrom> parse_mail_from(std::string_view arg);

struct RcptTo {
  Path path;  // never null
  RcptParams params;
};
Parsed<RcptTo> parse_rcpt_to(std::string_view arg, bool smtputf8);

struct Bdat {
  std::uint64_t size = 0;
  bool last = false;
};
Parsed<Bdat> parse_bdat(std::string_view arg);

}  // namespace mailgate::smtp
