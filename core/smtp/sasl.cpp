// smtp/sasl: see sasl.hpp.
#include "smtp/sasl.hpp"

#include <algorithm>

#include "text/ascii.hpp"
#include "text/base64.hpp"
#include "text/utf8.hpp"

namespace mailgate::smtp {
namespace {

Reply cancelled() { return {501, "5.7.0", "authentication cancelled"}; }
Reply not_base64() { return {501, "5.5.2", "cannot decode the response (base64)"}; }
Reply malformed(std::string_view what) {
  return {501, "5.5.2", "malformed authentication response: " + std::string(what)};
}

bool is_mechanism_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// An identity as it may be logged and written into a Received header:
// 1..255 octets of well-formed UTF-8, no ASCII control character.
bool identity_ok(std::string_view s) {
  if (s.empty() || s.size() > kSaslMaxField || !text::valid_utf8(s)) return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7F;
  });
}

// The base64 response decoded, or the reply refusing it.
SaslParsed<std::string> decode_response(std::string_view response) {
  if (is_sasl_cancel(response)) return cancelled();
  if (response.size() > kSaslMaxResponse) return malformed("too long");
  auto decoded = text::base64_decode(response);
  if (!decoded) return not_base64();
  return std::move(*decoded);
}

}  // namespace

SaslParsed<AuthCommand> parse_auth_command(std::string_view arg) {
  const Reply bad{501, "5.5.4", "syntax: AUTH mechanism [initial-response]"};
  AuthCommand out;
  const auto space = arg.find(' ');
  const auto mech = arg.substr(0, space);
  if (mech.empty() || mech.size() > 20) return bad;
  out.mechanism = text::to_upper(mech);
  if (!std::all_of(out.mechanism.begin(), out.mechanism.end(), is_mechanism_char)) return bad;
  if (space != std::string_view::npos) {
    const auto ir = arg.substr(space + 1);
    if (ir.empty() || ir.find(' ') != std::string_view::npos) return bad;
    out.initial_response = ir == "=" ? std::string() : std::string(ir);
  }
  return out;
}

bool is_sasl_cancel(std::string_view line) { return line == "*"; }

SaslParsed<SaslCredentials> decode_plain(std::string_view response) {
  auto decoded = decode_response(response);
  if (auto* r = std::get_if<Reply>(&decoded)) return *r;
  const std::string_view msg = std::get<std::string>(decoded);
  const auto nul1 = msg.find('\0');
  if (nul1 == std::string_view::npos)
    return malformed("PLAIN needs authzid NUL authcid NUL passwd");
  const auto nul2 = msg.find('\0', nul1 + 1);
  if (nul2 == std::string_view::npos)
    return malformed("PLAIN needs authzid NUL authcid NUL passwd");
  if (msg.find('\0', nul2 + 1) != std::string_view::npos)
    return malformed("PLAIN has a NUL inside a field");
  const auto authzid = msg.substr(0, nul1);
  const auto authcid = msg.substr(nul1 + 1, nul2 - nul1 - 1);
  const auto password = msg.substr(nul2 + 1);
  if (authcid.empty() || password.empty()) return malformed("empty user name or password");
  if (authcid.size() > kSaslMaxField || password.size() > kSaslMaxField ||
      authzid.size() > kSaslMaxField)
    return malformed("a field is longer than 255 octets");
  if (!identity_ok(authcid)) return malformed("the user name is not printable UTF-8");
  if (!authzid.empty() && authzid != authcid)
    return Reply{535, "5.7.8", "authentication credentials invalid"};
  return SaslCredentials{std::string(authcid), std::string(password)};
}

SaslParsed<std::string> decode_login_user(std::string_view response) {
  auto decoded = decode_response(response);
  if (auto* r = std::get_if<Reply>(&decoded)) return *r;
  auto& user = std::get<std::string>(decoded);
  if (user.empty()) return malformed("empty user name");
  if (user.size() > kSaslMaxField) return malformed("the user name is longer than 255 octets");
  if (!identity_ok(user)) return malformed("the user name is not printable UTF-8");
  return decoded;
}

SaslParsed<std::string> decode_login_password(std::string_view response) {
  auto decoded = decode_response(response);
  if (auto* r = std::get_if<Reply>(&decoded)) return *r;
  const auto& password = std::get<std::string>(decoded);
  if (password.empty()) return malformed("empty password");
  if (password.size() > kSaslMaxField) return malformed("the password is longer than 255 octets");
  if (password.find('\0') != std::string::npos) return malformed("a NUL in the password");
  return decoded;
}

bool sasl_field_ok(std::string_view field) {
  return !field.empty() && field.size() <= kSaslMaxField &&
         field.find('\0') == std::string_view::npos;
}

std::string_view pick_client_mechanism(const std::vector<std::string>& offered) {
  for (const std::string_view m : {"PLAIN", "LOGIN"})
    if (std::find(offered.begin(), offered.end(), m) != offered.end()) return m;
  return {};
}

std::optional<std::string> encode_plain(std::string_view user, std::string_view password) {
  if (!sasl_field_ok(user) || !sasl_field_ok(password)) return std::nullopt;
  std::string msg;
  msg.reserve(user.size() + password.size() + 2);
  msg.push_back('\0');
  msg.append(user);
  msg.push_back('\0');
  msg.append(password);
  return text::base64_encode(msg);
}

std::optional<std::string> encode_login_field(std::string_view field) {
  if (!sasl_field_ok(field)) return std::nullopt;
  return text::base64_encode(field);
}

}  // namespace mailgate::smtp
