// egress/path_registry: see path_registry.hpp.
#include "egress/path_registry.hpp"

#include <charconv>

namespace mailgate::egress {

std::string warmup_count_key(std::string_view source, std::string_view site, std::int64_t day) {
  return std::string(kWarmupPrefix) + std::string(source) + "/" + std::string(site) + "/" +
         std::to_string(day);
}

std::string warmup_start_key(std::string_view source) {
  return std::string(kWarmupPrefix) + std::string(source);
}

PathRegistry::Path& PathRegistry::path(const std::string& source, const std::string& site) {
  auto it = paths_.find(Key{source, site});
  if (it == paths_.end()) it = paths_.emplace(Key{source, site}, Path{}).first;
  return it->second;
}

bool PathRegistry::try_connect(const std::string& source, const std::string& site_name,
                               unsigned max) {
  std::lock_guard lock(mu_);
  auto& p = path(source, site_name);
  if (max != 0 && p.connections >= max) return false;
  ++p.connections;
  return true;
}

void PathRegistry::disconnect(const std::string& source, const std::string& site_name) {
  std::lock_guard lock(mu_);
  auto& p = path(source, site_name);
  if (p.connections > 0) --p.connections;
}

std::int64_t PathRegistry::acquire_message(const std::string& source, const Site* site,
                                           std::int64_t now_us) {
  if (!site || site->max_message_rate <= 0) return 0;
  std::lock_guard lock(mu_);
  auto& p = path(source, site->name);
  if (p.rate_per_s != site->max_message_rate || p.burst != site->max_message_burst) {
    // A new or changed limit (reload): start it afresh.
    p.rate = ratelimit::RateLimit(site->max_message_rate,
                                  std::max<std::uint32_t>(1, site->max_message_burst), rates_,
                                  ratelimit::RateKind::SiteRate, source + "|" + site->name);
    p.rate_per_s = site->max_message_rate;
    p.burst = site->max_message_burst;
  }
  return p.rate.acquire(now_us);
}

void PathRegistry::roll(Path& p, std::int64_t today) {
  if (p.day == today) return;
  p.day = today;
  p.today = 0;
  p.persisted = 0;
}

// With a backend, warm-up days are the shared clock's (every node agrees
// on when a day ends, whatever its own clock says).
std::int64_t PathRegistry::shared_now(std::int64_t now_ms) const {
  return warmup_ ? now_ms + warmup_->clock_offset_ms() : now_ms;
}

std::int64_t PathRegistry::warmup_day(const std::string& source, std::int64_t today) {
  auto it = first_day_.find(source);
  if (it == first_day_.end()) {
    it = first_day_.emplace(source, today).first;
    dirty_first_day_.push_back(source);
  }
  // The nodes agree on the earliest day 1 any of them saw (kept in the
  // spool too, so a restart without the backend still knows it).
  if (warmup_)
    if (const auto shared = warmup_->first_day(source, it->second);
        shared && *shared < it->second) {
      it->second = *shared;
      dirty_first_day_.push_back(source);
    }
  return today - it->second + 1;
}

WarmupTake PathRegistry::take_quota(const Source& src, const std::string& site_name,
                                    std::int64_t now_ms, std::uint64_t ready) {
  const auto offset = shared_now(now_ms) - now_ms;
  now_ms += offset;
  const auto today = utc_day(now_ms);
  std::lock_guard lock(mu_);
  auto& p = path(src.name, site_name);
  roll(p, today);
  if (src.warmup) {
    const auto cap = src.warmup->quota(warmup_day(src.name, today));
    WarmupTake t;
    // This node's own count is part of the shared one: spent without asking.
    if (cap && p.today >= *cap)
      t.kind = WarmupTake::Kind::Spent;
    else if (cap && warmup_)
      t = warmup_->take(src.name, site_name, today, *cap, p.today, ready);
    if (t.kind == WarmupTake::Kind::Spent)
      t.until_ms = next_utc_midnight_ms(now_ms) - offset;  // back to this node's clock
    if (!t) return t;
    p.dirty = true;
  }
  ++p.today;
  ++p.messages;
  return {};
}

void PathRegistry::refund_quota(const Source& src, const std::string& site_name,
                                std::int64_t now_ms) {
  now_ms = shared_now(now_ms);
  const auto today = utc_day(now_ms);
  std::lock_guard lock(mu_);
  auto& p = path(src.name, site_name);
  roll(p, today);
  if (p.today > 0) --p.today;
  if (p.messages > 0) --p.messages;
  if (!src.warmup) return;
  p.dirty = true;
  if (warmup_ && src.warmup->quota(warmup_day(src.name, today)))
    warmup_->refund(src.name, site_name, today);
}

std::optional<std::uint64_t> PathRegistry::remaining(const Source& src,
                                                     const std::string& site_name,
                                                     std::int64_t now_ms) {
  if (!src.warmup) return std::nullopt;
  now_ms = shared_now(now_ms);
  const auto today = utc_day(now_ms);
  std::lock_guard lock(mu_);
  auto& p = path(src.name, site_name);
  roll(p, today);
  const auto cap = src.warmup->quota(warmup_day(src.name, today));
  if (!cap) return std::nullopt;
  if (warmup_ && warmup_->spent(src.name, site_name, today)) return 0;
  return *cap > p.today ? *cap - p.today : 0;  // this node's view (the shared count is higher)
}

namespace {
std::optional<std::int64_t> to_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}
}  // namespace

void PathRegistry::load(const std::vector<WarmupRow>& rows, std::int64_t now_ms) {
  const auto today = utc_day(now_ms);
  std::lock_guard lock(mu_);
  for (const auto& row : rows) {
    std::string_view rest(row.key);
    if (!rest.starts_with(kWarmupPrefix)) continue;
    rest.remove_prefix(kWarmupPrefix.size());
    const auto value = to_int(row.value);
    if (!value) continue;
    const auto s1 = rest.find('/');
    if (s1 == std::string_view::npos) {  // warmup/<source>: its day 1
      first_day_[std::string(rest)] = *value;
      continue;
    }
    const auto s2 = rest.rfind('/');
    const auto day = to_int(rest.substr(s2 + 1));
    if (s2 == s1 || !day) continue;
    if (*day != today) {  // an earlier day's count: no longer needed
      stale_keys_.push_back(row.key);
      continue;
    }
    auto& p = path(std::string(rest.substr(0, s1)), std::string(rest.substr(s1 + 1, s2 - s1 - 1)));
    p.day = today;
    p.today = p.persisted = static_cast<std::uint64_t>(*value);
  }
}

PathRegistry::Dirty PathRegistry::take_dirty() {
  Dirty d;
  std::lock_guard lock(mu_);
  for (const auto& source : dirty_first_day_)
    d.put.push_back({warmup_start_key(source), std::to_string(first_day_[source])});
  dirty_first_day_.clear();
  for (auto& [key, p] : paths_) {
    if (!p.dirty) continue;
    p.dirty = false;
    d.put.push_back({warmup_count_key(key.first, key.second, p.day), std::to_string(p.today)});
  }
  d.remove = std::move(stale_keys_);
  stale_keys_.clear();
  return d;
}

void PathRegistry::mark_persisted(const std::vector<WarmupRow>& rows) {
  std::lock_guard lock(mu_);
  for (const auto& row : rows) {
    std::string_view rest(row.key);
    rest.remove_prefix(kWarmupPrefix.size());
    const auto s1 = rest.find('/');
    const auto s2 = rest.rfind('/');
    if (s1 == std::string_view::npos || s1 == s2) continue;
    auto it = paths_.find(
        Key{std::string(rest.substr(0, s1)), std::string(rest.substr(s1 + 1, s2 - s1 - 1))});
    const auto day = to_int(rest.substr(s2 + 1));
    const auto value = to_int(row.value);
    if (it != paths_.end() && day && value && it->second.day == *day)
      it->second.persisted = static_cast<std::uint64_t>(*value);
  }
}

void PathRegistry::set_plan(std::shared_ptr<const Plan> plan) {
  std::lock_guard lock(mu_);
  plan_ = std::move(plan);
}

std::shared_ptr<const Plan> PathRegistry::plan() {
  std::lock_guard lock(mu_);
  return plan_;
}

std::vector<PathView> PathRegistry::view(std::int64_t now_ms) {
  const auto today = utc_day(shared_now(now_ms));
  std::vector<PathView> out;
  std::lock_guard lock(mu_);
  const Plan& plan = *plan_;
  for (auto& [key, p] : paths_) {
    roll(p, today);
    PathView v{key.first, key.second,   p.connections, p.messages,
               p.today,   std::nullopt, p.persisted,   std::nullopt};
    if (const auto* src = plan.source(key.first); src && src->warmup) {
      auto it = first_day_.find(key.first);
      const auto day = it == first_day_.end() ? 1 : today - it->second + 1;
      v.quota = src->warmup->quota(day);
      if (warmup_ && v.quota) v.cluster_today = warmup_->shared_count(key.first, key.second, today);
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace mailgate::egress
