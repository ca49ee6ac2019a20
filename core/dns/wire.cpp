// dns/wire: raw-answer inspection and c-ares status mapping (see wire.hpp).
// The walker follows RFC 1035 §4.1: header, questions, then resource records
// (name, type, class, TTL, rdlength, rdata); names are skipped label by label
// or up to a compression pointer. TTLs with the top bit set count as 0
// (RFC 2181 §8). Records are decoded by c-ares' own parsers
// (ares_parse_mx_reply, ares_parse_txt_reply_ext, ares_parse_a_reply /
// ares_parse_aaaa_reply with addrttls); the walker only supplies the rcode,
// the MX / TXT TTL and the SOA.
#include "dns/wire.hpp"

#include <ares.h>
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "text/ascii.hpp"

namespace mailgate::dns {

namespace {

constexpr std::uint16_t kTypeSoa = 6;
constexpr std::uint16_t kTypeOpt = 41;
constexpr std::uint16_t kTypeTlsa = 52;
constexpr int kRcodeNoError = 0;
constexpr int kRcodeNxDomain = 3;
constexpr int kMaxAddresses = 256;

class Reader {
 public:
  Reader(const unsigned char* p, std::size_t n) : p_(p), n_(n) {}

  bool ok() const { return ok_; }
  std::size_t pos() const { return pos_; }
  void seek(std::size_t pos) {
    if (pos > n_)
      ok_ = false;
    else
      pos_ = pos;
  }
  void skip(std::size_t k) { seek(pos_ + k); }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    std::uint16_t v = static_cast<std::uint16_t>(p_[pos_] << 8 | p_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t hi = u16();
    std::uint32_t lo = u16();
    return hi << 16 | lo;
  }
  void skip_name() {
    for (int labels = 0; ok_ && labels < 128; ++labels) {
      if (!need(1)) return;
      unsigned len = p_[pos_];
      if ((len & 0xC0) == 0xC0) {  // compression pointer ends the name
        skip(2);
        return;
      }
      if (len & 0xC0) {  // extended label types are not used
        ok_ = false;
        return;
      }
      skip(1 + len);
      if (len == 0) return;
    }
    ok_ = false;
  }

 private:
  bool need(std::size_t k) {
    if (ok_ && pos_ + k <= n_) return true;
    ok_ = false;
    return false;
  }
  const unsigned char* p_;
  std::size_t n_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::uint32_t ttl_value(std::uint32_t raw) { return raw > 0x7fffffffu ? 0 : raw; }

// An MX target as c-ares gives it, lower-cased; "." (RFC 7505 null MX) as "".
std::string mx_target(const char* s) {
  std::string out = text::to_lower(s ? s : "");
  if (out == ".") out.clear();
  return out;
}

// Appends the addresses of an A or AAAA answer, which c-ares parses into
// `Ttl` records (ares_addrttl / ares_addr6ttl), and sets rs.ttl to their
// lowest TTL. Returns c-ares' status; rs is untouched unless ARES_SUCCESS.
template <typename Ttl, typename Parse, typename ToAddress>
int add_addresses(Parse parse, ToAddress to_address, const unsigned char* abuf, int alen,
                  const TtlRules& rules, RecordSet& rs) {
  std::array<Ttl, kMaxAddresses> ttls{};
  int n = kMaxAddresses;
  const int rc = parse(abuf, alen, nullptr, ttls.data(), &n);
  if (rc != ARES_SUCCESS) return rc;
  std::uint32_t ttl = UINT32_MAX;
  for (int i = 0; i < n; ++i) {
    rs.addresses.emplace_back(to_address(ttls[i]));
    ttl = std::min(ttl, static_cast<std::uint32_t>(std::max(ttls[i].ttl, 0)));
  }
  rs.ttl = rules.clamp(n > 0 ? ttl : 0);
  return rc;
}

asio::ip::address address_of(const ares_addrttl& record) {
  asio::ip::address_v4::bytes_type b;
  std::memcpy(b.data(), &record.ipaddr, 4);
  return asio::ip::address_v4(b);
}

asio::ip::address address_of(const ares_addr6ttl& record) {
  asio::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), &record.ip6addr, 16);
  return asio::ip::address_v6(b);
}

}  // namespace

WireInfo inspect(const unsigned char* abuf, std::size_t alen) {
  WireInfo info;
  if (!abuf || alen < 12) return info;
  Reader r(abuf, alen);
  r.skip(2);  // id
  std::uint16_t flags = r.u16();
  std::uint16_t qdcount = r.u16();
  std::uint16_t ancount = r.u16();
  std::uint16_t nscount = r.u16();
  r.u16();  // arcount: not needed
  info.rcode = flags & 0xF;
  info.authentic = (flags & 0x0020) != 0;
  info.ancount = ancount;
  for (unsigned i = 0; i < qdcount && r.ok(); ++i) {
    r.skip_name();
    r.skip(4);
  }
  for (unsigned i = 0; i < ancount && r.ok(); ++i) {
    r.skip_name();
    r.skip(4);  // type, class
    std::uint32_t ttl = ttl_value(r.u32());
    std::uint16_t rdlen = r.u16();
    r.skip(rdlen);
    if (r.ok()) info.answer_ttl = std::min(info.answer_ttl.value_or(ttl), ttl);
  }
  for (unsigned i = 0; i < nscount && r.ok(); ++i) {
    r.skip_name();
    std::uint16_t type = r.u16();
    r.skip(2);  // class
    std::uint32_t ttl = ttl_value(r.u32());
    std::uint16_t rdlen = r.u16();
    std::size_t end = r.pos() + rdlen;
    if (type == kTypeSoa && r.ok()) {
      r.skip_name();  // MNAME
      r.skip_name();  // RNAME
      r.skip(16);     // SERIAL REFRESH RETRY EXPIRE
      std::uint32_t minimum = ttl_value(r.u32());
      if (r.ok() && r.pos() <= end) info.negative_ttl = std::min(ttl, minimum);
    }
    r.seek(end);
  }
  info.valid = r.ok();
  return info;
}

bool parse_tlsa(const unsigned char* abuf, std::size_t alen, std::vector<TlsaRecord>& out) {
  if (!abuf || alen < 12) return false;
  Reader r(abuf, alen);
  r.skip(4);  // id, flags
  const std::uint16_t qdcount = r.u16();
  const std::uint16_t ancount = r.u16();
  r.skip(4);  // nscount, arcount
  for (unsigned i = 0; i < qdcount && r.ok(); ++i) {
    r.skip_name();
    r.skip(4);
  }
  for (unsigned i = 0; i < ancount && r.ok(); ++i) {
    r.skip_name();
    const std::uint16_t type = r.u16();
    const std::uint16_t cls = r.u16();
    r.skip(4);  // TTL
    const std::uint16_t rdlen = r.u16();
    const std::size_t start = r.pos();
    r.skip(rdlen);
    if (!r.ok()) break;
    if (type != kTypeTlsa || cls != 1) continue;
    if (rdlen < 3) return false;
    TlsaRecord t;
    t.usage = abuf[start];
    t.selector = abuf[start + 1];
    t.matching_type = abuf[start + 2];
    t.data.assign(reinterpret_cast<const char*>(abuf + start + 3), rdlen - 3);
    out.push_back(std::move(t));
  }
  return r.ok();
}

bool request_dnssec(unsigned char* query, std::size_t len) {
  // The OPT record c-ares appends: root name (0), TYPE 41, CLASS (UDP size),
  // TTL = extended RCODE, VERSION, flags (DO is the top bit), RDLENGTH 0.
  constexpr std::size_t kOpt = 11;
  if (len < 12 + kOpt) return false;
  unsigned char* opt = query + len - kOpt;
  if (opt[0] != 0 || opt[1] != 0 || opt[2] != kTypeOpt || opt[9] != 0 || opt[10] != 0) return false;
  opt[7] |= 0x80;    // DO
  query[3] |= 0x20;  // AD
  return true;
}

int ares_status_of(int send_status, const unsigned char* abuf, int alen) {
  if (send_status != ARES_SUCCESS) return send_status;
  if (!abuf || alen < 12) return ARES_EBADRESP;
  const int rcode = abuf[3] & 0xF;
  const int ancount = abuf[6] << 8 | abuf[7];
  switch (rcode) {
    case kRcodeNoError:
      return ancount > 0 ? ARES_SUCCESS : ARES_ENODATA;
    case 1:
      return ARES_EFORMERR;
    case 2:
      return ARES_ESERVFAIL;
    case kRcodeNxDomain:
      return ARES_ENOTFOUND;
    case 4:
      return ARES_ENOTIMP;
    case 5:
      return ARES_EREFUSED;
    default:
      return ARES_EBADRESP;
  }
}

RecordSet to_record_set(RrType type, int ares_status, const unsigned char* abuf, int alen,
                        const TtlRules& rules) {
  RecordSet rs;
  const WireInfo info =
      (abuf && alen > 0) ? inspect(abuf, static_cast<std::size_t>(alen)) : WireInfo{};
  // Only an answer we could read vouches for anything; TempFail clears it.
  rs.authentic = info.valid && info.authentic;
  auto negative = [&](Status s, const char* detail) {
    rs.status = s;
    rs.ttl = rules.clamp(info.negative_ttl.value_or(rules.negative));
    rs.detail = detail;
    return rs;
  };
  auto temporary = [&](std::string detail) {
    rs.status = Status::TempFail;
    rs.authentic = false;
    rs.ttl = 0;
    rs.detail = std::move(detail);
    return rs;
  };

  switch (ares_status) {
    case ARES_SUCCESS:
      break;
    case ARES_ENODATA:
      return negative(Status::NoData, "no records of this type (NODATA)");
    case ARES_ENOTFOUND:
      // c-ares says "not found"; only the rcode in the answer itself decides.
      if (info.valid && info.rcode == kRcodeNxDomain)
        return negative(Status::NxDomain, "domain does not exist (NXDOMAIN)");
      if (info.valid && info.rcode == kRcodeNoError)
        return negative(Status::NoData, "no records of this type (NODATA)");
      return temporary("not found, without an NXDOMAIN answer");
    case ARES_EBADNAME:
      rs.status = Status::BadName;
      rs.detail = "not a valid domain name";
      return rs;
    case ARES_ESERVFAIL:
      return temporary("server failure (SERVFAIL)");
    case ARES_EREFUSED:
      return temporary("query refused by the server (REFUSED)");
    case ARES_ETIMEOUT:
      return temporary("DNS query timed out");
    case ARES_ECONNREFUSED:
      return temporary("could not contact the DNS server");
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return temporary("DNS resolver shut down");
    default:
      return temporary(std::string("DNS error: ") + ares_strerror(ares_status));
  }

  if (!info.valid) return temporary("malformed DNS answer");
  if (info.rcode != kRcodeNoError) return temporary("unexpected DNS rcode");

  if (type == RrType::TLSA) {
    if (!parse_tlsa(abuf, static_cast<std::size_t>(alen), rs.tlsa))
      return temporary("malformed TLSA answer");
    if (rs.tlsa.empty()) return negative(Status::NoData, "no TLSA records (NODATA)");
    rs.ttl = rules.clamp(info.answer_ttl.value_or(0));
    rs.status = Status::Ok;
    return rs;
  }
  if (type == RrType::TXT) {
    ares_txt_ext* txt = nullptr;
    int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
    if (rc == ARES_ENODATA) return negative(Status::NoData, "no TXT records (NODATA)");
    if (rc != ARES_SUCCESS) return temporary(std::string("bad TXT answer: ") + ares_strerror(rc));
    for (auto* p = txt; p; p = p->next) {
      if (p->record_start || rs.texts.empty()) rs.texts.emplace_back();
      rs.texts.back().append(reinterpret_cast<const char*>(p->txt), p->length);
    }
    ares_free_data(txt);
    rs.ttl = rules.clamp(info.answer_ttl.value_or(0));
    if (rs.texts.empty()) return negative(Status::NoData, "no TXT records (NODATA)");
    rs.status = Status::Ok;
    return rs;
  }
  if (type == RrType::MX) {
    ares_mx_reply* mx = nullptr;
    int rc = ares_parse_mx_reply(abuf, alen, &mx);
    if (rc == ARES_ENODATA) return negative(Status::NoData, "no MX records (NODATA)");
    if (rc != ARES_SUCCESS) return temporary(std::string("bad MX answer: ") + ares_strerror(rc));
    for (auto* p = mx; p; p = p->next) rs.mx.push_back({mx_target(p->host), p->priority});
    ares_free_data(mx);
    rs.ttl = rules.clamp(info.answer_ttl.value_or(0));
  } else {
    const bool v4 = type == RrType::A;
    const auto of = [](const auto& record) { return address_of(record); };
    const int rc =
        v4 ? add_addresses<ares_addrttl>(ares_parse_a_reply, of, abuf, alen, rules, rs)
           : add_addresses<ares_addr6ttl>(ares_parse_aaaa_reply, of, abuf, alen, rules, rs);
    if (rc == ARES_ENODATA)
      return negative(Status::NoData, v4 ? "no A records (NODATA)" : "no AAAA records (NODATA)");
    if (rc != ARES_SUCCESS)
      return temporary(std::string(v4 ? "bad A answer: " : "bad AAAA answer: ") +
                       ares_strerror(rc));
  }
  if (rs.mx.empty() && rs.addresses.empty()) return negative(Status::NoData, "no records (NODATA)");
  rs.status = Status::Ok;
  return rs;
}

}  // namespace mailgate::dns
