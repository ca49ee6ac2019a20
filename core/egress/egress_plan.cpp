// egress/egress_plan: see egress_plan.hpp.
#include "egress/egress_plan.hpp"

#include <algorithm>
#include <asio/ip/address.hpp>
#include <cctype>
#include <charconv>
#include <cmath>

namespace mailgate::egress {

std::optional<std::uint64_t> Warmup::quota(std::int64_t day) const {
  if (day < 1) day = 1;
  if (days == 0 || day > static_cast<std::int64_t>(days)) return std::nullopt;
  const double q = static_cast<double>(start) * std::pow(factor, static_cast<double>(day - 1));
  if (q >= 1e15) return std::nullopt;  // past any real cap: unlimited
  return static_cast<std::uint64_t>(q);
}

std::string Plan::add_source(Source s) {
  if (s.name.empty()) return "mailgate.source: name is required";
  for (char c : s.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
      return "mailgate.source: name '" + s.name + "' may only hold letters, digits, '_', '-', '.'";
  if (source(s.name)) return "mailgate.source: source '" + s.name + "' declared twice";
  if (!s.address.empty()) {
    std::error_code ec;
    asio::ip::make_address(s.address, ec);
    if (ec)
      return "mailgate.source '" + s.name + "': address '" + s.address +
             "' is not an IPv4 or IPv6 address";
  }
  if (s.warmup) {
    if (s.warmup->start == 0) return "mailgate.source '" + s.name + "': warmup.start must be > 0";
    if (!(s.warmup->factor >= 1) || s.warmup->factor > 100)
      return "mailgate.source '" + s.name + "': warmup.factor must be between 1 and 100";
    if (s.warmup->days == 0) return "mailgate.source '" + s.name + "': warmup.days must be > 0";
  }
  sources_.push_back(std::move(s));
  return "";
}

std::string Plan::add_pool(Pool p) {
  if (p.name.empty()) return "mailgate.pool: name is required";
  if (pool(p.name)) return "mailgate.pool: pool '" + p.name + "' declared twice";
  if (p.members.empty()) return "mailgate.pool '" + p.name + "': needs at least one source";
  for (std::size_t i = 0; i < p.members.size(); ++i) {
    const auto& m = p.members[i];
    if (!source(m.source))
      return "mailgate.pool '" + p.name + "': unknown source '" + m.source +
             "' (declare it with mailgate.source{} first)";
    if (m.weight == 0)
      return "mailgate.pool '" + p.name + "': weight of '" + m.source + "' must be > 0";
    for (std::size_t j = 0; j < i; ++j)
      if (p.members[j].source == m.source)
        return "mailgate.pool '" + p.name + "': source '" + m.source + "' listed twice";
  }
  pools_.push_back(std::move(p));
  return "";
}

std::string Plan::add_site(Site s) {
  if (s.name.empty()) return "mailgate.site: name is required";
  if (s.name == "other")
    return "mailgate.site: the name 'other' is reserved (destinations no site covers)";
  for (auto& existing : sites_) {
    if (existing.name == s.name) {
      existing = std::move(s);
      return "";
    }
  }
  sites_.push_back(std::move(s));
  return "";
}

std::string Plan::add_shaping_rule(ShapingRule r) {
  const std::string what = "mailgate.shaping_rule '" + r.name + "'";
  if (r.name.empty() || r.name.size() > 64 ||
      !std::all_of(r.name.begin(), r.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      }))
    return what + ": name must be 1..64 of letters, digits, '_', '-', '.'";
  if (!site(r.site))
    return what + ": unknown site '" + r.site + "' (declare it with mailgate.site{} first)";
  for (const auto& x : shaping_rules_)
    if (x.name == r.name) return what + ": declared twice";
  if (r.duration_ms <= 0) return what + ": duration must be > 0, e.g. \"2h\"";
  if (r.kind == ShapingKind::Override && r.set.max_connections == 0 && r.set.max_message_rate <= 0)
    return what + ": set must give max_message_rate and/or max_connections";
  shaping_rules_.push_back(std::move(r));
  return "";
}

namespace {
template <class T>
const T* by_name(const std::vector<T>& v, std::string_view name) {
  for (const auto& x : v)
    if (x.name == name) return &x;
  return nullptr;
}

bool ends_with_ci(std::string_view host, std::string_view suffix) {
  if (host.size() < suffix.size()) return false;
  host = host.substr(host.size() - suffix.size());
  for (std::size_t i = 0; i < host.size(); ++i) {
    char c = host[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}
}  // namespace

const Source* Plan::source(std::string_view name) const { return by_name(sources_, name); }
const Pool* Plan::pool(std::string_view name) const { return by_name(pools_, name); }
const Site* Plan::site(std::string_view name) const { return by_name(sites_, name); }

std::string Plan::site_for(const std::vector<std::string>& hosts) const {
  for (std::string_view host : hosts) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // absolute names
    const Site* best = nullptr;
    std::size_t best_len = 0;
    for (const auto& s : sites_) {
      for (const auto& suffix : s.mx_suffixes) {
        // ".google.com" covers "aspmx.l.google.com" and "google.com" itself.
        const bool match = ends_with_ci(host, suffix) ||
                           (suffix.size() > 1 && ends_with_ci(host, suffix.substr(1)) &&
                            host.size() == suffix.size() - 1);
        if (match && suffix.size() > best_len) {
          best = &s;
          best_len = suffix.size();
        }
      }
    }
    if (best) return best->name;
  }
  return "";
}

std::optional<std::uint64_t> parse_per_day(std::string_view s) {
  auto slash = s.find('/');
  std::string_view num = s.substr(0, slash);
  while (!num.empty() && num.back() == ' ') num.remove_suffix(1);
  if (slash != std::string_view::npos) {
    auto unit = s.substr(slash + 1);
    if (unit != "day" && unit != "d") return std::nullopt;
  }
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (ec != std::errc() || p != num.data() + num.size() || num.empty()) return std::nullopt;
  return v;
}

constexpr std::int64_t kDayMs = 86'400'000;

std::int64_t utc_day(std::int64_t unix_ms) {
  return unix_ms >= 0 ? unix_ms / kDayMs : (unix_ms - kDayMs + 1) / kDayMs;
}

std::int64_t next_utc_midnight_ms(std::int64_t unix_ms) { return (utc_day(unix_ms) + 1) * kDayMs; }

}  // namespace mailgate::egress
