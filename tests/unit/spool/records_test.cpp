// Tests for spool/records: round trips with hostile bytes, strict decoding, keys.
#include "spool/records.hpp"

#include <gtest/gtest.h>
#include <limits>

using namespace mailgate::spool;

namespace {

const std::string kHostile = std::string("a\r\nb\0c\xff\xfe\x80", 9) + "\r\n.\r\nMAIL FROM:<x>";

Envelope sample_envelope() {
  Envelope e;
  e.sender = "bounce+" + kHostile + "@example.org";
  e.recipients.push_back({"alice@example.com", 0x3, "rfc822;alice@example.com"});
  e.recipients.push_back({kHostile + "@x.test", 0, ""});
  e.recipients.push_back({std::string(300, 'r') + "@long.test", 0xff, kHostile});
  e.ret = 2;
  e.envid = kHostile;
  e.body_type = 1;
  e.smtputf8 = true;
  e.size = std::numeric_limits<std::uint64_t>::max();
  e.received_ms = std::numeric_limits<std::int64_t>::min();
  e.client_ip = "2001:db8::1";
  e.helo = kHostile;
  e.auth_user = std::string("\0", 1);
  e.tls = true;
  e.body_chunks = std::numeric_limits<std::uint32_t>::max();
  e.meta = {{"tenant", "acme"}, {kHostile, kHostile}, {"", ""}};
  return e;
}

DestRecord sample_dest() {
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  d.recipients.push_back({2, RcptState::Delivered, "250 2.0.0 " + kHostile});
  d.recipients.push_back(
      {std::numeric_limits<std::uint32_t>::max(), RcptState::Failed, "550 5.1.1 no\r\nsuch user"});
  d.attempts = 17;
  d.next_attempt_ms = -1;
  d.size = 1234567;
  return d;
}

void expect_equal(const Envelope& a, const Envelope& b) {
  EXPECT_EQ(a.sender, b.sender);
  ASSERT_EQ(a.recipients.size(), b.recipients.size());
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    EXPECT_EQ(a.recipients[i].address, b.recipients[i].address);
    EXPECT_EQ(a.recipients[i].notify, b.recipients[i].notify);
    EXPECT_EQ(a.recipients[i].orcpt, b.recipients[i].orcpt);
  }
  EXPECT_EQ(a.ret, b.ret);
  EXPECT_EQ(a.envid, b.envid);
  EXPECT_EQ(a.body_type, b.body_type);
  EXPECT_EQ(a.smtputf8, b.smtputf8);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.received_ms, b.received_ms);
  EXPECT_EQ(a.client_ip, b.client_ip);
  EXPECT_EQ(a.helo, b.helo);
  EXPECT_EQ(a.auth_user, b.auth_user);
  EXPECT_EQ(a.tls, b.tls);
  EXPECT_EQ(a.body_chunks, b.body_chunks);
  EXPECT_EQ(a.meta, b.meta);
}

void expect_equal(const DestRecord& a, const DestRecord& b) {
  ASSERT_EQ(a.recipients.size(), b.recipients.size());
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    EXPECT_EQ(a.recipients[i].index, b.recipients[i].index);
    EXPECT_EQ(a.recipients[i].state, b.recipients[i].state);
    EXPECT_EQ(a.recipients[i].last_reply, b.recipients[i].last_reply);
  }
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.next_attempt_ms, b.next_attempt_ms);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.delay_notified, b.delay_notified);
}


// Issue 12 item 4: the tenancy rides in the dest record (v5, only when set,
// so records without one stay v3/v4), with or without credentials; bad
// names or priorities are refused; suspensions round-trip their key.
TEST(Records, DestV5CarriesTenancyOnlyWhenSet) {
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  EXPECT_EQ(encode(d)[0], 3);
  d.tenancy = {"acme", "spring", mailgate::tenancy::Priority::Bulk};
  auto v5 = encode(d);
  EXPECT_EQ(v5[0], 5);
  DestRecord out;
  ASSERT_TRUE(decode(v5, out));
  EXPECT_EQ(out.tenancy, d.tenancy);
  EXPECT_FALSE(out.auth);
  for (std::size_t n = 1; n < v5.size(); ++n) EXPECT_FALSE(decode(v5.substr(0, n), out)) << n;
  d.auth = RouteAuth{"u", "p", true};
  ASSERT_TRUE(decode(encode(d), out));
  EXPECT_EQ(out.tenancy, d.tenancy);
  ASSERT_TRUE(out.auth);
  EXPECT_EQ(*out.auth, *d.auth);
  std::string bad = v5;
  bad.back() = 7;  // priority out of range
  EXPECT_FALSE(decode(bad, out));
  d.auth.reset();
  d.tenancy.tenant = "a/b";  // never valid: refuse rather than schedule by it
  EXPECT_FALSE(decode(encode(d), out));
}

TEST(Records, TenantSuspensionKeyRoundTrip) {
  mailgate::tenancy::Suspension s{"acme", "", "[10.0.0.1]:25", 1000, 2000};
  mailgate::tenancy::Suspension out;
  ASSERT_TRUE(decode_tenant_suspension(tenant_suspension_key(s), encode_tenant_suspension(s), out));
  EXPECT_TRUE(out.same_rule(s));
  EXPECT_EQ(out.since_ms, 1000);
  EXPECT_EQ(out.until_ms, 2000);
  EXPECT_FALSE(decode_tenant_suspension("suspend_tenant/acme", "1 2", out));
  EXPECT_FALSE(decode_tenant_suspension(tenant_suspension_key(s), "1", out));
  EXPECT_FALSE(decode_tenant_suspension(tenant_suspension_key(s), "x 2", out));
  EXPECT_FALSE(decode_tenant_suspension("suspend_tenant/a b//", "1 2", out));
}

}  // namespace

TEST(Records, EnvelopeRoundTripWithHostileBytes) {
  auto e = sample_envelope();
  auto bytes = encode(e);
  EXPECT_EQ(bytes[0], 1);  // version
  Envelope out;
  ASSERT_TRUE(decode(bytes, out));
  expect_equal(e, out);
  EXPECT_EQ(encode(out), bytes);
}

TEST(Records, EmptyEnvelopeRoundTrip) {
  Envelope e, out;
  out.sender = "stale";
  ASSERT_TRUE(decode(encode(e), out));
  expect_equal(e, out);
}

TEST(Records, DestRoundTripWithHostileBytes) {
  auto d = sample_dest();
  auto bytes = encode(d);
  EXPECT_EQ(bytes[0], 3);  // DestRecord version 3 (flags byte, route TLS)
  DestRecord out;
  ASSERT_TRUE(decode(bytes, out));
  expect_equal(d, out);
  for (std::int64_t v :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{-64}, std::int64_t{64},
        std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min()}) {
    d.next_attempt_ms = v;
    ASSERT_TRUE(decode(encode(d), out));
    EXPECT_EQ(out.next_attempt_ms, v);
  }
}

TEST(Records, EveryTruncationIsRejected) {
  auto eb = encode(sample_envelope());
  for (std::size_t n = 0; n < eb.size(); ++n) {
    Envelope out;
    EXPECT_FALSE(decode(std::string_view(eb).substr(0, n), out)) << "envelope prefix " << n;
  }
  auto db = encode(sample_dest());
  for (std::size_t n = 0; n < db.size(); ++n) {
    DestRecord out;
    EXPECT_FALSE(decode(std::string_view(db).substr(0, n), out)) << "dest prefix " << n;
  }
}

TEST(Records, TrailingGarbageIsRejected) {
  Envelope e;
  DestRecord d;
  EXPECT_FALSE(decode(encode(sample_envelope()) + "x", e));
  EXPECT_FALSE(decode(encode(sample_dest()) + std::string(1, '\0'), d));
}

TEST(Records, UnknownVersionIsRejected) {
  for (char v : {'\0', '\2', '\xff'}) {
    auto eb = encode(sample_envelope());
    eb[0] = v;
    Envelope e;
    EXPECT_FALSE(decode(eb, e));
  }
  for (char v : {'\0', '\4', '\xff'}) {
    auto db = encode(sample_dest());
    db[0] = v;
    DestRecord d;
    EXPECT_FALSE(decode(db, d));
  }
}

TEST(Records, FailedDecodeLeavesOutputUntouched) {
  DestRecord d = sample_dest(), out = sample_dest();
  out.attempts = 99;
  EXPECT_FALSE(decode("\x01\x05", out));
  EXPECT_EQ(out.attempts, 99u);
}

TEST(Records, AbsurdCountsAreRejected) {
  // version, recipient count = 2^63 (varint), nothing else.
  std::string d = "\x01";
  d += std::string(8, '\xff') + "\x7f";
  DestRecord dr;
  EXPECT_FALSE(decode(d, dr));
  // Count larger than the remaining bytes.
  std::string d2 = "\x01\x10";
  d2 += std::string(10, '\0');
  EXPECT_FALSE(decode(d2, dr));
  // Envelope: empty sender, then a huge recipient count.
  std::string e = std::string("\x01\x00", 2) + "\xff\xff\xff\xff\x0f";
  Envelope env;
  EXPECT_FALSE(decode(e, env));
  // A string length beyond the input.
  std::string e2 = std::string("\x01\x7f", 2) + "abc";
  EXPECT_FALSE(decode(e2, env));
}

TEST(Records, OverlongVarintIsRejected) {
  DestRecord dr;
  // 11-byte varint for the recipient count.
  std::string d = "\x01" + std::string(10, '\x80') + std::string(1, '\0');
  EXPECT_FALSE(decode(d, dr));
  // 10th byte carries more than bit 63.
  std::string d2 = "\x01" + std::string(9, '\xff') + "\x02";
  EXPECT_FALSE(decode(d2, dr));
}

TEST(Records, OutOfRangeFieldsAreRejected) {
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  auto bytes = encode(d);
  // layout: version, count, index, state, ...
  ASSERT_EQ(bytes[3], 0);
  bytes[3] = 3;
  DestRecord out;
  EXPECT_FALSE(decode(bytes, out));

  Envelope e;
  e.smtputf8 = true;
  auto eb = encode(e);
  // layout: version, sender len, rcpt count, ret, envid len, body_type, smtputf8
  ASSERT_EQ(eb[6], 1);
  eb[6] = 2;
  Envelope eout;
  EXPECT_FALSE(decode(eb, eout));
}

TEST(Records, BodyKeyLayout) {
  auto id = MessageId::make(1, 2, 3);
  auto k = body_key(id, 0x01020304);
  ASSERT_EQ(k.size(), 20u);
  EXPECT_EQ(k.substr(0, 16), id.key());
  EXPECT_EQ(k.substr(16), "\x01\x02\x03\x04");
  // Chunks sort numerically.
  EXPECT_LT(body_key(id, 255), body_key(id, 256));
  EXPECT_LT(body_key(id, UINT32_MAX), body_key(MessageId::make(1, 2, 4), 0));
}

TEST(Records, DestKeySplit) {
  auto id = MessageId::make(123, 4, 5);
  auto k = dest_key(id, "[10.0.0.1]:2525");
  EXPECT_EQ(k.size(), 16u + 15u);
  MessageId got;
  std::string dest;
  ASSERT_TRUE(split_dest_key(k, got, dest));
  EXPECT_EQ(got, id);
  EXPECT_EQ(dest, "[10.0.0.1]:2525");
  EXPECT_FALSE(split_dest_key(std::string(id.key()), got, dest));
  EXPECT_FALSE(split_dest_key("short", got, dest));
  // Binary destination bytes survive.
  ASSERT_TRUE(split_dest_key(dest_key(id, std::string("a\0b", 3)), got, dest));
  EXPECT_EQ(dest, std::string("a\0b", 3));
}

TEST(Records, DestV3CarriesFlagsAndTheRouteTlsModeAndOlderVersionsAreStillRead) {
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, "451 4.2.0 later"});
  d.attempts = 3;
  d.delay_notified = true;
  d.tls = mailgate::smtp::TlsMode::Required;
  auto v3 = encode(d);
  EXPECT_EQ(v3[0], 3);
  DestRecord out;
  ASSERT_TRUE(decode(v3, out));
  EXPECT_TRUE(out.delay_notified);
  EXPECT_EQ(out.tls, mailgate::smtp::TlsMode::Required);
  EXPECT_EQ(out.attempts, 3u);
  // The same record as written by version 2 (no TLS byte) and 1 (no flags byte).
  std::string v2 = v3.substr(0, v3.size() - 1);
  v2[0] = 2;
  DestRecord older;
  ASSERT_TRUE(decode(v2, older));
  EXPECT_TRUE(older.delay_notified);
  EXPECT_EQ(older.tls, std::nullopt);
  std::string v1 = v2.substr(0, v2.size() - 1);
  v1[0] = 1;
  DestRecord old;
  ASSERT_TRUE(decode(v1, old));
  EXPECT_FALSE(old.delay_notified);
  EXPECT_EQ(old.attempts, 3u);
  // Unknown flag bits and TLS values are refused, not ignored.
  std::string bad = v3;
  bad[bad.size() - 2] = '\x02';
  EXPECT_FALSE(decode(bad, out));
  bad = v3;
  bad.back() = '\x06';
  EXPECT_FALSE(decode(bad, out));
}

TEST(Records, DestTlsByteIsTheModesNumberAndZeroIsNoChoice) {
  // The bytes of a v3 record as the build before verify/dane wrote it (one
  // recipient, route tls = "disabled" = 3), read by this one.
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  d.tls = mailgate::smtp::TlsMode::Disabled;
  const std::string disabled = encode(d);
  EXPECT_EQ(disabled.back(), '\x03');
  DestRecord out;
  ASSERT_TRUE(decode(disabled, out));
  EXPECT_EQ(out.tls, mailgate::smtp::TlsMode::Disabled);
  d.tls.reset();
  EXPECT_EQ(encode(d).back(), '\x00');
  ASSERT_TRUE(decode(encode(d), out));
  EXPECT_EQ(out.tls, std::nullopt);
  for (auto m : mailgate::smtp::kTlsModes) {
    d.tls = m;
    ASSERT_TRUE(decode(encode(d), out)) << mailgate::smtp::to_string(m);
    EXPECT_EQ(out.tls, m);
  }
}

TEST(Records, DestV4CarriesSmarthostAuthAndIsWrittenOnlyWithIt) {
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  d.attempts = 2;
  d.tls = mailgate::smtp::TlsMode::Required;
  EXPECT_EQ(encode(d)[0], 3);  // without credentials: still v3 (an older binary reads it)
  d.auth = RouteAuth{"app@example.com", std::string("p\0:w", 4), false};
  auto v4 = encode(d);
  EXPECT_EQ(v4[0], 4);
  DestRecord out;
  ASSERT_TRUE(decode(v4, out));
  ASSERT_TRUE(out.auth);
  EXPECT_EQ(*out.auth, *d.auth);
  EXPECT_EQ(out.tls, mailgate::smtp::TlsMode::Required);
  EXPECT_EQ(out.attempts, 2u);
  d.auth->plaintext = true;
  ASSERT_TRUE(decode(encode(d), out));
  EXPECT_TRUE(out.auth->plaintext);
  // Every truncation is refused, and so are unknown flags or a v4 without
  // credentials.
  for (std::size_t n = 1; n < v4.size(); ++n) EXPECT_FALSE(decode(v4.substr(0, n), out)) << n;
  const auto flags_at =
      encode(DestRecord{d.recipients, 2, 0, 0, false, mailgate::smtp::TlsMode::Required}).size();
  std::string bad = v4;
  bad[flags_at] = '\x04';
  EXPECT_FALSE(decode(bad, out));
  bad[flags_at] = '\0';
  EXPECT_FALSE(decode(bad, out));
  std::string v3_marked_v4 =
      encode(DestRecord{d.recipients, 2, 0, 0, false, mailgate::smtp::TlsMode::Required});
  v3_marked_v4[0] = 4;
  EXPECT_FALSE(decode(v3_marked_v4, out));
}
