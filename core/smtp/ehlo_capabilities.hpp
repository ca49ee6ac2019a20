// smtp/ehlo_capabilities: what a server's EHLO reply offers (client side,
// RFC 5321 §4.1.1.1 and the ESMTP extensions mailgate's client may use).
// Promises: parse_ehlo() never fails. It reads only a 250 reply (anything else
// yields "nothing offered"); the first line is the server's greeting (its
// first word is `domain`), every following line is a keyword, compared
// case-insensitively, with optional space-separated parameters. Unknown
// keywords are ignored. The legacy "AUTH=MECH ..." form is merged with
// "AUTH MECH ..."; mechanism names are upper-cased, deduplicated and kept in
// the order offered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "smtp/reply.hpp"

namespace mailgate::smtp {

struct EhloCapabilities {
  std::string domain;                  // first word of the greeting line (may be empty)
  bool pipelining = false;             // RFC 2920
  bool eightbitmime = false;           // RFC 6152
  bool smtputf8 = false;               // RFC 6531
  bool dsn = false;                    // RFC 3461
  bool starttls = false;               // RFC 3207
  bool chunking = false;               // RFC 3030 (BDAT)
  bool enhanced_status_codes = false;  // RFC 2034
  bool binarymime = false;             // RFC 3030
  // RFC 1870: nullopt = SIZE not offered; 0 = offered without a (usable) limit
  // ("SIZE", "SIZE 0", or a malformed or out-of-range number); else the limit.
  std::optional<std::uint64_t> size;
  std::vector<std::string> auth_mechanisms;  // e.g. {"PLAIN", "LOGIN"}
};

EhloCapabilities parse_ehlo(const Reply& ehlo_reply);

}  // namespace mailgate::smtp
