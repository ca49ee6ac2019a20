// tenancy/tenancy: see tenancy.hpp.
#include "tenancy/tenancy.hpp"

namespace mailgate::tenancy {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxName) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string_view to_string(Priority p) {
  switch (p) {
    case Priority::High:
      return "high";
    case Priority::Bulk:
      return "bulk";
    case Priority::Normal:
      break;
  }
  return "normal";
}

std::optional<Priority> priority_from_string(std::string_view s) {
  if (s == "normal") return Priority::Normal;
  if (s == "high") return Priority::High;
  if (s == "bulk") return Priority::Bulk;
  return std::nullopt;
}

std::optional<Priority> priority_from_number(std::uint8_t n) {
  if (n >= kPriorityCount) return std::nullopt;
  return static_cast<Priority>(n);
}

std::string check_meta(std::string_view key, std::string_view value) {
  if (key == kTenantKey || key == kCampaignKey) {
    if (!valid_name(value))
      return std::string(key) + " must be 1..64 bytes of letters, digits, '.', '_' or '-'";
  } else if (key == kPriorityKey) {
    if (!priority_from_string(value)) return "priority must be \"high\", \"normal\" or \"bulk\"";
  }
  return "";
}

Tenancy from_meta(const std::map<std::string, std::string>& meta) {
  Tenancy t;
  auto get = [&](std::string_view key) -> std::string {
    auto it = meta.find(std::string(key));
    return it == meta.end() || !check_meta(key, it->second).empty() ? "" : it->second;
  };
  t.tenant = get(kTenantKey);
  if (!t.tenant.empty()) t.campaign = get(kCampaignKey);
  if (auto p = priority_from_string(get(kPriorityKey))) t.priority = *p;
  return t;
}

std::string check(const Suspension& s) {
  if (!valid_name(s.tenant))
    return "tenant must be 1..64 bytes of letters, digits, '.', '_' or '-'";
  if (!s.campaign.empty() && !valid_name(s.campaign))
    return "campaign must be 1..64 bytes of letters, digits, '.', '_' or '-'";
  if (s.destination.size() > 255) return "destination is longer than 255 bytes";
  for (unsigned char c : s.destination)
    if (c <= ' ' || c == 0x7f) return "destination contains a control byte or space";
  if (s.until_ms < 0) return "until is before 1970";
  return "";
}

}  // namespace mailgate::tenancy
