// Fuzz target: smtp/sasl (the AUTH command's arguments, the server's PLAIN
// and LOGIN decoding, the client's encoding). The input is used whole as
// what follows "AUTH ", as a client response line to a 334 challenge, and as
// raw credentials (split at its first 0xFF octet: user, then password) for
// the client-side encoders.
// Invariants checked:
//  - parse_auth_command: a mechanism of 1..20 of A-Z 0-9 - _ that is the
//    first word upper-cased; an initial response is one non-empty word
//    without a space ("=" gives ""); anything else is 501 5.5.4;
//  - decode_plain / decode_login_user / decode_login_password: "*" is 501
//    5.7.0 and nothing else is; an accepted user name is 1..255 octets of
//    UTF-8 without control characters, a password 1..255 octets without NUL;
//    what was accepted re-encodes (encode_plain / encode_login_field) to a
//    response that decodes to the same credentials; refusals are 501 5.5.2,
//    or 535 5.7.8 for a PLAIN authzid other than the authcid; refusal texts
//    come from a small fixed set, so none quotes the response or what it
//    decodes to (a password must never come back in a reply);
//  - the client side: encode_plain / encode_login_field accept exactly the
//    fields sasl_field_ok accepts, and the server decodes their output to
//    the same fields whenever the user name is a printable UTF-8 identity
//    (otherwise it refuses with 501 5.5.2).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.hpp"
#include "smtp/sasl.hpp"
#include "smtp_util.hpp"
#include "text/ascii.hpp"
#include "text/utf8.hpp"

using namespace mailgate;
using mailgate::fuzz::show;

namespace {

bool mechanism_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// What sasl.hpp promises of a decoded identity.
bool identity_ok(std::string_view s) {
  return !s.empty() && s.size() <= smtp::kSaslMaxField && text::valid_utf8(s) &&
         !mailgate::fuzz::has_ctl(s);
}

bool password_ok(std::string_view s) { return smtp::sasl_field_ok(s); }

void check_auth_command(std::string_view in) {
  auto r = smtp::parse_auth_command(in);
  if (auto* e = std::get_if<smtp::Reply>(&r)) {
    mailgate::fuzz::check_error_reply(*e, in);
    FUZZ_CHECK(e->code == 501 && e->enhanced == "5.5.4",
               "AUTH syntax error " + std::to_string(e->code) + " for " + show(in));
    return;
  }
  const auto& cmd = std::get<smtp::AuthCommand>(r);
  const auto space = in.find(' ');
  const auto word = in.substr(0, space);
  FUZZ_CHECK(
      !cmd.mechanism.empty() && cmd.mechanism.size() <= 20 && cmd.mechanism == text::to_upper(word),
      "mechanism " + show(cmd.mechanism) + " from " + show(in));
  for (char c : cmd.mechanism) FUZZ_CHECK(mechanism_char(c), "mechanism octet from " + show(in));
  if (space == std::string_view::npos) {
    FUZZ_CHECK(!cmd.initial_response, "initial response from one word: " + show(in));
    return;
  }
  FUZZ_CHECK(cmd.initial_response.has_value(), "initial response dropped from " + show(in));
  const auto ir = in.substr(space + 1);
  FUZZ_CHECK(!ir.empty() && ir.find(' ') == std::string_view::npos,
             "initial response with a space accepted: " + show(in));
  FUZZ_CHECK(*cmd.initial_response == (ir == "=" ? std::string_view() : ir),
             "initial response " + show(*cmd.initial_response) + " from " + show(in));
}

// A refusal of a client response: the promised codes, and a text from a
// small fixed set. (A reply that quoted the response, or what it decodes to,
// would give the fuzzer a new text for nearly every input.)
void check_refusal(const smtp::Reply& r, std::string_view in) {
  mailgate::fuzz::check_error_reply(r, in);
  const bool cancel = smtp::is_sasl_cancel(in);
  FUZZ_CHECK((r.code == 501 && r.enhanced == "5.7.0") == cancel,
             "cancel reply " + std::to_string(r.code) + " " + r.enhanced + " for " + show(in));
  FUZZ_CHECK(
      cancel || (r.code == 501 && r.enhanced == "5.5.2") ||
          (r.code == 535 && r.enhanced == "5.7.8"),
      "unexpected refusal " + std::to_string(r.code) + " " + r.enhanced + " for " + show(in));
  static std::set<std::string> texts;
  texts.insert(r.text);
  FUZZ_CHECK(texts.size() <= 16, "reply texts depend on the response: " + show(r.text));
}

void check_plain(std::string_view in) {
  auto r = smtp::decode_plain(in);
  if (auto* e = std::get_if<smtp::Reply>(&r)) {
    check_refusal(*e, in);
    return;
  }
  const auto& c = std::get<smtp::SaslCredentials>(r);
  FUZZ_CHECK(identity_ok(c.user), "PLAIN user " + show(c.user) + " from " + show(in));
  FUZZ_CHECK(password_ok(c.password), "PLAIN password " + show(c.password) + " from " + show(in));
  const auto again = smtp::encode_plain(c.user, c.password);
  FUZZ_CHECK(again.has_value(), "decoded PLAIN credentials do not encode: " + show(in));
  auto back = smtp::decode_plain(*again);
  const auto* b = std::get_if<smtp::SaslCredentials>(&back);
  FUZZ_CHECK(
      b != nullptr && b->user == c.user && b->password == c.password,
      "PLAIN re-encoded as " + show(*again) + " decodes differently (from " + show(in) + ")");
}

void check_login(std::string_view in) {
  auto u = smtp::decode_login_user(in);
  if (auto* e = std::get_if<smtp::Reply>(&u)) {
    check_refusal(*e, in);
    FUZZ_CHECK(e->code != 535, "535 from LOGIN for " + show(in));
  } else {
    const auto& user = std::get<std::string>(u);
    FUZZ_CHECK(identity_ok(user), "LOGIN user " + show(user) + " from " + show(in));
    const auto again = smtp::encode_login_field(user);
    FUZZ_CHECK(again && *again == in, "LOGIN user does not re-encode to " + show(in));
  }
  auto p = smtp::decode_login_password(in);
  if (auto* e = std::get_if<smtp::Reply>(&p)) {
    check_refusal(*e, in);
    FUZZ_CHECK(e->code != 535, "535 from LOGIN for " + show(in));
    // Every user name LOGIN accepts is also a valid password.
    FUZZ_CHECK(!std::holds_alternative<std::string>(u),
               "LOGIN accepts " + show(in) + " as a user name but not as a password");
  } else {
    const auto& password = std::get<std::string>(p);
    FUZZ_CHECK(password_ok(password), "LOGIN password " + show(password) + " from " + show(in));
    const auto again = smtp::encode_login_field(password);
    FUZZ_CHECK(again && *again == in, "LOGIN password does not re-encode to " + show(in));
  }
}

// The client side: arbitrary credentials, encoded, then decoded by the server.
void check_client(std::string_view in) {
  const auto split = in.find('\xff');
  const auto user = in.substr(0, split);
  const auto password = split == std::string_view::npos ? std::string_view() : in.substr(split + 1);
  const bool fields_ok = smtp::sasl_field_ok(user) && smtp::sasl_field_ok(password);
  const auto plain = smtp::encode_plain(user, password);
  FUZZ_CHECK(plain.has_value() == fields_ok, "encode_plain disagrees with sasl_field_ok");
  if (plain) {
    auto r = smtp::decode_plain(*plain);
    if (identity_ok(user)) {
      const auto* c = std::get_if<smtp::SaslCredentials>(&r);
      FUZZ_CHECK(c != nullptr && c->user == user && c->password == password,
                 "the server does not decode our PLAIN for " + show(in));
    } else {
      const auto* e = std::get_if<smtp::Reply>(&r);
      FUZZ_CHECK(e != nullptr && e->code == 501 && e->enhanced == "5.5.2",
                 "the server accepts a PLAIN user name that is not an identity: " + show(user));
    }
  }
  const auto login_user = smtp::encode_login_field(user);
  FUZZ_CHECK(login_user.has_value() == smtp::sasl_field_ok(user),
             "encode_login_field disagrees with sasl_field_ok");
  if (login_user) {
    auto r = smtp::decode_login_user(*login_user);
    const auto* u = std::get_if<std::string>(&r);
    FUZZ_CHECK((u != nullptr) == identity_ok(user) && (u == nullptr || *u == user),
               "LOGIN user " + show(user) + " round trip");
    auto p = smtp::decode_login_password(*login_user);
    const auto* pw = std::get_if<std::string>(&p);
    FUZZ_CHECK(pw != nullptr && *pw == user, "LOGIN password " + show(user) + " round trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  check_auth_command(in);
  check_plain(in);
  check_login(in);
  check_client(in);
  return 0;
}
