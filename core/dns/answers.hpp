// dns/answers: what a lookup returns — the result status, MX hosts in try
// order, addresses — and how a failed lookup maps to an SMTP reply for a
// bounce or a deferral (RFC 3463 enhanced codes, RFC 7505 for null MX).
// Promises: every Status is either permanent (the domain cannot receive mail:
// bounce) or temporary (retry later); only TempFail is temporary.
#pragma once

#include <asio/ip/address.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::dns {

enum class Status {
  Ok,        // records found (for mx(): hosts to try, possibly the implicit MX)
  NxDomain,  // the name does not exist (rcode NXDOMAIN): permanent
  NoData,    // the name exists but has no record of the type (for mx(): no MX and no A/AAAA)
  TempFail,  // SERVFAIL, REFUSED, timeout, unreachable server, malformed answer, shut down
  NullMx,    // RFC 7505: the domain publishes "MX 0 ." — it accepts no mail
  BadName,   // not a valid domain name (or its IDNA conversion failed); nothing was sent
};

std::string_view to_string(Status s);
inline bool is_permanent(Status s) { return s != Status::Ok && s != Status::TempFail; }

struct MxHost {
  std::string name;  // A-label, lower case, no trailing dot; "" is the null-MX target "."
  std::uint16_t preference = 0;
  bool operator==(const MxHost&) const = default;
};

struct MxAnswer {
  Status status = Status::TempFail;
  std::vector<MxHost>
      hosts;              // try order: ascending preference, equal preferences shuffled per call
  bool implicit = false;  // no MX: hosts = {domain, 0} because the domain has A/AAAA records
  std::uint32_t ttl = 0;  // seconds this answer stays cached (0: not cached)
  std::string detail;     // human-readable reason for a failure (for logs and DSNs)
  // The resolver set AD (RFC 4035 §3.2.3) on every answer this one is made
  // of: a validating resolver vouches for it (DNSSEC-secure; RFC 7672 §2.1).
  bool authentic = false;
};

struct AddressAnswer {
  Status status = Status::TempFail;
  std::vector<asio::ip::address> addresses;  // every IPv4 address first, then every IPv6 one
  std::uint32_t ttl = 0;
  std::string detail;
  bool authentic = false;  // as MxAnswer::authentic (both the A and the AAAA answer)
};

struct TxtAnswer {
  Status status = Status::TempFail;
  std::vector<std::string> records;  // one per TXT record, its character-strings concatenated
  std::uint32_t ttl = 0;
  std::string detail;
};

// One TLSA record (RFC 6698 §2.1) as published.
struct TlsaRecord {
  std::uint8_t usage = 0;          // 2: DANE-TA, 3: DANE-EE (the ones SMTP uses)
  std::uint8_t selector = 0;       // 0: full certificate, 1: SubjectPublicKeyInfo
  std::uint8_t matching_type = 0;  // 0: full, 1: SHA-256, 2: SHA-512
  std::string data;                // the association data (binary)
  bool operator==(const TlsaRecord&) const = default;
};

struct TlsaAnswer {
  Status status = Status::TempFail;  // NoData / NxDomain: no TLSA records
  std::vector<TlsaRecord> records;
  std::uint32_t ttl = 0;
  std::string detail;
  bool authentic = false;  // AD on the answer (a secure denial when there are none)
};

// The reply a delivery attempt reports when resolving the destination failed.
struct FailureReply {
  int code;                   // 451, 550 or 556
  std::string_view enhanced;  // "4.4.3", "5.1.2", "5.1.10"
  std::string_view text;
};
// Ok has no failure reply: returns {250, "2.0.0", "OK"} for completeness.
FailureReply failure_reply(Status s);

}  // namespace mailgate::dns
