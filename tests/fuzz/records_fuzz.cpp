// Fuzz target: spool/records and spool/message_id (the spool's binary
// records and keys). Input: a selector octet, then the payload.
//   0: payload decoded as an Envelope      1: as a DestRecord
//   2: an Envelope built from the payload  3: a DestRecord built from it
//   4: message ids and keys built from it  5: suppression records
// Invariants checked:
//  - decode() of arbitrary bytes never crashes, never allocates beyond what
//    the input could hold (rss limit), and leaves its output untouched when it
//    fails; a decoded record re-encodes canonically (encode(decode(x)) decodes
//    to the same value, and encoding that again gives the same bytes), old
//    DestRecord versions included;
//  - decode(encode(x)) == x for records built from fuzz data, and every
//    strict prefix and every one-octet extension of encode(x) is refused;
//  - ids: make() and the accessors round-trip (48-bit millis), hex() is 32
//    lower-case digits and from_hex/from_key invert hex()/key(); from_hex of
//    arbitrary text accepts exactly 32 hex digits; body_key / dest_key /
//    split_dest_key round-trip and split_dest_key refuses keys of <= 16 octets;
//  - a suppression record decodes from its encoding unchanged.
//
// MAILGATE_FUZZ_WRITE_SEEDS=DIR: instead of fuzzing, writes the seed corpus
// (records encoded by the real encoder) to DIR and exits; that is how
// tests/fuzz/corpus/records/ was made.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"

using mailgate::fuzz::show;
using namespace mailgate::spool;

namespace {

bool same(const Envelope& a, const Envelope& b) {
  if (a.recipients.size() != b.recipients.size()) return false;
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    const auto &x = a.recipients[i], &y = b.recipients[i];
    if (x.address != y.address || x.notify != y.notify || x.orcpt != y.orcpt) return false;
  }
  return a.sender == b.sender && a.ret == b.ret && a.envid == b.envid &&
         a.body_type == b.body_type && a.smtputf8 == b.smtputf8 && a.size == b.size &&
         a.received_ms == b.received_ms && a.client_ip == b.client_ip && a.helo == b.helo &&
         a.auth_user == b.auth_user && a.tls == b.tls && a.body_chunks == b.body_chunks &&
         a.meta == b.meta;
}

bool same(const DestRecord& a, const DestRecord& b) {
  if (a.recipients.size() != b.recipients.size()) return false;
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    const auto &x = a.recipients[i], &y = b.recipients[i];
    if (x.index != y.index || x.state != y.state || x.last_reply != y.last_reply) return false;
  }
  return a.attempts == b.attempts && a.next_attempt_ms == b.next_attempt_ms && a.size == b.size &&
         a.delay_notified == b.delay_notified && a.tls == b.tls;
}

// A recognisable value that a failed decode must leave alone.
template <class T>
T sentinel();
template <>
Envelope sentinel<Envelope>() {
  Envelope e;
  e.sender = "sentinel@unchanged.test";
  e.recipients.push_back({"r@unchanged.test", 6, "rfc822;r@unchanged.test"});
  e.size = 4242;
  e.meta.emplace_back("k", "v");
  return e;
}
template <>
DestRecord sentinel<DestRecord>() {
  DestRecord d;
  d.recipients.push_back({7, RcptState::Failed, "550 sentinel"});
  d.attempts = 99;
  d.tls = mailgate::smtp::TlsMode::Required;
  return d;
}

template <class T>
void check_decode(std::string_view in) {
  T out = sentinel<T>();
  if (!decode(in, out)) {
    FUZZ_CHECK(same(out, sentinel<T>()), "a failed decode changed its output: " + show(in));
    return;
  }
  const std::string canonical = encode(out);
  T again = sentinel<T>();
  FUZZ_CHECK(decode(canonical, again), "re-encoded record does not decode: " + show(in));
  FUZZ_CHECK(same(out, again), "decode(encode(decode(x))) != decode(x) for " + show(in));
  FUZZ_CHECK(encode(again) == canonical, "encoding is not canonical for " + show(in));
}

template <class T>
void check_round_trip(const T& value) {
  const std::string enc = encode(value);
  T out = sentinel<T>();
  FUZZ_CHECK(decode(enc, out), "encode() output refused: " + show(enc));
  FUZZ_CHECK(same(out, value), "decode(encode(x)) != x: " + show(enc));
  // Every prefix of a short record; of a long one, the last 32 and every
  // 16th (keeps an execution fast).
  for (std::size_t n = 0; n < enc.size(); ++n) {
    if (enc.size() > 128 && n + 32 < enc.size() && n % 16 != 0) continue;
    T t = sentinel<T>();
    FUZZ_CHECK(!decode(std::string_view(enc).substr(0, n), t),
               "truncated record accepted (" + std::to_string(n) + " of " +
                   std::to_string(enc.size()) + " octets): " + show(enc));
  }
  T t = sentinel<T>();
  FUZZ_CHECK(!decode(enc + '\0', t), "record with a trailing octet accepted: " + show(enc));
}

Envelope make_envelope(FuzzedDataProvider& p) {
  Envelope e;
  e.sender = p.ConsumeRandomLengthString(64);
  const auto n = p.ConsumeIntegralInRange<std::size_t>(0, 8);
  for (std::size_t i = 0; i < n; ++i) {
    EnvelopeRecipient r;
    r.address = p.ConsumeRandomLengthString(64);
    r.notify = p.ConsumeIntegral<std::uint8_t>();
    r.orcpt = p.ConsumeRandomLengthString(64);
    e.recipients.push_back(std::move(r));
  }
  e.ret = p.ConsumeIntegral<std::uint8_t>();
  e.envid = p.ConsumeRandomLengthString(32);
  e.body_type = p.ConsumeIntegral<std::uint8_t>();
  e.smtputf8 = p.ConsumeBool();
  e.size = p.ConsumeIntegral<std::uint64_t>();
  e.received_ms = p.ConsumeIntegral<std::int64_t>();
  e.client_ip = p.ConsumeRandomLengthString(40);
  e.helo = p.ConsumeRandomLengthString(64);
  e.auth_user = p.ConsumeRandomLengthString(32);
  e.tls = p.ConsumeBool();
  e.body_chunks = p.ConsumeIntegral<std::uint32_t>();
  const auto m = p.ConsumeIntegralInRange<std::size_t>(0, 4);
  for (std::size_t i = 0; i < m; ++i) {
    auto k = p.ConsumeRandomLengthString(16);
    e.meta.emplace_back(std::move(k), p.ConsumeRandomLengthString(32));
  }
  return e;
}

DestRecord make_dest(FuzzedDataProvider& p) {
  DestRecord d;
  const auto n = p.ConsumeIntegralInRange<std::size_t>(0, 8);
  for (std::size_t i = 0; i < n; ++i) {
    DestRecipient r;
    r.index = p.ConsumeIntegral<std::uint32_t>();
    r.state = static_cast<RcptState>(p.ConsumeIntegralInRange<int>(0, 2));
    r.last_reply = p.ConsumeRandomLengthString(128);
    d.recipients.push_back(std::move(r));
  }
  d.attempts = p.ConsumeIntegral<std::uint32_t>();
  d.next_attempt_ms = p.ConsumeIntegral<std::int64_t>();
  d.size = p.ConsumeIntegral<std::uint64_t>();
  d.delay_notified = p.ConsumeBool();
  // 0: no choice (the destination's own setting); 1..5: a TlsMode.
  if (const int mode = p.ConsumeIntegralInRange<int>(0, 5); mode != 0)
    d.tls = static_cast<mailgate::smtp::TlsMode>(mode);
  return d;
}

void check_ids(FuzzedDataProvider& p) {
  const auto millis = p.ConsumeIntegral<std::uint64_t>();
  const auto worker = p.ConsumeIntegral<std::uint16_t>();
  const auto counter = p.ConsumeIntegral<std::uint64_t>();
  const auto id = MessageId::make(millis, worker, counter);
  FUZZ_CHECK(id.millis() == (millis & ((std::uint64_t{1} << 48) - 1)) && id.worker() == worker &&
                 id.counter() == counter,
             "MessageId accessors do not round-trip make()");
  const std::string hex = id.hex();
  FUZZ_CHECK(hex.size() == 32 && hex.find_first_not_of("0123456789abcdef") == std::string::npos,
             "hex() " + show(hex));
  FUZZ_CHECK(MessageId::from_hex(hex) == id, "from_hex(hex()) != id");
  FUZZ_CHECK(MessageId::from_key(id.key()) == id, "from_key(key()) != id");

  const auto chunk = p.ConsumeIntegral<std::uint32_t>();
  const std::string bk = body_key(id, chunk);
  FUZZ_CHECK(bk.size() == 20 && bk.substr(0, 16) == id.key(), "body_key layout");
  std::uint32_t back = 0;
  for (int i = 16; i < 20; ++i) back = (back << 8) | static_cast<unsigned char>(bk[i]);
  FUZZ_CHECK(back == chunk, "body_key chunk is not big-endian");
  // Body keys of one message sort by chunk number.
  const auto other = p.ConsumeIntegral<std::uint32_t>();
  FUZZ_CHECK((body_key(id, other) < bk) == (other < chunk), "body keys do not sort by chunk");

  const std::string dest = p.ConsumeRandomLengthString(300);
  const std::string dk = dest_key(id, dest);
  MessageId id2;
  std::string dest2;
  const bool split = split_dest_key(dk, id2, dest2);
  FUZZ_CHECK(split == !dest.empty(), "split_dest_key(dest_key(id, " + show(dest) + "))");
  if (split) FUZZ_CHECK(id2 == id && dest2 == dest, "split_dest_key does not invert dest_key");

  const std::string raw = p.ConsumeRemainingBytesAsString();
  const bool ok = split_dest_key(raw, id2, dest2);
  FUZZ_CHECK(ok == (raw.size() > 16), "split_dest_key of " + show(raw));
  if (ok) FUZZ_CHECK(dest_key(id2, dest2) == raw, "dest_key(split_dest_key(k)) != k");
  auto h = MessageId::from_hex(raw);
  const bool all_hex =
      raw.size() == 32 && raw.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
  FUZZ_CHECK(h.has_value() == all_hex, "from_hex acceptance of " + show(raw));
  if (h) {
    std::string lower = raw;
    for (auto& c : lower)
      if (c >= 'A' && c <= 'F') c = static_cast<char>(c + 32);
    FUZZ_CHECK(h->hex() == lower, "from_hex(" + show(raw) + ").hex()");
  }
}

void check_suppression(FuzzedDataProvider& p) {
  SuppressionRecord s;
  s.added_ms = p.ConsumeIntegral<std::int64_t>();
  s.address = p.ConsumeRandomLengthString(64);
  s.reason = p.ConsumeRemainingBytesAsString();
  const auto back = decode_suppression(s.address, encode(s));
  FUZZ_CHECK(back.address == s.address && back.reason == s.reason && back.added_ms == s.added_ms,
             "suppression record round trip: " + show(encode(s)));
  (void)decode_suppression(s.address, s.reason);  // arbitrary bytes: no crash
}

// --- seed corpus -------------------------------------------------------------

void write_seed(const std::string& dir, const std::string& name, char selector,
                const std::string& payload) {
  std::ofstream f(dir + "/" + name, std::ios::binary);
  f << selector << payload;
}

void write_seeds(const std::string& dir) {
  Envelope e;
  e.sender = "alice@example.test";
  e.recipients.push_back({"bob@example.test", 2 | 4, "rfc822;bob@example.test"});
  e.recipients.push_back({"\"quoted local\"@[192.0.2.1]", 1, ""});
  e.recipients.push_back({"ü@bücher.test", 0, "utf-8;\\x{FC}@b\\x{FC}cher.test"});
  e.ret = 2;
  e.envid = "QQ314159";
  e.body_type = 2;
  e.smtputf8 = true;
  e.size = 123456;
  e.received_ms = 1767225600123;
  e.client_ip = "2001:db8::1";
  e.helo = "client.example.test";
  e.auth_user = "alice";
  e.tls = true;
  e.body_chunks = 3;
  e.meta = {{"tenant", "acme"}, {"campaign", "spring"}};
  write_seed(dir, "envelope-full", 0, encode(e));
  Envelope bounce;  // a DSN: null sender, one recipient
  bounce.recipients.push_back({"postmaster", 0, ""});
  bounce.received_ms = -1;
  bounce.body_chunks = 1;
  write_seed(dir, "envelope-null-sender", 0, encode(bounce));

  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  d.recipients.push_back({1, RcptState::Delivered, "250 2.0.0 OK queued as 12345"});
  d.recipients.push_back({2, RcptState::Failed, "550 5.1.1 <x@example.test>: no such user"});
  d.attempts = 3;
  d.next_attempt_ms = 1767225660000;
  d.size = 123456;
  d.delay_notified = true;
  d.tls = mailgate::smtp::TlsMode::Required;
  const std::string v3 = encode(d);
  write_seed(dir, "dest-v3", 1, v3);
  // The same record as versions 1 and 2 wrote it (no TLS byte; no flags byte).
  std::string v2 = v3.substr(0, v3.size() - 1);
  v2[0] = 2;
  write_seed(dir, "dest-v2", 1, v2);
  std::string v1 = v3.substr(0, v3.size() - 2);
  v1[0] = 1;
  write_seed(dir, "dest-v1", 1, v1);
  write_seed(dir, "dest-empty", 1, encode(DestRecord{}));

  // Structured modes: FuzzedDataProvider takes integers from the end and
  // strings from the front, so any bytes do; these are just varied lengths.
  write_seed(dir, "build-envelope", 2, encode(e));
  write_seed(dir, "build-dest", 3, v3);
  write_seed(dir, "ids", 4, std::string(32, '\x5a') + "00112233445566778899aabbccddeeff");
  write_seed(dir, "suppression", 5, "1767225600123 hard bounce: 550 5.1.1 user unknown");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("MAILGATE_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view payload(reinterpret_cast<const char*>(data) + 1, size - 1);
  FuzzedDataProvider p(data + 1, size - 1);
  switch (data[0] % 6) {
    case 0:
      check_decode<Envelope>(payload);
      break;
    case 1:
      check_decode<DestRecord>(payload);
      break;
    case 2:
      check_round_trip(make_envelope(p));
      break;
    case 3:
      check_round_trip(make_dest(p));
      break;
    case 4:
      check_ids(p);
      break;
    case 5:
      check_suppression(p);
      break;
  }
  return 0;
}
