// tenancy/tenancy: who a message is sent for (DESIGN §6b): its tenant, its
// campaign and its priority class, and the rule that holds a tenant's (or one
// campaign's) mail, everywhere or at one destination, until a time or until
// resumed. Pure values and functions, no I/O: the spool persists them, the
// queue schedules and holds by them, policy and the admin API validate with
// them.
// Promises: a valid name is 1..64 bytes of [A-Za-z0-9._-] (so it can be a
// key segment, a metric label value and a JSON string as is); the empty
// tenant is "no tenant" and behaves as mail always did (one queue, normal
// priority); Priority's numbers are stable (they are stored in the spool).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::tenancy {

inline constexpr std::size_t kMaxName = 64;
// 1..64 bytes of [A-Za-z0-9._-].
bool valid_name(std::string_view name);

// Stored as one byte: Normal is 0 so records written before priorities
// existed read as normal.
enum class Priority : std::uint8_t { Normal = 0, High = 1, Bulk = 2 };
inline constexpr int kPriorityCount = 3;
std::string_view to_string(Priority p);  // "normal", "high", "bulk"
std::optional<Priority> priority_from_string(std::string_view s);
std::optional<Priority> priority_from_number(std::uint8_t n);

// What a message carries (all of its destinations share one).
struct Tenancy {
  std::string tenant;    // "" = none
  std::string campaign;  // "" = none (only with a tenant)
  Priority priority = Priority::Normal;
  bool empty() const { return tenant.empty() && campaign.empty() && priority == Priority::Normal; }
  bool operator==(const Tenancy&) const = default;
};

// The keys msg:set_tenant / set_campaign / set_priority write in the
// message's metadata (kept with the envelope); msg:set_meta with one of
// these keys is validated the same way.
inline constexpr std::string_view kTenantKey = "tenant";
inline constexpr std::string_view kCampaignKey = "campaign";
inline constexpr std::string_view kPriorityKey = "priority";
// The tenancy metadata says (values that are not valid, e.g. set with
// set_meta before these keys were checked, count as unset).
Tenancy from_meta(const std::map<std::string, std::string>& meta);
// "" when `value` is valid for metadata key `key` (any value is valid for
// other keys), else why not.
std::string check_meta(std::string_view key, std::string_view value);

// Holds the mail of `tenant` (only `campaign`'s when set) at `destination`
// (everywhere when empty) until `until_ms` (wall clock; 0: until resumed).
// Mail queued after it is held too. The first-class operation behind
// `mailgate queue suspend --tenant`, and what shaping automation reuses.
struct Suspension {
  std::string tenant;
  std::string campaign;     // "" = every campaign of the tenant
  std::string destination;  // "" = every destination
  std::int64_t since_ms = 0;
  std::int64_t until_ms = 0;  // 0 = until resumed
  // The same rule (tenant, campaign, destination), whatever its times.
  bool same_rule(const Suspension& o) const {
    return tenant == o.tenant && campaign == o.campaign && destination == o.destination;
  }
  bool holds(std::string_view t, std::string_view c, std::string_view dest) const {
    return t == tenant && (campaign.empty() || c == campaign) &&
           (destination.empty() || dest == destination);
  }
  bool expired(std::int64_t now_ms) const { return until_ms != 0 && now_ms >= until_ms; }
};

// "" when `s` can be stored and applied (valid names, campaign only with a
// tenant, destination without control bytes, at most 255 bytes), else why not.
std::string check(const Suspension& s);

}  // namespace mailgate::tenancy
