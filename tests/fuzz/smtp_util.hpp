// Shared by the smtp/ fuzz targets: the canonical wire form of parsed ESMTP
// parameters (so parse -> format -> parse can be checked), equality of parsed
// values, and the checks every error reply of a parser must pass.
#pragma once

#include <string>

#include "fuzz_check.hpp"
#include "smtp/address.hpp"
#include "smtp/params.hpp"
#include "smtp/reply.hpp"
#include "smtp/reply_parser.hpp"
#include "text/ascii.hpp"

namespace mailgate::fuzz {

inline std::string format_mail_params(const smtp::MailParams& p) {
  std::string s;
  if (p.size) s += " SIZE=" + std::to_string(*p.size);
  if (p.body == smtp::BodyType::SevenBit) s += " BODY=7BIT";
  if (p.body == smtp::BodyType::EightBitMime) s += " BODY=8BITMIME";
  if (p.smtputf8) s += " SMTPUTF8";
  if (p.ret == smtp::Ret::Full) s += " RET=FULL";
  if (p.ret == smtp::Ret::Hdrs) s += " RET=HDRS";
  if (!p.envid.empty()) s += " ENVID=" + smtp::xtext_encode(p.envid);
  if (!p.auth.empty()) s += " AUTH=" + smtp::xtext_encode(p.auth);
  return s;
}

// ORCPT is kept as "type;value": decoded xtext, except for the RFC 6533
// "utf-8" type whose value stays in its encoded form.
inline std::string format_rcpt_params(const smtp::RcptParams& p) {
  std::string s;
  if (p.notify) s += " NOTIFY=" + smtp::notify_text(p.notify);
  if (!p.orcpt.empty()) {
    const auto semi = p.orcpt.find(';');
    FUZZ_CHECK(semi != std::string::npos && semi > 0, "ORCPT without type: " + show(p.orcpt));
    const std::string_view type = std::string_view(p.orcpt).substr(0, semi);
    const std::string_view value = std::string_view(p.orcpt).substr(semi + 1);
    s += " ORCPT=";
    s += type;
    s += ';';
    s += text::iequals(type, "utf-8") ? std::string(value) : smtp::xtext_encode(value);
  }
  return s;
}

inline bool same(const smtp::MailParams& a, const smtp::MailParams& b) {
  return a.size == b.size && a.body == b.body && a.smtputf8 == b.smtputf8 && a.ret == b.ret &&
         a.envid == b.envid && a.auth == b.auth;
}
inline bool same(const smtp::RcptParams& a, const smtp::RcptParams& b) {
  return a.notify == b.notify && a.orcpt == b.orcpt;
}
inline bool same(const smtp::Address& a, const smtp::Address& b) {
  return a.local == b.local && a.domain == b.domain;
}

inline bool has_ctl(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// A parser's error reply: a permanent 5xx with a matching enhanced code and
// a text, whose wire form a client parses back to the same code.
inline void check_error_reply(const smtp::Reply& r, std::string_view input) {
  FUZZ_CHECK(r.code >= 500 && r.code <= 599,
             "error reply code " + std::to_string(r.code) + " for " + show(input));
  FUZZ_CHECK(!r.enhanced.empty() && r.enhanced[0] == '5' &&
                 smtp::enhanced_code_length(r.enhanced) == r.enhanced.size(),
             "bad enhanced code " + show(r.enhanced) + " for " + show(input));
  FUZZ_CHECK(!r.text.empty(), "error reply without text for " + show(input));
  const std::string wire = smtp::format_reply(r);
  smtp::ReplyParser p;
  const auto n = p.feed(wire);
  FUZZ_CHECK(p.done() && n == wire.size(), "error reply does not parse back: " + show(wire));
  const auto back = p.take();
  FUZZ_CHECK(back.code == r.code && back.enhanced == r.enhanced,
             "error reply parses back differently: " + show(wire));
}

}  // namespace mailgate::fuzz
