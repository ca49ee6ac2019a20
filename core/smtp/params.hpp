// smtp/params: ESMTP parameters of MAIL and RCPT (RFC 1870 SIZE, RFC 6152
// 8BITMIME, RFC 6531 SMTPUTF8, RFC 3461 DSN RET/ENVID/NOTIFY/ORCPT, RFC 4954
// AUTH=). Promises: keywords case-insensitive; a keyword given twice, an
// unknown keyword, or a bad value is an error reply (555 5.5.4 / 501 5.5.4);
// xtext is decoded and validated (RFC 3461 §4), so decoded values never hold
// CR, LF or NUL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "smtp/reply.hpp"

namespace mailgate::smtp {

enum class BodyType : std::uint8_t { Unspecified = 0, SevenBit = 1, EightBitMime = 2 };
enum class Ret : std::uint8_t { Unspecified = 0, Full = 1, Hdrs = 2 };

struct MailParams {
  std::optional<std::uint64_t> size;
  BodyType body = BodyType::Unspecified;
  bool smtputf8 = false;
  Ret ret = Ret::Unspecified;
  std::string envid;  // decoded xtext, <= 100 chars
  std::string auth;   // decoded xtext mailbox or "<>"
};

// NOTIFY bit set (RFC 3461 §4.1): Never excludes the others.
enum NotifyFlags : std::uint8_t {
  kNotifyUnspecified = 0,
  kNotifyNever = 1,
  kNotifySuccess = 2,
  kNotifyFailure = 4,
  kNotifyDelay = 8,
};

struct RcptParams {
  std::uint8_t notify = kNotifyUnspecified;
  std::string orcpt;  // "addr-type;decoded-address", e.g. "rfc822;a@b", or empty
};

// The NOTIFY value as on the wire: "NEVER" or e.g. "SUCCESS,FAILURE"; "" when unspecified.
std::string notify_text(std::uint8_t notify);

// `text` is the part after the closing '>' (may be empty or start with spaces).
std::variant<MailParams, Reply> parse_mail_params(std::string_view text);
std::variant<RcptParams, Reply> parse_rcpt_params(std::string_view text, bool smtputf8);

// RFC 3461 xtext: decode ("+2B" -> '+'); nullopt when malformed.
std::optional<std::string> xtext_decode(std::string_view s);
std::string xtext_encode(std::string_view s);

}  // namespace mailgate::smtp
