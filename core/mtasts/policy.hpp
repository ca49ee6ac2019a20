// mtasts/policy: the text formats of MTA-STS (RFC 8461), parsed strictly and
// without I/O: the `_mta-sts` TXT record (§3.1) and the policy file served
// at https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.2), and which MX
// host names a policy allows (§4.1).
// Promises: a policy is returned only when it has exactly one `version:
// STSv1`, one `mode` (enforce | testing | none), one `max_age` (0 to
// 31557600 seconds, digits only) and, unless the mode is none, at least one
// valid `mx` pattern; unknown keys are ignored as §3.2 says; anything else
// is an error naming the line. Names compare case-insensitively, without a
// trailing dot; "*.example.com" matches exactly one more leftmost label.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::mtasts {

enum class Mode : std::uint8_t { None, Testing, Enforce };
std::string_view to_string(Mode m);

struct Policy {
  Mode mode = Mode::None;
  std::vector<std::string> mx;  // patterns, lower case: "mx.example.com", "*.example.net"
  std::uint32_t max_age = 0;    // seconds
};

// Largest policy file accepted (RFC 8461 §3.3: 64 KiB).
inline constexpr std::size_t kMaxPolicySize = 64 * 1024;
inline constexpr std::uint32_t kMaxAge = 31'557'600;

struct ParsedPolicy {
  std::optional<Policy> policy;
  std::string error;  // set when policy is empty
};
ParsedPolicy parse_policy(std::string_view body);

// The id of the domain's one `v=STSv1` TXT record (records not starting
// with "v=STSv1" are ignored); nullopt and `error` when there is none, more
// than one, or it is malformed (id: 1 to 32 letters and digits).
std::optional<std::string> parse_txt_id(const std::vector<std::string>& records,
                                        std::string& error);

// Whether `host` (an MX host name) is allowed by `policy`'s mx patterns.
bool mx_matches(const Policy& policy, std::string_view host);

}  // namespace mailgate::mtasts
