// spool/records: versioned binary encodings of the spool records (see
// records.hpp). Format v1: a version byte (1), then the fields in declaration
// order; integers are LEB128 varints (signed ones zigzag-encoded), strings are
// a varint length followed by the raw bytes, small enums/flags are one byte,
// booleans are exactly 0 or 1.
// Promises: decode() accepts exactly what encode() produces: it rejects
// truncation, trailing bytes, unknown versions, over-long varints, booleans or
// states out of range, and element counts that the remaining input could not
// possibly hold (so hostile input cannot make it allocate much).
#include "spool/records.hpp"

#include <cstdlib>
#include <limits>

namespace mailgate::spool {

namespace {

constexpr std::uint8_t kVersion = 1;
// DestRecord v2 appends a flags byte (bit 0: delay DSN sent); v1 is still read.
// v2: delay flag; v3: route TLS; v4: smarthost AUTH (written only when set,
// so records without it stay readable by a binary that knows v3 only).
// v5: tenancy (tenant, campaign, priority), written only when set; a v5
// record always has the auth flags byte (0: no credentials). v6: v5 plus
// the egress pool (msg:set_pool), written only when a pool is set.
constexpr std::uint8_t kDestVersion = 6;
constexpr std::uint8_t kDestDelayNotified = 1;
constexpr std::uint8_t kDestAuth = 1;           // v4 auth flags: credentials follow
constexpr std::uint8_t kDestAuthPlaintext = 2;  // may go without TLS

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void svarint(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void str(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }

 private:
  std::string& out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && in_.empty(); }
  std::size_t remaining() const { return in_.size(); }

  std::uint8_t u8() {
    if (!ok_ || in_.empty()) return fail<std::uint8_t>();
    auto v = static_cast<std::uint8_t>(in_.front());
    in_.remove_prefix(1);
    return v;
  }
  bool boolean() {
    auto v = u8();
    if (v > 1) return fail<bool>();
    return v == 1;
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      auto b = u8();
      if (!ok_) return 0;
      // The 10th byte may only hold the top bit of a 64-bit value.
      if (shift == 63 && b > 1) return fail<std::uint64_t>();
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return fail<std::uint64_t>();
  }
  std::uint32_t varint32() {
    auto v = varint();
    if (v > std::numeric_limits<std::uint32_t>::max()) return fail<std::uint32_t>();
    return static_cast<std::uint32_t>(v);
  }
  std::int64_t svarint() {
    auto v = varint();
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
  std::string str() {
    auto n = varint();
    if (!ok_ || n > in_.size()) return fail<std::string>();
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  // An element count where each element takes at least `min_bytes` bytes.
  std::size_t count(std::size_t min_bytes) {
    auto n = varint();
    if (!ok_ || n > in_.size() / min_bytes) return fail<std::size_t>();
    return static_cast<std::size_t>(n);
  }

 private:
  template <class T>
  T fail() {
    ok_ = false;
    return T{};
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace

std::string encode(const Envelope& e) {
  std::string out;
  out.reserve(64 + e.sender.size() + e.recipients.size() * 32);
  Writer w(out);
  w.u8(kVersion);
  w.str(e.sender);
  w.varint(e.recipients.size());
  for (const auto& r : e.recipients) {
    w.str(r.address);
    w.u8(r.notify);
    w.str(r.orcpt);
  }
  w.u8(e.ret);
  w.str(e.envid);
  w.u8(e.body_type);
  w.u8(e.smtputf8 ? 1 : 0);
  w.varint(e.size);
  w.svarint(e.received_ms);
  w.str(e.client_ip);
  w.str(e.helo);
  w.str(e.auth_user);
  w.u8(e.tls ? 1 : 0);
  w.varint(e.body_chunks);
  w.varint(e.meta.size());
  for (const auto& [k, v] : e.meta) {
    w.str(k);
    w.str(v);
  }
  return out;
}

bool decode(std::string_view in, Envelope& out) {
  Reader r(in);
  if (r.u8() != kVersion || !r.ok()) return false;
  Envelope e;
  e.sender = r.str();
  auto n = r.count(3);  // address len, notify, orcpt len
  e.recipients.reserve(n);
  for (std::size_t i = 0; i < n && r.ok(); ++i) {
    EnvelopeRecipient rc;
    rc.address = r.str();
    rc.notify = r.u8();
    rc.orcpt = r.str();
    e.recipients.push_back(std::move(rc));
  }
  e.ret = r.u8();
  e.envid = r.str();
  e.body_type = r.u8();
  e.smtputf8 = r.boolean();
  e.size = r.varint();
  e.received_ms = r.svarint();
  e.client_ip = r.str();
  e.helo = r.str();
  e.auth_user = r.str();
  e.tls = r.boolean();
  e.body_chunks = r.varint32();
  auto m = r.count(2);  // key len, value len
  e.meta.reserve(m);
  for (std::size_t i = 0; i < m && r.ok(); ++i) {
    auto k = r.str();
    auto v = r.str();
    e.meta.emplace_back(std::move(k), std::move(v));
  }
  if (!r.at_end()) return false;
  out = std::move(e);
  return true;
}

std::string encode(const DestRecord& d) {
  std::string out;
  out.reserve(32 + d.recipients.size() * 16);
  Writer w(out);
  const bool tenancy = !d.tenancy.empty();
  const bool pool = !d.pool.empty();
  w.u8(pool ? 6 : tenancy ? 5 : d.auth ? 4 : 3);
  w.varint(d.recipients.size());
  for (const auto& r : d.recipients) {
    w.varint(r.index);
    w.u8(static_cast<std::uint8_t>(r.state));
    w.str(r.last_reply);
  }
  w.varint(d.attempts);
  w.svarint(d.next_attempt_ms);
  w.varint(d.size);
  w.u8(d.delay_notified ? kDestDelayNotified : 0);
  w.u8(d.tls ? static_cast<std::uint8_t>(*d.tls) : 0);
  if (d.auth) {
    w.u8(kDestAuth | (d.auth->plaintext ? kDestAuthPlaintext : 0));
    w.str(d.auth->user);
    w.str(d.auth->password);
  } else if (tenancy || pool) {
    w.u8(0);
  }
  if (tenancy || pool) {
    w.str(d.tenancy.tenant);
    w.str(d.tenancy.campaign);
    w.u8(static_cast<std::uint8_t>(d.tenancy.priority));
  }
  if (!d.pool.empty()) w.str(d.pool);
  return out;
}

bool decode(std::string_view in, DestRecord& out) {
  Reader r(in);
  const auto version = r.u8();
  if (!r.ok() || version < 1 || version > kDestVersion) return false;
  DestRecord d;
  auto n = r.count(3);  // index, state, reply len
  d.recipients.reserve(n);
  for (std::size_t i = 0; i < n && r.ok(); ++i) {
    DestRecipient rc;
    rc.index = r.varint32();
    auto state = r.u8();
    if (state > static_cast<std::uint8_t>(RcptState::Failed)) return false;
    rc.state = static_cast<RcptState>(state);
    rc.last_reply = r.str();
    d.recipients.push_back(std::move(rc));
  }
  d.attempts = r.varint32();
  d.next_attempt_ms = r.svarint();
  d.size = r.varint();
  if (version >= 2) {
    const auto flags = r.u8();
    if (flags & ~kDestDelayNotified) return false;
    d.delay_notified = flags & kDestDelayNotified;
  }
  if (version >= 3) {
    if (const auto tls = r.u8(); tls != 0) {
      d.tls = smtp::tls_mode_from_number(tls);
      if (!d.tls) return false;  // a mode this build does not know: refuse, never guess
    }
  }
  if (version >= 4) {
    const auto flags = r.u8();
    if (flags & ~(kDestAuth | kDestAuthPlaintext)) return false;
    if (flags & kDestAuth) {
      RouteAuth a;
      a.plaintext = flags & kDestAuthPlaintext;
      a.user = r.str();
      a.password = r.str();
      if (a.user.empty() || a.password.empty()) return false;
      d.auth = std::move(a);
    } else if (version == 4 || flags != 0) {
      return false;  // v4 is written only with credentials
    }
  }
  if (version >= 5) {
    d.tenancy.tenant = r.str();
    d.tenancy.campaign = r.str();
    const auto prio = tenancy::priority_from_number(r.u8());
    if (!prio) return false;
    d.tenancy.priority = *prio;
    if (!d.tenancy.tenant.empty() && !tenancy::valid_name(d.tenancy.tenant)) return false;
    if (!d.tenancy.campaign.empty() && !tenancy::valid_name(d.tenancy.campaign)) return false;
  }
  if (version >= 6) {
    d.pool = r.str();
    if (d.pool.empty() || d.pool.size() > 255) return false;
  }
  if (!r.ok() || !r.at_end()) return false;
  out = std::move(d);
  return true;
}

std::string_view to_string(RcptState s) {
  switch (s) {
    case RcptState::Pending:
      return "pending";
    case RcptState::Delivered:
      return "delivered";
    case RcptState::Failed:
      return "failed";
  }
  return "unknown";
}

std::string suspension_key(std::string_view destination) {
  std::string k(kSuspensionPrefix);
  k += destination;
  return k;
}

std::string tenant_suspension_key(const tenancy::Suspension& s) {
  std::string k(kTenantSuspensionPrefix);
  k += s.tenant;
  k += '/';
  k += s.campaign;
  k += '/';
  k += s.destination;
  return k;
}

std::string encode_tenant_suspension(const tenancy::Suspension& s) {
  return std::to_string(s.since_ms) + " " + std::to_string(s.until_ms);
}

bool decode_tenant_suspension(std::string_view key, std::string_view value,
                              tenancy::Suspension& out) {
  if (!key.starts_with(kTenantSuspensionPrefix)) return false;
  key.remove_prefix(kTenantSuspensionPrefix.size());
  const auto a = key.find('/');
  if (a == std::string_view::npos) return false;
  const auto b = key.find('/', a + 1);
  if (b == std::string_view::npos) return false;
  tenancy::Suspension s;
  s.tenant = std::string(key.substr(0, a));
  s.campaign = std::string(key.substr(a + 1, b - a - 1));
  s.destination = std::string(key.substr(b + 1));
  const auto sp = value.find(' ');
  if (sp == std::string_view::npos) return false;
  char* end = nullptr;
  const std::string since(value.substr(0, sp)), until(value.substr(sp + 1));
  s.since_ms = std::strtoll(since.c_str(), &end, 10);
  if (since.empty() || *end) return false;
  s.until_ms = std::strtoll(until.c_str(), &end, 10);
  if (until.empty() || *end) return false;
  if (!tenancy::check(s).empty()) return false;
  out = std::move(s);
  return true;
}

std::string body_key(const MessageId& id, std::uint32_t chunk) {
  std::string key(id.key());
  for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>(chunk >> shift));
  return key;
}

std::string dest_key(const MessageId& id, std::string_view destination) {
  std::string key;
  key.reserve(16 + destination.size());
  key.append(id.key());
  key.append(destination);
  return key;
}

bool split_dest_key(std::string_view key, MessageId& id, std::string& destination) {
  if (key.size() <= 16) return false;  // an empty destination is malformed too
  id = *MessageId::from_key(key);
  destination.assign(key.substr(16));
  return true;
}

std::string encode(const SuppressionRecord& s) {
  return std::to_string(s.added_ms) + " " + s.reason;
}

SuppressionRecord decode_suppression(std::string_view key, std::string_view value) {
  SuppressionRecord r;
  r.address = std::string(key);
  const auto sp = value.find(' ');
  r.added_ms = std::strtoll(std::string(value.substr(0, sp)).c_str(), nullptr, 10);
  if (sp != std::string_view::npos) r.reason = std::string(value.substr(sp + 1));
  return r;
}

std::string webhook_key(WebhookRow kind, std::string_view target, std::uint64_t seq) {
  std::string k;
  k.reserve(target.size() + 10);
  k += static_cast<char>(kind);
  k += target;
  k += '\0';
  for (int i = 7; i >= 0; --i) k += static_cast<char>((seq >> (8 * i)) & 0xff);
  return k;
}

bool split_webhook_key(std::string_view key, WebhookRow& kind, std::string& target,
                       std::uint64_t& seq) {
  if (key.size() < 10 || key[key.size() - 9] != '\0') return false;
  if (key[0] != static_cast<char>(WebhookRow::Queued) &&
      key[0] != static_cast<char>(WebhookRow::Dead))
    return false;
  kind = static_cast<WebhookRow>(key[0]);
  target.assign(key.substr(1, key.size() - 10));
  if (target.find('\0') != std::string::npos) return false;
  seq = 0;
  for (std::size_t i = key.size() - 8; i < key.size(); ++i)
    seq = (seq << 8) | static_cast<unsigned char>(key[i]);
  return true;
}

}  // namespace mailgate::spool
