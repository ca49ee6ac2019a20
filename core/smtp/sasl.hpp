// smtp/sasl: the SASL side of SMTP AUTH (RFC 4954) for the mechanisms
// mailgate speaks, PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login):
// the AUTH command's arguments, the server's decoding of client responses and
// the client's encoding of its credentials. Base64 is text/base64's strict
// decoder (no whitespace, canonical padding).
// Promises: pure functions, no I/O, never throw. Every refusal is a
// ready-to-send Reply: 501 5.7.0 for a cancelled exchange ("*"), 501 5.5.2
// for a response that is not base64 or not a well-formed PLAIN/LOGIN
// message, 535 5.7.8 for an authorization identity other than the
// authentication identity (an authentication failure, counted as one).
// Decoded identities are 1..255 octets of well-formed UTF-8 without control
// characters (so they can go into logs and a Received header as they are);
// passwords are 1..255 octets without NUL. The replies never quote what the
// client sent (a password must not come back in a reply or a log line).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "smtp/reply.hpp"

namespace mailgate::smtp {

// RFC 4616 §2: authcid, authzid and passwd are up to 255 octets.
inline constexpr std::size_t kSaslMaxField = 255;

// The longest base64 client response worth decoding: a PLAIN message of
// three 255-octet fields and two NULs (767 octets) encodes to 1024 characters.
inline constexpr std::size_t kSaslMaxResponse = 1024;

template <class T>
using SaslParsed = std::variant<T, Reply>;  // value, or the error reply to send

// --- the AUTH command -----------------------------------------------------------

struct AuthCommand {
  std::string mechanism;  // upper case, RFC 4422 §3.1 syntax (1..20 of A-Z 0-9 - _)
  // RFC 4954 §4: the optional initial response, still base64; "=" is an
  // empty response and is returned as "" (present but empty).
  std::optional<std::string> initial_response;
};

// `arg` is what follows "AUTH " ("PLAIN", "plain dGVzdA==", "LOGIN").
// Anything but a mechanism name and at most one response word is
// 501 5.5.4. Whether the mechanism is offered is the caller's business
// (504 5.5.4 otherwise).
SaslParsed<AuthCommand> parse_auth_command(std::string_view arg);

// A client response line to a 334 challenge is "*": the client cancels
// (RFC 4954 §4; the server answers 501 5.7.0).
bool is_sasl_cancel(std::string_view line);

// --- server side ------------------------------------------------------------------

struct SaslCredentials {
  std::string user;  // the authentication identity (authcid)
  std::string password;
};

// PLAIN: `response` is the base64 initial response or the reply to the empty
// 334 challenge. RFC 4616: [authzid] NUL authcid NUL passwd, exactly two
// NULs, authcid and passwd not empty; an authzid must equal authcid (no
// proxy authorization: 535 5.7.8 otherwise).
SaslParsed<SaslCredentials> decode_plain(std::string_view response);

// LOGIN: the server's two 334 challenges, base64 of "Username:" and
// "Password:".
inline constexpr std::string_view kLoginUserChallenge = "VXNlcm5hbWU6";
inline constexpr std::string_view kLoginPasswordChallenge = "UGFzc3dvcmQ6";

// LOGIN: a response to one of the challenges (or the user name given as an
// initial response, which some clients send): "*" cancels; otherwise the
// decoded user name (an identity, as above) or password (1..255 octets,
// no NUL).
SaslParsed<std::string> decode_login_user(std::string_view response);
SaslParsed<std::string> decode_login_password(std::string_view response);

// --- client side --------------------------------------------------------------------

// A user name or password the client can send: 1..255 octets without NUL
// (PLAIN separates fields with NUL; the limit is RFC 4616's).
bool sasl_field_ok(std::string_view field);

// The mechanism to use against a server that offers `offered` (EHLO's AUTH
// list, upper case): PLAIN if offered, else LOGIN, else "" (none we speak).
std::string_view pick_client_mechanism(const std::vector<std::string>& offered);

// PLAIN's response, base64 of NUL user NUL password (no authzid); nullopt
// when a field is not sasl_field_ok.
std::optional<std::string> encode_plain(std::string_view user, std::string_view password);

// LOGIN's responses: base64 of the field; nullopt when it is not sasl_field_ok.
std::optional<std::string> encode_login_field(std::string_view field);

}  // namespace mailgate::smtp
