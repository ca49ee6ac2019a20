// delivery/dane: what outbound DANE (RFC 7672) means for one MX host, from
// its DNS answers — pure decisions, no I/O (the TLSA lookup is in
// dane_route.cpp, the OpenSSL side in tls_client.hpp).
// Promises:
// - DANE applies to a host only when the answers that led to it (the MX
//   answer, or none for a smarthost named by the route, and the host's
//   A/AAAA answer) are DNSSEC-authentic (AD); otherwise it is "insecure"
//   and no TLSA lookup is made (RFC 7672 §2.2, §2.2.2). A resolver that
//   does not validate never sets AD, so with it every host is insecure.
// - plan_dane() is the decision table of RFC 7672 §2.2 for the TLSA
//   answer: authentic usable records → Authenticate (STARTTLS mandatory, the
//   certificate must match a record); authentic records none of which is
//   usable → EncryptOnly (§2.2: the TLS connection MUST still be attempted,
//   without authentication; STARTTLS mandatory); an authentic denial
//   (NXDOMAIN/NODATA) → NoTlsa and a non-authentic answer → Insecure (both:
//   opportunistic TLS, never `verify`); a failed lookup (SERVFAIL — also
//   what a validating resolver answers for bogus data —, timeout, malformed)
//   → Defer (4.7.5; that host gets no mail, other MX hosts may).
// - usable_tlsa(): usages DANE-TA(2) and DANE-EE(3) only (PKIX-TA(0) and
//   PKIX-EE(1) are unusable in SMTP, §3.1.3), selectors Cert(0) / SPKI(1),
//   matching types Full(0) / SHA2-256(1) / SHA2-512(2) with data of the
//   right size (32 / 64 octets; Full(0): DER that parses as a certificate
//   or a public key).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dns/answers.hpp"
#include "smtp/tls_mode.hpp"

namespace mailgate::delivery {

// How one DANE-mode session to an MX host went (the label of
// mailgate_dane_sessions_total).
enum class DaneResult : std::uint8_t {
  Verified,      // usable TLSA records, the certificate matched one
  NoTlsa,        // authentic denial of TLSA records: opportunistic TLS
  Insecure,      // MX, address or TLSA answer not DNSSEC-authentic: opportunistic TLS
  Unusable,      // authentic TLSA records, none usable: encrypted, not authenticated
  Failed,        // usable records, but no STARTTLS or the certificate did not match
  LookupFailed,  // the TLSA lookup failed (SERVFAIL, bogus, timeout): deferred
};
inline constexpr std::size_t kDaneResultCount = 6;
// "verified", "no_tlsa", "insecure", "unusable", "failed", "lookup_failed".
std::string_view to_string(DaneResult r);

bool usable_tlsa(const dns::TlsaRecord& r);

struct DanePlan {
  enum class Action : std::uint8_t {
    Opportunistic,  // DANE does not apply to this host (NoTlsa or Insecure)
    EncryptOnly,    // TLS mandatory, no authentication (Unusable)
    Authenticate,   // TLS mandatory, authenticated by `records`
    Defer,          // no connection to this host (LookupFailed)
  };
  Action action = Action::Opportunistic;
  DaneResult result = DaneResult::Insecure;  // Authenticate: Verified until the handshake says
  std::vector<dns::TlsaRecord> records;      // Authenticate: the usable records
  std::string detail;                        // Defer: why, "dane: TLSA lookup failed: ..."
};

// The plan for a host whose MX and address answers were authentic, from
// its TLSA answer (see the top of this file).
DanePlan plan_dane(const dns::TlsaAnswer& answer);
// The plan for a host DANE does not reach (an answer on the way was not
// authentic, or the target is an address literal).
DanePlan insecure_plan();

// The mode the SMTP client runs for a host under `plan` (not Defer):
// Authenticate → Dane; EncryptOnly → Required; Opportunistic →
// Opportunistic. Under an enforced MTA-STS policy (RFC 8461 §2: DANE wins
// where it applies, MTA-STS elsewhere) the last two become Verify.
smtp::TlsMode session_mode(const DanePlan& plan, bool sts_enforced);

}  // namespace mailgate::delivery
