// egress/shaping_actions: see shaping_actions.hpp.
#include "egress/shaping_actions.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace mailgate::egress {

std::string_view to_string(ShapingKind k) {
  switch (k) {
    case ShapingKind::Suspend:
      return "suspend";
    case ShapingKind::SuspendTenant:
      return "suspend_tenant";
    case ShapingKind::SuspendCampaign:
      return "suspend_campaign";
    case ShapingKind::Override:
      return "set";
  }
  return "suspend";
}

std::optional<ShapingKind> shaping_kind_from_number(std::uint8_t n) {
  if (n > static_cast<std::uint8_t>(ShapingKind::Override)) return std::nullopt;
  return static_cast<ShapingKind>(n);
}

namespace {

constexpr std::string_view kRowVersion = "1";

void put_field(std::string& out, std::string_view v) {
  out += std::to_string(v.size());
  out += ':';
  out += v;
}

bool get_field(std::string_view& in, std::string_view& v) {
  const auto colon = in.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 6) return false;
  std::size_t n = 0;
  auto r = std::from_chars(in.data(), in.data() + colon, n);
  if (r.ec != std::errc() || r.ptr != in.data() + colon || in.size() - colon - 1 < n) return false;
  v = in.substr(colon + 1, n);
  in.remove_prefix(colon + 1 + n);
  return true;
}

template <class T>
bool get_number(std::string_view& in, T& out) {
  std::string_view v;
  if (!get_field(in, v)) return false;
  auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size();
}

// An action's target (what rule acted on which path, tenant, campaign and
// destination): the first fields of a spool row, and the whole cluster key.
void put_target(std::string& out, const ShapingAction& a) {
  put_field(out, a.rule);
  put_field(out, std::to_string(static_cast<unsigned>(a.kind)));
  put_field(out, a.site);
  put_field(out, a.source);
  put_field(out, a.destination);
  put_field(out, a.tenant);
  put_field(out, a.campaign);
}

bool get_target(std::string_view& in, ShapingAction& a) {
  std::string_view rule, site, source, dest, tenant, campaign;
  unsigned kind = 0;
  if (!get_field(in, rule) || !get_number(in, kind) || !get_field(in, site) ||
      !get_field(in, source) || !get_field(in, dest) || !get_field(in, tenant) ||
      !get_field(in, campaign) || kind > 255)
    return false;
  auto k = shaping_kind_from_number(static_cast<std::uint8_t>(kind));
  if (!k) return false;
  a.kind = *k;
  a.rule = rule;
  a.site = site;
  a.source = source;
  a.destination = dest;
  a.tenant = tenant;
  a.campaign = campaign;
  return true;
}

}  // namespace

std::string shaping_key(std::string_view id) {
  return std::string(kShapingPrefix) + std::string(id);
}

std::string encode_action(const ShapingAction& a) {
  std::string out;
  put_field(out, kRowVersion);
  put_target(out, a);
  put_field(out, std::to_string(a.set.max_connections));
  char rate[64];
  std::snprintf(rate, sizeof rate, "%.17g", a.set.max_message_rate);
  put_field(out, rate);
  put_field(out, std::to_string(a.since_ms));
  put_field(out, std::to_string(a.until_ms));
  return out;
}

bool decode_action(std::string_view key, std::string_view value, ShapingAction& out) {
  if (key.substr(0, kShapingPrefix.size()) != kShapingPrefix) return false;
  ShapingAction a;
  a.id = std::string(key.substr(kShapingPrefix.size()));
  if (a.id.empty() || a.id.size() > 32) return false;
  std::string_view version, rate;
  if (!get_field(value, version) || version != kRowVersion || !get_target(value, a) ||
      !get_number(value, a.set.max_connections) || !get_field(value, rate) ||
      !get_number(value, a.since_ms) || !get_number(value, a.until_ms) || !value.empty())
    return false;
  a.set.max_message_rate = std::strtod(std::string(rate).c_str(), nullptr);
  if (!(a.set.max_message_rate >= 0)) return false;
  out = std::move(a);
  return true;
}

std::string target_key(const ShapingAction& a) {
  std::string out;
  put_target(out, a);
  return out;
}

bool decode_target_key(std::string_view key, ShapingAction& out) {
  ShapingAction a;
  if (!get_target(key, a) || !key.empty()) return false;
  out = std::move(a);
  return true;
}

std::string encode_shared_action(const ShapingAction& a) {
  std::string out;
  put_field(out, a.id);
  return out + encode_action(a);
}

bool decode_shared_action(std::string_view key, std::string_view value, ShapingAction& out) {
  std::string_view id;
  if (!get_field(value, id) || id.empty() || id.size() > 32 ||
      id.find_first_not_of("0123456789abcdef") != std::string_view::npos)
    return false;
  ShapingAction a;
  if (!decode_action(shaping_key(id), value, a) || target_key(a) != key || a.until_ms <= a.since_ms)
    return false;
  out = std::move(a);
  return true;
}

std::string ShapingActions::next_id(std::int64_t now_ms) {
  for (;;) {
    char buf[17];
    const auto v = (static_cast<std::uint64_t>(now_ms) << 16) | (counter_++ & 0xffff);
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    if (actions_.find(std::string_view(buf)) == actions_.end()) return buf;
  }
}

std::optional<ShapingAction> ShapingActions::fire(const ShapingRule& rule, const ReplyScope& scope,
                                                  std::int64_t now_ms) {
  ShapingAction a;
  a.rule = rule.name;
  a.kind = rule.kind;
  a.site = scope.site;
  a.source = scope.source;
  a.set = rule.set;
  a.since_ms = now_ms;
  a.until_ms = now_ms + rule.duration_ms;
  if (rule.kind == ShapingKind::SuspendTenant || rule.kind == ShapingKind::SuspendCampaign) {
    if (scope.tenant.empty()) return std::nullopt;
    if (rule.kind == ShapingKind::SuspendCampaign && scope.campaign.empty()) return std::nullopt;
    a.destination = scope.destination;
    a.tenant = scope.tenant;
    if (rule.kind == ShapingKind::SuspendCampaign) a.campaign = scope.campaign;
  }
  std::lock_guard lock(mu_);
  for (const auto& [id, b] : actions_)
    if (b.same_target(a) && b.until_ms > now_ms) return std::nullopt;
  if (actions_.size() >= kMaxActions) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  a.id = next_id(now_ms);
  actions_.emplace(a.id, a);
  ++taken_[{a.rule, a.kind}];
  note_size();
  return a;
}

std::int64_t ShapingActions::blocked_until(std::string_view source, std::string_view site,
                                           std::int64_t now_ms) const {
  if (!any_.load(std::memory_order_relaxed)) return 0;
  std::lock_guard lock(mu_);
  std::int64_t until = 0;
  for (const auto& [id, a] : actions_)
    if (a.kind == ShapingKind::Suspend && a.until_ms > now_ms && a.source == source &&
        a.site == site)
      until = std::max(until, a.until_ms);
  return until;
}

ShapingOverride ShapingActions::override_for(std::string_view source, std::string_view site,
                                             std::int64_t now_ms) const {
  ShapingOverride o;
  if (!any_.load(std::memory_order_relaxed)) return o;
  std::lock_guard lock(mu_);
  for (const auto& [id, a] : actions_) {
    if (a.kind != ShapingKind::Override || a.until_ms <= now_ms || a.source != source ||
        a.site != site)
      continue;
    if (a.set.max_connections && (!o.max_connections || a.set.max_connections < o.max_connections))
      o.max_connections = a.set.max_connections;
    if (a.set.max_message_rate > 0 &&
        (o.max_message_rate <= 0 || a.set.max_message_rate < o.max_message_rate))
      o.max_message_rate = a.set.max_message_rate;
  }
  return o;
}

std::vector<ShapingAction> ShapingActions::list(std::int64_t now_ms) const {
  std::lock_guard lock(mu_);
  std::vector<ShapingAction> out;
  for (const auto& [id, a] : actions_)
    if (a.until_ms > now_ms) out.push_back(a);
  return out;
}

std::optional<ShapingAction> ShapingActions::clear(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = actions_.find(id);
  if (it == actions_.end()) return std::nullopt;
  auto a = std::move(it->second);
  actions_.erase(it);
  note_size();
  return a;
}

std::vector<ShapingAction> ShapingActions::clear_all() {
  std::lock_guard lock(mu_);
  std::vector<ShapingAction> out;
  for (auto& [id, a] : actions_) out.push_back(std::move(a));
  actions_.clear();
  note_size();
  return out;
}

std::vector<ShapingAction> ShapingActions::expire(std::int64_t now_ms) {
  if (!any_.load(std::memory_order_relaxed)) return {};
  std::lock_guard lock(mu_);
  std::vector<ShapingAction> out;
  for (auto it = actions_.begin(); it != actions_.end();) {
    if (it->second.until_ms <= now_ms) {
      out.push_back(std::move(it->second));
      it = actions_.erase(it);
    } else {
      ++it;
    }
  }
  note_size();
  return out;
}

bool ShapingActions::adopt(const ShapingAction& a, std::int64_t now_ms,
                           std::vector<ShapingAction>& replaced) {
  if (a.until_ms <= now_ms) return false;
  std::lock_guard lock(mu_);
  std::vector<std::string> older;
  for (const auto& [id, b] : actions_) {
    if (!b.same_target(a)) continue;
    if (id == a.id) return false;  // already here
    if (b.since_ms > a.since_ms || (b.since_ms == a.since_ms && b.id > a.id)) return false;
    older.push_back(id);
  }
  if (actions_.size() - older.size() >= kMaxActions) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  for (const auto& id : older) {
    auto it = actions_.find(id);
    replaced.push_back(std::move(it->second));
    actions_.erase(it);
  }
  actions_.emplace(a.id, a);
  note_size();
  return true;
}

std::vector<ShapingAction> ShapingActions::clear_target(const ShapingAction& target,
                                                        std::int64_t ms) {
  std::lock_guard lock(mu_);
  std::vector<ShapingAction> out;
  for (auto it = actions_.begin(); it != actions_.end();) {
    if (it->second.same_target(target) && it->second.since_ms <= ms) {
      out.push_back(std::move(it->second));
      it = actions_.erase(it);
    } else {
      ++it;
    }
  }
  note_size();
  return out;
}

std::vector<std::string> ShapingActions::load(std::vector<ShapingAction> rows,
                                              std::int64_t now_ms) {
  std::lock_guard lock(mu_);
  std::vector<std::string> stale;
  for (auto& a : rows) {
    if (a.until_ms <= now_ms || actions_.size() >= kMaxActions) {
      stale.push_back(a.id);
      continue;
    }
    actions_.emplace(a.id, std::move(a));
  }
  note_size();
  return stale;
}

std::map<std::pair<std::string, ShapingKind>, std::uint64_t> ShapingActions::taken() const {
  std::lock_guard lock(mu_);
  return taken_;
}

std::size_t ShapingActions::active() const {
  std::lock_guard lock(mu_);
  return actions_.size();
}

}  // namespace mailgate::egress
