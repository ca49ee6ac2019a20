// egress/egress_plan: what the config declares for bulk sending
// (DESIGN §6b): named sources (an address and EHLO name, optionally a
// warm-up schedule), pools of sources with weights, and sites (provider
// groups of destinations, by the suffix of their MX hosts) with limits that
// hold per (source, site). One Plan per policy version, immutable once built.
// Promises: add_* refuse (return an error text, change nothing) a duplicate
// source or pool, a malformed address, a pool naming an unknown source, a
// weight <= 0, a site named "other" (reserved for destinations no site
// covers); a site declared again under the same
// name replaces the earlier one (so a sender overrides shipped defaults).
// site_for() picks the site by the longest matching suffix; a destination no
// site covers is its own site ("" here: only its egress_path limits apply).
// Shaping rules (egress/shaping_rule.hpp) name a declared site, so a
// site's rules are declared after it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "egress/shaping_rule.hpp"

namespace mailgate::egress {

// start × factor^(day−1) messages per (source, site) per UTC day, for `days`
// days (day 1: the first UTC day the source sent mail); unlimited after.
struct Warmup {
  std::uint64_t start = 0;
  double factor = 2;
  unsigned days = 0;
  // The cap on `day` (1-based); nothing when the schedule is over.
  std::optional<std::uint64_t> quota(std::int64_t day) const;
};

struct Source {
  std::string name;
  std::string address;    // IPv4 or IPv6 literal; "" = any (the OS chooses)
  std::string ehlo_name;  // "" = the gateway's hostname
  std::optional<Warmup> warmup;
};

struct PoolMember {
  std::string source;
  unsigned weight = 1;
};

struct Pool {
  std::string name;
  std::vector<PoolMember> members;
};

struct Site {
  std::string name;
  std::vector<std::string> mx_suffixes;  // lower case, each starting with '.'
  unsigned max_connections = 0;          // 0: no site-wide cap
  double max_message_rate = 0;           // per second; 0: none
  std::uint32_t max_message_burst = 1;
};

class Plan {
 public:
  std::string add_source(Source s);
  std::string add_pool(Pool p);
  std::string add_site(Site s);  // refuses the reserved name "other" and an empty name
  // Refuses a rule naming an undeclared site, a duplicate name, a duration
  // <= 0, an override that sets nothing.
  std::string add_shaping_rule(ShapingRule r);

  const Source* source(std::string_view name) const;
  const Pool* pool(std::string_view name) const;
  const Site* site(std::string_view name) const;
  // The pool of messages that named none: "default" when declared, else none.
  const Pool* default_pool() const { return pool("default"); }
  // The site of a destination whose MX hosts are `hosts` (first match wins
  // over the hosts in order; the longest suffix within one host): "" = none.
  std::string site_for(const std::vector<std::string>& hosts) const;

  const std::vector<Source>& sources() const { return sources_; }
  const std::vector<Pool>& pools() const { return pools_; }
  const std::vector<Site>& sites() const { return sites_; }
  const std::vector<ShapingRule>& shaping_rules() const { return shaping_rules_; }
  bool empty() const { return sources_.empty() && pools_.empty() && sites_.empty(); }

 private:
  std::vector<Source> sources_;
  std::vector<Pool> pools_;
  std::vector<Site> sites_;
  std::vector<ShapingRule> shaping_rules_;
};

// "200/day", "200/d" or a plain number: messages per day. Nothing if malformed.
std::optional<std::uint64_t> parse_per_day(std::string_view s);

// Days since the Unix epoch of `unix_ms` (UTC), and the next 00:00 UTC in ms.
std::int64_t utc_day(std::int64_t unix_ms);
std::int64_t next_utc_midnight_ms(std::int64_t unix_ms);

}  // namespace mailgate::egress
