// smtp/params: parsing of the ESMTP parameters of MAIL FROM and RCPT TO
// (RFC 5321 §4.1.2 esmtp-param; RFC 1870 SIZE, RFC 6152 BODY, RFC 6531
// SMTPUTF8, RFC 3461 RET/ENVID/NOTIFY/ORCPT, RFC 4954 AUTH=, RFC 6533 utf-8
// ORCPT) and RFC 3461 xtext.
// Promises: keywords are case-insensitive, parameters are separated by one or
// more SP; an unknown keyword or unsupported value is 555 5.5.4, a malformed,
// duplicate or out-of-range value is 501 5.5.4; decoded values never contain
// control characters (CR, LF, NUL, ...).
#include "smtp/params.hpp"

#include <limits>

#include "smtp/address.hpp"
#include "smtp/syntax.hpp"
#include "text/ascii.hpp"
#include "text/utf8.hpp"

namespace mailgate::smtp {

using detail::is_alnum;
using detail::make_reply;
using text::iequals;
// RFC 3461 xtext hexchar and RFC 6533 HEXPOINT: upper-case hex digits only.
using text::upper_hex_value;

namespace {

constexpr std::size_t kMaxEnvid = 100;
constexpr std::size_t kMaxOrcpt = 500;

Reply syntax_error(std::string_view what) {
  std::string text = "Syntax error in parameters: ";
  text += what;
  return make_reply(501, "5.5.4", text);
}

Reply unsupported(std::string_view what) {
  std::string text = "Unsupported parameter: ";
  text += what;
  return make_reply(555, "5.5.4", text);
}

bool printable_ascii(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

struct Param {
  std::string_view keyword;
  std::string_view value;
  bool has_value = false;
};

// Splits one parameter token: esmtp-keyword ["=" esmtp-value];
// esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-");
// esmtp-value = 1*(%d33-60 / %d62-126 / UTF8-non-ascii).
std::optional<Param> split_param(std::string_view tok) {
  Param p;
  const std::size_t eq = tok.find('=');
  p.keyword = tok.substr(0, eq);
  if (p.keyword.empty() || !is_alnum(static_cast<unsigned char>(p.keyword[0]))) return {};
  for (char ch : p.keyword) {
    if (!is_alnum(static_cast<unsigned char>(ch)) && ch != '-') return {};
  }
  if (eq == std::string_view::npos) return p;
  p.has_value = true;
  p.value = tok.substr(eq + 1);
  if (p.value.empty()) return {};
  for (char ch : p.value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '=' || (c < 33) || c == 127) return {};
  }
  return p;
}

// Calls f(token) for each SP-separated token; stops at the first error.
template <class F>
std::optional<Reply> for_each_param(std::string_view text, F&& f) {
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ') {
      ++i;
      continue;
    }
    std::size_t end = text.find(' ', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view tok = text.substr(i, end - i);
    auto p = split_param(tok);
    if (!p) return syntax_error("malformed parameter");
    if (auto err = f(*p)) return err;
    i = end;
  }
  return std::nullopt;
}

// SIZE=1*20DIGIT (RFC 1870). A 20-digit value beyond 2^64-1 is still valid
// syntax; it saturates so the caller answers "too big" rather than wrapping.
std::optional<std::uint64_t> parse_size_value(std::string_view v) {
  if (v.empty() || v.size() > 20) return {};
  std::uint64_t n = 0;
  for (char c : v) {
    if (!detail::is_digit(static_cast<unsigned char>(c))) return {};
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
      n = std::numeric_limits<std::uint64_t>::max();
    } else if (n != std::numeric_limits<std::uint64_t>::max()) {
      n = n * 10 + d;
    }
  }
  return n;
}

// RFC 6533 utf-8-addr-xtext / utf-8-addr-unitext: QCHAR = %x21-2a / %x2c-3c /
// %x3e-5b / %x5d-7e (no '+', '=', '\'), EmbeddedUnicodeChar = "\x{" HEXPOINT "}";
// raw UTF8-non-ascii only in unitext (SMTPUTF8). The value is kept encoded.
bool valid_utf8_addr(std::string_view v, bool unitext) {
  if (v.empty()) return false;
  if (!text::valid_utf8(v)) return false;
  for (std::size_t i = 0; i < v.size();) {
    const auto c = static_cast<unsigned char>(v[i]);
    if (c == '\\') {
      if (v.substr(i, 3) != "\\x{") return false;
      std::size_t j = i + 3;
      std::uint32_t cp = 0;
      std::size_t digits = 0;
      while (j < v.size() && v[j] != '}') {
        int h = upper_hex_value(v[j]);
        if (h < 0 || ++digits > 6) return false;
        cp = cp * 16 + static_cast<std::uint32_t>(h);
        ++j;
      }
      if (j >= v.size() || digits < 2) return false;
      if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || (cp >= 0xd800 && cp <= 0xdfff) ||
          cp > 0x10ffff) {
        return false;
      }
      i = j + 1;
      continue;
    }
    if (c >= 0x80) {
      if (!unitext) return false;
      ++i;
      continue;
    }
    if (c < 0x21 || c > 0x7e || c == '+' || c == '=') return false;
    ++i;
  }
  return true;
}

}  // namespace

std::optional<std::string> xtext_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return std::nullopt;  // needs exactly two hex digits
      const int hi = upper_hex_value(s[i + 1]);
      const int lo = upper_hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      const auto d = static_cast<unsigned char>(hi * 16 + lo);
      if (detail::is_ctl(d)) return std::nullopt;
      out.push_back(static_cast<char>(d));
      i += 2;
      continue;
    }
    if (c < '!' || c > '~' || c == '=') return std::nullopt;
    out.push_back(static_cast<char>(c));
  }
  return out;
}

std::string xtext_encode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= '!' && c <= '~' && c != '+' && c != '=') {
      out.push_back(ch);
    } else {
      out.push_back('+');
      text::append_hex(out, c);
    }
  }
  return out;
}

std::variant<MailParams, Reply> parse_mail_params(std::string_view text) {
  MailParams mp;
  enum : unsigned { kSize = 1, kBody = 2, kUtf8 = 4, kRet = 8, kEnvid = 16, kAuth = 32 };
  unsigned seen = 0;
  auto once = [&seen](unsigned bit) {
    const bool dup = seen & bit;
    seen |= bit;
    return !dup;
  };
  auto err = for_each_param(text, [&](const Param& p) -> std::optional<Reply> {
    const std::string_view k = p.keyword;
    if (iequals(k, "SIZE")) {
      if (!once(kSize)) return syntax_error("duplicate SIZE");
      auto n = p.has_value ? parse_size_value(p.value) : std::nullopt;
      if (!n) return syntax_error("bad SIZE value");
      mp.size = *n;
    } else if (iequals(k, "BODY")) {
      if (!once(kBody)) return syntax_error("duplicate BODY");
      if (!p.has_value) return syntax_error("BODY requires a value");
      if (iequals(p.value, "7BIT")) {
        mp.body = BodyType::SevenBit;
      } else if (iequals(p.value, "8BITMIME")) {
        mp.body = BodyType::EightBitMime;
      } else if (iequals(p.value, "BINARYMIME")) {
        return unsupported("BODY=BINARYMIME");
      } else {
        return syntax_error("bad BODY value");
      }
    } else if (iequals(k, "SMTPUTF8")) {
      if (!once(kUtf8)) return syntax_error("duplicate SMTPUTF8");
      if (p.has_value) return syntax_error("SMTPUTF8 takes no value");
      mp.smtputf8 = true;
    } else if (iequals(k, "RET")) {
      if (!once(kRet)) return syntax_error("duplicate RET");
      if (p.has_value && iequals(p.value, "FULL")) {
        mp.ret = Ret::Full;
      } else if (p.has_value && iequals(p.value, "HDRS")) {
        mp.ret = Ret::Hdrs;
      } else {
        return syntax_error("bad RET value");
      }
    } else if (iequals(k, "ENVID")) {
      if (!once(kEnvid)) return syntax_error("duplicate ENVID");
      auto v = p.has_value ? xtext_decode(p.value) : std::nullopt;
      if (!v || v->empty() || v->size() > kMaxEnvid || !printable_ascii(*v)) {
        return syntax_error("bad ENVID value");
      }
      mp.envid = std::move(*v);
    } else if (iequals(k, "AUTH")) {
      if (!once(kAuth)) return syntax_error("duplicate AUTH");
      auto v = p.has_value ? xtext_decode(p.value) : std::nullopt;
      if (!v || v->empty()) return syntax_error("bad AUTH value");
      mp.auth = std::move(*v);  // validated below, once SMTPUTF8 is known
    } else {
      std::string what(k);
      return unsupported(what);
    }
    return std::nullopt;
  });
  if (err) return *err;
  if (!mp.auth.empty() && mp.auth != "<>") {
    auto a = parse_mailbox(mp.auth, mp.smtputf8);
    if (std::holds_alternative<Reply>(a)) return syntax_error("bad AUTH value");
  }
  return mp;
}

std::variant<RcptParams, Reply> parse_rcpt_params(std::string_view text, bool smtputf8) {
  RcptParams rp;
  bool seen_notify = false, seen_orcpt = false;
  auto err = for_each_param(text, [&](const Param& p) -> std::optional<Reply> {
    const std::string_view k = p.keyword;
    if (iequals(k, "NOTIFY")) {
      if (seen_notify) return syntax_error("duplicate NOTIFY");
      seen_notify = true;
      if (!p.has_value) return syntax_error("NOTIFY requires a value");
      if (iequals(p.value, "NEVER")) {
        rp.notify = kNotifyNever;
        return std::nullopt;
      }
      std::uint8_t flags = 0;
      std::string_view rest = p.value;
      for (;;) {
        const std::size_t comma = rest.find(',');
        const std::string_view item = rest.substr(0, comma);
        if (iequals(item, "SUCCESS")) {
          flags |= kNotifySuccess;
        } else if (iequals(item, "FAILURE")) {
          flags |= kNotifyFailure;
        } else if (iequals(item, "DELAY")) {
          flags |= kNotifyDelay;
        } else {
          return syntax_error(iequals(item, "NEVER") ? "NOTIFY=NEVER cannot be combined"
                                                     : "bad NOTIFY value");
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      rp.notify = flags;
    } else if (iequals(k, "ORCPT")) {
      if (seen_orcpt) return syntax_error("duplicate ORCPT");
      seen_orcpt = true;
      if (!p.has_value) return syntax_error("ORCPT requires a value");
      // orcpt-parameter = "ORCPT=" addr-type ";" xtext; addr-type = atom
      const std::size_t semi = p.value.find(';');
      if (semi == std::string_view::npos || semi == 0) return syntax_error("bad ORCPT value");
      const std::string_view type = p.value.substr(0, semi);
      for (char ch : type) {
        if (!detail::is_atext(static_cast<unsigned char>(ch))) {
          return syntax_error("bad ORCPT address type");
        }
      }
      const std::string_view addr = p.value.substr(semi + 1);
      std::string value;
      if (iequals(type, "utf-8")) {
        // RFC 6533: kept in its encoded form (\x{HEX} escapes not decoded).
        if (addr.size() > kMaxOrcpt || !valid_utf8_addr(addr, smtputf8)) {
          return syntax_error("bad ORCPT value");
        }
        value = addr;
      } else {
        auto v = xtext_decode(addr);
        if (!v || v->empty() || v->size() > kMaxOrcpt || !printable_ascii(*v)) {
          return syntax_error("bad ORCPT value");
        }
        value = std::move(*v);
      }
      rp.orcpt.reserve(type.size() + 1 + value.size());
      rp.orcpt.append(type).append(1, ';').append(value);
    } else {
      std::string what(k);
      return unsupported(what);
    }
    return std::nullopt;
  });
  if (err) return *err;
  return rp;
}

std::string notify_text(std::uint8_t notify) {
  if (notify & kNotifyNever) return "NEVER";
  std::string n;
  if (notify & kNotifySuccess) n += ",SUCCESS";
  if (notify & kNotifyFailure) n += ",FAILURE";
  if (notify & kNotifyDelay) n += ",DELAY";
  return n.empty() ? n : n.substr(1);
}

}  // namespace mailgate::smtp
