// smtp/command: SMTP command-line splitting (verb + argument) and the
// structured arguments of EHLO/HELO, MAIL FROM, RCPT TO and BDAT
// (RFC 5321 §4.1.1, RFC 3030, RFC 6531).
// Promises: verbs match case-insensitively; the argument has its separating
// and trailing blanks removed; every syntax problem comes back as a ready Reply
// (5xx + enhanced code): 501 5.5.4 for command syntax, 553 5.1.7 / 5.1.3 for a
// bad sender / recipient address, 553 5.6.7 for non-ASCII without SMTPUTF8,
// 555 5.5.4 / 501 5.5.4 for parameters (see params.hpp).
#include "smtp/command.hpp"

#include <array>
#include <limits>

#include "smtp/syntax.hpp"
#include "text/ascii.hpp"

namespace mailgate::smtp {

using detail::make_reply;
using text::iequals;
using text::istarts_with;
using text::trim;

namespace {

struct VerbName {
  std::string_view name;
  Verb verb;
};
constexpr std::array<VerbName, 14> kVerbs{{
    {"EHLO", Verb::Ehlo},
    {"HELO", Verb::Helo},
    {"MAIL", Verb::Mail},
    {"RCPT", Verb::Rcpt},
    {"DATA", Verb::Data},
    {"BDAT", Verb::Bdat},
    {"RSET", Verb::Rset},
    {"NOOP", Verb::Noop},
    {"QUIT", Verb::Quit},
    {"VRFY", Verb::Vrfy},
    {"HELP", Verb::Help},
    {"STARTTLS", Verb::Starttls},
    {"AUTH", Verb::Auth},
    {"EXPN", Verb::Expn},
}};

// Index of the '>' that closes the path starting at s[0] == '<' (quoted
// strings may contain '>'), or npos.
std::size_t path_end(std::string_view s) {
  bool quoted = false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '>') {
      return i;
    }
  }
  return std::string_view::npos;
}

// Splits "PREFIX:<path> params" into the path text and the parameter text.
// Returns false on a syntax error.
bool split_path_arg(std::string_view arg, std::string_view prefix, std::string_view& path,
                    std::string_view& params) {
  if (!istarts_with(arg, prefix)) return false;
  arg.remove_prefix(prefix.size());
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);  // "FROM: <a@b>"
  if (arg.empty() || arg.front() != '<') return false;
  const std::size_t end = path_end(arg);
  if (end == std::string_view::npos) return false;
  path = arg.substr(0, end + 1);
  params = arg.substr(end + 1);
  return params.empty() || params.front() == ' ';
}

}  // namespace

bool is_http_request_line(std::string_view line) {
  const std::string_view word = line.substr(0, line.find(' '));
  for (std::string_view m : {"GET", "POST", "CONNECT", "PUT", "HEAD"})
    if (iequals(word, m)) return true;
  return false;
}

Command parse_command(std::string_view line) {
  Command cmd;
  const std::size_t sp = line.find(' ');
  const std::string_view verb = line.substr(0, sp);
  for (const auto& v : kVerbs) {
    if (iequals(verb, v.name)) {
      cmd.verb = v.verb;
      break;
    }
  }
  if (sp != std::string_view::npos) cmd.arg = trim(line.substr(sp + 1));
  return cmd;
}

Parsed<std::string> parse_helo(std::string_view arg) {
  arg = trim(arg);
  if (arg.empty()) return make_reply(501, "5.5.4", "Syntax: EHLO/HELO domain-or-address-literal");
  bool ok;
  if (arg.front() == '[') {
    ok = detail::valid_address_literal(arg);
  } else {
    // Lenient for real clients: '_' in labels and a final '.' are tolerated.
    ok = detail::valid_domain(arg, {.utf8 = false, .underscore = true, .trailing_dot = true});
  }
  if (!ok) return make_reply(501, "5.5.4", "Invalid EHLO/HELO domain");
  return std::string(arg);
}

Parsed<MailFrom> parse_mail_from(std::string_view arg) {
  std::string_view path_text, params_text;
  if (!split_path_arg(trim(arg), "FROM:", path_text, params_text)) {
    return make_reply(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]");
  }
  // Parameters first: SMTPUTF8 decides whether the address may be UTF-8.
  auto params = parse_mail_params(params_text);
  if (auto* e = std::get_if<Reply>(&params)) return std::move(*e);
  MailFrom mf;
  mf.params = std::move(std::get<MailParams>(params));
  AddressOptions opts;
  opts.allow_null = true;
  opts.smtputf8 = mf.params.smtputf8;
  auto path = detail::parse_path(path_text, opts, "5.1.7");
  if (auto* e = std::get_if<Reply>(&path)) return std::move(*e);
  mf.path = std::move(std::get<Path>(path));
  return mf;
}

Parsed<RcptTo> parse_rcpt_to(std::string_view arg, bool smtputf8) {
  std::string_view path_text, params_text;
  if (!split_path_arg(trim(arg), "TO:", path_text, params_text)) {
    return make_reply(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]");
  }
  AddressOptions opts;
  opts.allow_null = false;
  opts.smtputf8 = smtputf8;
  opts.allow_postmaster = true;
  auto path = detail::parse_path(path_text, opts, "5.1.3");
  if (auto* e = std::get_if<Reply>(&path)) return std::move(*e);
  auto params = parse_rcpt_params(params_text, smtputf8);
  if (auto* e = std::get_if<Reply>(&params)) return std::move(*e);
  RcptTo rt;
  rt.path = std::move(std::get<Path>(path));
  rt.params = std::move(std::get<RcptParams>(params));
  return rt;
}

Parsed<Bdat> parse_bdat(std::string_view arg) {
  // bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]; chunk-size = 1*DIGIT
  // (RFC 3030). At most 20 digits and no wrap-around: a size that does not fit
  // in 64 bits is refused (the chunk could never be read anyway).
  arg = trim(arg);
  const Reply bad = make_reply(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
  std::size_t i = 0;
  std::uint64_t n = 0;
  while (i < arg.size() && detail::is_digit(static_cast<unsigned char>(arg[i]))) {
    const auto d = static_cast<std::uint64_t>(arg[i] - '0');
    if (i >= 20 || n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return bad;
    n = n * 10 + d;
    ++i;
  }
  if (i == 0) return bad;
  Bdat b;
  b.size = n;
  std::string_view rest = arg.substr(i);
  if (rest.empty()) return b;
  if (rest.front() != ' ') return bad;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (!iequals(rest, "LAST")) return bad;
  b.last = true;
  return b;
}

}  // namespace mailgate::smtp
