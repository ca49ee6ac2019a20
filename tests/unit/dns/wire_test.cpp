// Raw-answer inspection and c-ares status mapping on hand-built packets:
// NXDOMAIN is only what the rcode says, SOA-based negative TTLs, TTL clamps.
#include "dns/wire.hpp"

#include <ares.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mailgate::dns {
namespace {

// Builds DNS messages: header, one question, then resource records.
class Packet {
 public:
  Packet(int rcode, std::uint16_t ancount, std::uint16_t nscount, const std::string& qname,
         std::uint16_t qtype) {
    u16(0x1234);
    u16(0x8180 | rcode);
    u16(1);
    u16(ancount);
    u16(nscount);
    u16(0);
    name(qname);
    u16(qtype);
    u16(1);
  }
  void name(const std::string& n) {
    std::size_t start = 0;
    while (start < n.size()) {
      auto dot = n.find('.', start);
      if (dot == std::string::npos) dot = n.size();
      b_.push_back(static_cast<unsigned char>(dot - start));
      b_.insert(b_.end(), n.begin() + start, n.begin() + dot);
      start = dot + 1;
    }
    b_.push_back(0);
  }
  void pointer_to_question() {  // the question name is at offset 12
    b_.push_back(0xC0);
    b_.push_back(12);
  }
  void u16(std::uint16_t v) {
    b_.push_back(v >> 8);
    b_.push_back(v & 0xFF);
  }
  void u32(std::uint32_t v) {
    u16(v >> 16);
    u16(v & 0xFFFF);
  }
  // An RR owned by the question name (compressed).
  void rr(std::uint16_t type, std::uint32_t ttl, const std::vector<unsigned char>& rdata) {
    pointer_to_question();
    u16(type);
    u16(1);
    u32(ttl);
    u16(static_cast<std::uint16_t>(rdata.size()));
    b_.insert(b_.end(), rdata.begin(), rdata.end());
  }
  void mx(std::uint32_t ttl, std::uint16_t pref, const std::string& host) {
    Packet tmp(0, 0, 0, "", 0);
    tmp.b_.clear();
    tmp.u16(pref);
    tmp.name(host);
    rr(15, ttl, tmp.b_);
  }
  void soa(std::uint32_t ttl, std::uint32_t minimum) {
    Packet tmp(0, 0, 0, "", 0);
    tmp.b_.clear();
    tmp.name("ns.example");
    tmp.name("hostmaster.example");
    for (std::uint32_t v : {1u, 7200u, 900u, 1209600u, minimum}) tmp.u32(v);
    rr(6, ttl, tmp.b_);
  }
  const unsigned char* data() const { return b_.data(); }
  int size() const { return static_cast<int>(b_.size()); }
  std::vector<unsigned char> b_;
};

const TtlRules kRules{5, 3600, 60};

TEST(Inspect, ReadsRcodeAnswerTtlAndSoaMinimum) {
  Packet p(3, 0, 1, "nx.example", 15);
  p.soa(900, 300);
  auto info = inspect(p.data(), p.size());
  EXPECT_TRUE(info.valid);
  EXPECT_EQ(info.rcode, 3);
  EXPECT_FALSE(info.answer_ttl);
  ASSERT_TRUE(info.negative_ttl);
  EXPECT_EQ(*info.negative_ttl, 300u);  // min(SOA TTL, MINIMUM), RFC 2308 §5

  Packet q(0, 2, 0, "example", 15);
  q.mx(300, 10, "mx1.example");
  q.mx(100, 20, "mx2.example");
  info = inspect(q.data(), q.size());
  EXPECT_TRUE(info.valid);
  EXPECT_EQ(info.rcode, 0);
  EXPECT_EQ(info.ancount, 2);
  EXPECT_EQ(info.answer_ttl, 100u);
}

TEST(Inspect, NeverReadsPastTheEnd) {
  Packet p(0, 2, 0, "example", 15);
  p.mx(300, 10, "mx1.example");
  p.mx(100, 20, "mx2.example");
  for (int len = 0; len < p.size(); ++len) {
    auto info = inspect(p.data(), static_cast<std::size_t>(len));
    EXPECT_FALSE(info.valid) << len;
  }
  EXPECT_TRUE(inspect(p.data(), p.size()).valid);
  EXPECT_FALSE(inspect(nullptr, 0).valid);
}

TEST(RecordSet, NxDomainOnlyWhenTheRcodeSaysSo) {
  Packet nx(3, 0, 0, "nx.example", 15);
  auto rs = to_record_set(RrType::MX, ARES_ENOTFOUND, nx.data(), nx.size(), kRules);
  EXPECT_EQ(rs.status, Status::NxDomain);
  EXPECT_EQ(rs.ttl, 60u);  // no SOA: the fixed negative TTL

  Packet nodata(0, 0, 0, "host.example", 15);
  rs = to_record_set(RrType::MX, ARES_ENOTFOUND, nodata.data(), nodata.size(), kRules);
  EXPECT_EQ(rs.status, Status::NoData);
  rs = to_record_set(RrType::MX, ARES_ENODATA, nodata.data(), nodata.size(), kRules);
  EXPECT_EQ(rs.status, Status::NoData);

  rs = to_record_set(RrType::MX, ARES_ENOTFOUND, nullptr, 0, kRules);
  EXPECT_EQ(rs.status, Status::TempFail) << "no answer to prove NXDOMAIN: not permanent";
  EXPECT_EQ(rs.ttl, 0u);
}

TEST(RecordSet, NegativeTtlFromSoaIsClamped) {
  Packet nx(3, 0, 1, "nx.example", 1);
  nx.soa(86400, 7200);
  auto rs = to_record_set(RrType::A, ARES_ENOTFOUND, nx.data(), nx.size(), kRules);
  EXPECT_EQ(rs.status, Status::NxDomain);
  EXPECT_EQ(rs.ttl, 3600u);  // 7200 clamped to max
  Packet nd(0, 0, 1, "h.example", 1);
  nd.soa(1, 1);
  rs = to_record_set(RrType::A, ARES_ENODATA, nd.data(), nd.size(), kRules);
  EXPECT_EQ(rs.status, Status::NoData);
  EXPECT_EQ(rs.ttl, 5u);  // 1 clamped to min
}

TEST(RecordSet, ServerFailuresAndTimeoutsAreTemporaryAndNotCached) {
  for (int st : {ARES_ESERVFAIL, ARES_ETIMEOUT, ARES_ECONNREFUSED, ARES_EREFUSED, ARES_ECANCELLED,
                 ARES_EDESTRUCTION, ARES_EBADRESP, ARES_ENOMEM, ARES_EFORMERR, ARES_ENOTIMP}) {
    auto rs = to_record_set(RrType::MX, st, nullptr, 0, kRules);
    EXPECT_EQ(rs.status, Status::TempFail) << ares_strerror(st);
    EXPECT_EQ(rs.ttl, 0u);
    EXPECT_FALSE(rs.detail.empty());
  }
  EXPECT_EQ(to_record_set(RrType::MX, ARES_EBADNAME, nullptr, 0, kRules).status, Status::BadName);
}

TEST(RecordSet, MxRecordsWithTheSmallestTtl) {
  Packet p(0, 3, 0, "example", 15);
  p.mx(300, 10, "MX1.Example");
  p.mx(100, 20, "mx2.example");
  p.mx(200, 0, "");  // a "." among real hosts: kept here, dropped by order_mx
  auto rs = to_record_set(RrType::MX, ARES_SUCCESS, p.data(), p.size(), kRules);
  ASSERT_EQ(rs.status, Status::Ok) << rs.detail;
  EXPECT_EQ(rs.ttl, 100u);
  ASSERT_EQ(rs.mx.size(), 3u);
  EXPECT_EQ(rs.mx[0], (MxHost{"mx1.example", 10}));
  EXPECT_EQ(rs.mx[1], (MxHost{"mx2.example", 20}));
  EXPECT_EQ(rs.mx[2], (MxHost{"", 0}));
}

TEST(RecordSet, TxtRecordsJoinTheirStringsOnePerRecord) {
  // Two records: "v=STSv1; " + "id=1;" (two character-strings), and "other".
  Packet p(0, 2, 0, "_mta-sts.example", 16);
  std::vector<unsigned char> first{9,   'v', '=', 'S', 'T', 'S', 'v', '1',
                                   ';', ' ', 5,   'i', 'd', '=', '1', ';'};
  std::vector<unsigned char> second{5, 'o', 't', 'h', 'e', 'r'};
  p.rr(16, 300, first);
  p.rr(16, 120, second);
  auto rs = to_record_set(RrType::TXT, ARES_SUCCESS, p.data(), p.size(), kRules);
  ASSERT_EQ(rs.status, Status::Ok) << rs.detail;
  ASSERT_EQ(rs.texts.size(), 2u);
  EXPECT_EQ(rs.texts[0], "v=STSv1; id=1;");
  EXPECT_EQ(rs.texts[1], "other");
  EXPECT_EQ(rs.ttl, 120u);
  Packet none(0, 0, 0, "_mta-sts.example", 16);
  EXPECT_EQ(to_record_set(RrType::TXT, ARES_ENODATA, none.data(), none.size(), kRules).status,
            Status::NoData);
}

TEST(Dnssec, QueriesAskForAdAndDoAndTheAnswerAdBitIsRead) {
  unsigned char* buf = nullptr;
  int len = 0;
  ASSERT_EQ(ares_create_query("example.test", 1, 52, 0, 1, &buf, &len, 1232), ARES_SUCCESS);
  std::vector<unsigned char> q(buf, buf + len);
  ares_free_string(buf);
  ASSERT_TRUE(request_dnssec(q.data(), q.size()));
  EXPECT_EQ(q[3] & 0x20, 0x20);             // AD
  EXPECT_EQ(q[q.size() - 4] & 0x80, 0x80);  // DO in the OPT record's flags
  std::vector<unsigned char> no_opt(q.begin(), q.end() - 11);
  EXPECT_FALSE(request_dnssec(no_opt.data(), no_opt.size()));

  Packet p(0, 1, 0, "_25._tcp.mx.example", 52);
  p.rr(52, 300, {3, 1, 1, 0xAB, 0xCD});
  EXPECT_FALSE(inspect(p.data(), p.size()).authentic);
  p.b_[3] |= 0x20;
  EXPECT_TRUE(inspect(p.data(), p.size()).authentic);
  auto rs = to_record_set(RrType::TLSA, ARES_SUCCESS, p.data(), p.size(), kRules);
  ASSERT_EQ(rs.status, Status::Ok) << rs.detail;
  EXPECT_TRUE(rs.authentic);
  ASSERT_EQ(rs.tlsa.size(), 1u);
  EXPECT_EQ(rs.tlsa[0], (TlsaRecord{3, 1, 1, "\xAB\xCD"}));
  // A server failure is never authentic, whatever its header says.
  Packet sf(2, 0, 0, "_25._tcp.mx.example", 52);
  sf.b_[3] |= 0x20;
  EXPECT_FALSE(to_record_set(RrType::TLSA, ARES_ESERVFAIL, sf.data(), sf.size(), kRules).authentic);
}

TEST(Dnssec, SendStatusesMapAsAresQueryWould) {
  Packet nx(3, 0, 0, "nx.example", 1), nodata(0, 0, 0, "h.example", 1), sf(2, 0, 0, "x", 1);
  Packet ok(0, 1, 0, "h.example", 1);
  ok.rr(1, 60, {127, 0, 0, 1});
  EXPECT_EQ(ares_status_of(ARES_SUCCESS, nx.data(), nx.size()), ARES_ENOTFOUND);
  EXPECT_EQ(ares_status_of(ARES_SUCCESS, nodata.data(), nodata.size()), ARES_ENODATA);
  EXPECT_EQ(ares_status_of(ARES_SUCCESS, sf.data(), sf.size()), ARES_ESERVFAIL);
  EXPECT_EQ(ares_status_of(ARES_SUCCESS, ok.data(), ok.size()), ARES_SUCCESS);
  EXPECT_EQ(ares_status_of(ARES_ETIMEOUT, nullptr, 0), ARES_ETIMEOUT);
}

TEST(RecordSet, NullMxRecordParsesToAnEmptyTarget) {
  Packet p(0, 1, 0, "null.example", 15);
  p.mx(3600, 0, "");
  auto rs = to_record_set(RrType::MX, ARES_SUCCESS, p.data(), p.size(), kRules);
  ASSERT_EQ(rs.status, Status::Ok);
  ASSERT_EQ(rs.mx.size(), 1u);
  EXPECT_EQ(rs.mx[0], (MxHost{"", 0}));
}

TEST(RecordSet, AddressesAndTtlClamps) {
  Packet p(0, 2, 0, "h.example", 1);
  p.rr(1, 2, {192, 0, 2, 1});
  p.rr(1, 0x80000000u, {192, 0, 2, 2});  // top bit set: TTL 0 (RFC 2181 §8)
  auto rs = to_record_set(RrType::A, ARES_SUCCESS, p.data(), p.size(), kRules);
  ASSERT_EQ(rs.status, Status::Ok) << rs.detail;
  ASSERT_EQ(rs.addresses.size(), 2u);
  EXPECT_EQ(rs.addresses[0].to_string(), "192.0.2.1");
  EXPECT_EQ(rs.addresses[1].to_string(), "192.0.2.2");
  EXPECT_EQ(rs.ttl, 5u);

  Packet q(0, 1, 0, "h.example", 28);
  q.rr(28, 999999, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  rs = to_record_set(RrType::AAAA, ARES_SUCCESS, q.data(), q.size(), kRules);
  ASSERT_EQ(rs.status, Status::Ok) << rs.detail;
  ASSERT_EQ(rs.addresses.size(), 1u);
  EXPECT_EQ(rs.addresses[0].to_string(), "2001:db8::1");
  EXPECT_EQ(rs.ttl, 3600u);
}

TEST(RecordSet, CnameWithoutTheTypeIsNoData) {
  Packet p(0, 1, 0, "alias.example", 1);
  std::vector<unsigned char> target = {6, 't', 'a', 'r', 'g', 'e', 't', 0};
  p.rr(5, 300, target);
  auto rs = to_record_set(RrType::A, ARES_SUCCESS, p.data(), p.size(), kRules);
  EXPECT_EQ(rs.status, Status::NoData);
}

TEST(RecordSet, MalformedAnswerIsTemporary) {
  Packet p(0, 1, 0, "h.example", 15);
  p.mx(300, 10, "mx.example");
  p.b_.resize(p.b_.size() - 3);
  auto rs = to_record_set(RrType::MX, ARES_SUCCESS, p.data(), p.size(), kRules);
  EXPECT_EQ(rs.status, Status::TempFail);
}

}  // namespace
}  // namespace mailgate::dns
