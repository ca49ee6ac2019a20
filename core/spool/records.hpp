// spool/records: binary encodings of the spool's records (DESIGN §4).
// Promises: every record starts with a version byte; every string is
// length-prefixed (varint), so no field can run into another whatever bytes it
// holds; decode() rejects truncated, over-long or unknown-version input instead
// of guessing. Keys: body = id(16) | chunk(u32 BE); meta = id(16);
// dest = id(16) | destination bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "smtp/tls_mode.hpp"
#include "spool/message_id.hpp"
#include "tenancy/tenancy.hpp"

namespace mailgate::spool {

struct EnvelopeRecipient {
  std::string address;      // "local@domain" as received
  std::uint8_t notify = 0;  // smtp::NotifyFlags bits
  std::string orcpt;        // "type;address" or empty
};

// The immutable envelope (column family `meta`).
struct Envelope {
  std::string sender;  // "" for the null path
  std::vector<EnvelopeRecipient> recipients;
  std::uint8_t ret = 0;  // smtp::Ret
  std::string envid;
  std::uint8_t body_type = 0;  // smtp::BodyType
  bool smtputf8 = false;
  std::uint64_t size = 0;  // stored body bytes (our Received line included)
  std::int64_t received_ms = 0;
  std::string client_ip;
  std::string helo;
  std::string auth_user;
  bool tls = false;
  std::uint32_t body_chunks = 0;                          // number of body records id|0..id|n-1
  std::vector<std::pair<std::string, std::string>> meta;  // tenant, campaign, ...
};

enum class RcptState : std::uint8_t { Pending = 0, Delivered = 1, Failed = 2 };
std::string_view to_string(RcptState s);  // "pending", "delivered", "failed"

struct DestRecipient {
  std::uint32_t index = 0;  // into Envelope::recipients
  RcptState state = RcptState::Pending;
  std::string last_reply;
};

// SMTP AUTH to a smarthost as the route hook gave it (DestRecord v4). It is
// kept with the queue record, so a restart delivers with the credentials the
// message was routed with, without running the route hook again. The user is
// also part of the destination's name ("user@[host]:port"); the password is
// stored as given (the spool is as secret as the config file that holds it)
// and is never printed by the spool dump, the admin API or a log line.
struct RouteAuth {
  std::string user;
  std::string password;
  bool plaintext = false;  // may be sent over a connection without TLS
  bool operator==(const RouteAuth&) const = default;
};

// The queue record of a message that is stored but not yet routed: a
// generated message (a DSN) committed together with the delivery results
// that caused it, waiting for the submission stage (route and message
// hooks) to give it its real destinations. No domain or smarthost name can
// contain '@', so it never collides with a destination.
inline constexpr std::string_view kSubmitPending = "@submit";

// A destination a new message is queued for.
struct QueuedDest {
  std::string name;
  // Outbound TLS the route hook asked for; none: the destination's own
  // setting (egress_path, else delivery.tls).
  std::optional<smtp::TlsMode> tls{};
  std::optional<RouteAuth> auth{};
  tenancy::Tenancy tenancy{};  // the message's tenant, campaign, priority
  std::string pool{};  // msg:set_pool's (""= the default pool)
};

// Per (message, destination) delivery state (column family `dest`).
struct DestRecord {
  std::vector<DestRecipient> recipients;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::uint64_t size = 0;       // copy of Envelope::size so recovery needs no meta read
  bool delay_notified = false;  // the delay DSN for these recipients was queued (v2)
  // (v3) The route hook's TLS mode: one byte, 0 for none, else the
  // smtp::TlsMode's number (so records written before verify and dane
  // existed read the same).
  std::optional<smtp::TlsMode> tls{};
  std::optional<RouteAuth> auth{};  // (v4; a record without it is written as v3)
  // (v5; written only when not empty, so a record without one stays v3/v4)
  // The message's tenant, campaign and priority: the queue schedules and
  // holds by them after a restart without reading the envelope.
  tenancy::Tenancy tenancy{};
  // (v6) The egress pool msg:set_pool chose; "" = the default. Written as v6
  // only when set, so records without one stay readable by older binaries.
  std::string pool{};
};

// One entry of the suppression list (column family `suppress`, keyed by the
// normalized address). Stored as "<added_ms> <reason>" (the format since v1).
struct SuppressionRecord {
  std::string address;
  std::string reason;
  std::int64_t added_ms = 0;
};

std::string encode(const Envelope& e);
bool decode(std::string_view in, Envelope& out);
std::string encode(const DestRecord& d);
bool decode(std::string_view in, DestRecord& out);
std::string encode(const SuppressionRecord& s);  // the value; the key is s.address
SuppressionRecord decode_suppression(std::string_view key, std::string_view value);

// A suspended destination: key "suspend/" + destination in the default
// family (beside the counter floor), value its suspension time (decimal ms).
inline constexpr std::string_view kSuspensionPrefix = "suspend/";
std::string suspension_key(std::string_view destination);

// A tenant (or campaign) suspension (tenancy::Suspension): key
// "suspend_tenant/" + tenant + "/" + campaign + "/" + destination (names
// never contain '/'; the destination is the rest), value "since until"
// (decimal ms). Same family as the destination suspensions.
inline constexpr std::string_view kTenantSuspensionPrefix = "suspend_tenant/";
std::string tenant_suspension_key(const tenancy::Suspension& s);
std::string encode_tenant_suspension(const tenancy::Suspension& s);
// false when the key or value is malformed.
bool decode_tenant_suspension(std::string_view key, std::string_view value,
                              tenancy::Suspension& out);

std::string body_key(const MessageId& id, std::uint32_t chunk);
std::string dest_key(const MessageId& id, std::string_view destination);
// Splits a dest key; false if malformed.
bool split_dest_key(std::string_view key, MessageId& id, std::string& destination);

// Column family `webhook` (webhooks/): one row per event and target, queued
// or dead. Key = kind(1) | target | 0x00 | seq(u64 BE): a target's rows sort
// by its sequence (the order they were produced in); the value is opaque
// here (webhooks/ encodes it). Target names never contain NUL.
enum class WebhookRow : char { Queued = 'q', Dead = 'd' };
std::string webhook_key(WebhookRow kind, std::string_view target, std::uint64_t seq);
bool split_webhook_key(std::string_view key, WebhookRow& kind, std::string& target,
                       std::uint64_t& seq);

}  // namespace mailgate::spool
