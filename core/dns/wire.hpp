// dns/wire (internal to dns): turns one completed c-ares query — its status
// and the raw answer — into a RecordSet, the cached unit (one name, one type).
// Promises: NXDOMAIN is reported only when the answer header's rcode says 3
// (c-ares' ARES_ENOTFOUND alone is not trusted); NOERROR with no record of the
// type (ARES_ENODATA, or only CNAMEs) is NoData; SERVFAIL, REFUSED, timeouts,
// connection errors, truncated or malformed answers and cancellation are
// TempFail, never permanent. TTLs: a positive answer lives for the smallest
// TTL among its records; a negative one (NXDOMAIN/NODATA) for min(SOA TTL,
// SOA MINIMUM) when the authority section carries the zone's SOA (RFC 2308
// §5), else TtlRules::negative; both are clamped to [min, max]. TempFail and
// BadName are never cached (ttl 0). The packet walker never reads past alen.
#pragma once

#include <asio/ip/address.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dns/answers.hpp"

namespace mailgate::dns {

enum class RrType : std::uint16_t { A = 1, MX = 15, TXT = 16, AAAA = 28, TLSA = 52 };

struct RecordSet {
  Status status = Status::TempFail;
  std::vector<MxHost> mx;                    // RrType::MX: as published (unordered, may hold ".")
  std::vector<asio::ip::address> addresses;  // RrType::A / AAAA
  std::vector<std::string> texts;            // RrType::TXT: one per record, its strings joined
  std::vector<TlsaRecord> tlsa;              // RrType::TLSA
  bool authentic = false;                    // the answer carried AD (never for TempFail)
  std::uint32_t ttl = 0;                     // seconds to cache; 0 = do not cache
  std::string detail;
};

struct TtlRules {
  std::uint32_t min = 5;
  std::uint32_t max = 3600;
  std::uint32_t negative = 60;
  std::uint32_t clamp(std::uint32_t ttl) const { return ttl < min ? min : ttl > max ? max : ttl; }
};

// What the raw answer says, independent of c-ares' interpretation.
struct WireInfo {
  bool valid = false;  // header and all sections parsed within bounds
  int rcode = -1;
  bool authentic = false;  // AD bit in the header
  std::uint16_t ancount = 0;
  std::optional<std::uint32_t> answer_ttl;  // smallest TTL in the answer section
  std::optional<std::uint32_t>
      negative_ttl;  // min(SOA TTL, SOA MINIMUM) from the authority section
};
WireInfo inspect(const unsigned char* abuf, std::size_t alen);
// The TLSA records (type 52, class IN) of the answer section, in order;
// false when the message is malformed.
bool parse_tlsa(const unsigned char* abuf, std::size_t alen, std::vector<TlsaRecord>& out);

// Turns a query c-ares built (ares_create_query, with an EDNS0 OPT record
// as its last record) into one that asks for DNSSEC information: AD=1 in
// the header (RFC 6840 §5.7) and DO=1 in the OPT record (RFC 3225). False
// (nothing changed) when the buffer does not end with an empty OPT record.
bool request_dnssec(unsigned char* query, std::size_t len);
// What ares_query would report for a completed ares_send: ENODATA for
// NOERROR without answers, the rcode's error for SERVFAIL, NXDOMAIN, ...
int ares_status_of(int send_status, const unsigned char* abuf, int alen);

// `ares_status` and `abuf`/`alen` exactly as c-ares passed them to the
// ares_query callback (abuf may be null).
RecordSet to_record_set(RrType type, int ares_status, const unsigned char* abuf, int alen,
                        const TtlRules& rules);

}  // namespace mailgate::dns
