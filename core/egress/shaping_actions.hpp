// egress/shaping_actions: the traffic-shaping actions in force (DESIGN
// §6b), process-wide: what the rules of egress/shaping_rule did when a
// remote reply matched, each for a while. Delivery asks it before a
// connection or message of a (source, site) path (suspended? overridden
// limits?), the admin API lists and clears it, a timer expires it.
// Promises: thread-safe; blocked() and override_for() cost one relaxed
// atomic load while no action is in force; a rule that fires again while
// its action (same rule, site, source, tenant, campaign, destination) is in
// force changes nothing (the first expiry stands: a provider that keeps
// deferring fires the rule again once it expired); at most kMaxActions are
// in force (more are refused and counted, never stored); expired actions
// are never reported in force, whether or not expire() ran yet. Rows
// (prefix "shaping/") encode an action with length-prefixed fields, so no
// name can smuggle a field into another; decode() refuses anything else.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "egress/shaping_rule.hpp"

namespace mailgate::egress {

inline constexpr std::string_view kShapingPrefix = "shaping/";

// Where a reply came from: the path and the message (if any) it was about.
struct ReplyScope {
  std::string source, site, destination;
  std::string tenant, campaign;  // "" = none (greeting, or mail without)
};

struct ShapingAction {
  std::string id;  // 16 hex digits, unique in this process and the spool
  std::string rule;
  ShapingKind kind = ShapingKind::Suspend;
  std::string site, source;
  std::string destination;       // SuspendTenant / SuspendCampaign: where it holds
  std::string tenant, campaign;  // SuspendTenant (tenant) / SuspendCampaign (both)
  ShapingOverride set;
  std::int64_t since_ms = 0, until_ms = 0;
  // SuspendTenant / SuspendCampaign: it holds mail by tenant (a
  // tenancy::Suspension on every worker), not a path.
  bool holds_tenant() const {
    return kind == ShapingKind::SuspendTenant || kind == ShapingKind::SuspendCampaign;
  }
  bool same_target(const ShapingAction& o) const {
    return rule == o.rule && kind == o.kind && site == o.site && source == o.source &&
           destination == o.destination && tenant == o.tenant && campaign == o.campaign;
  }
};

std::string shaping_key(std::string_view id);
std::string encode_action(const ShapingAction& a);
bool decode_action(std::string_view key, std::string_view value, ShapingAction& out);

// The cluster's row of an action (issue 16, cluster/replicated_table): the
// key is its target (rule, kind, site, source, destination, tenant,
// campaign as length-prefixed fields), so a rule firing on two nodes at
// once for one target writes one row (the newer wins); the value is its id
// followed by encode_action().
std::string target_key(const ShapingAction& a);
std::string encode_shared_action(const ShapingAction& a);
// false unless `value` decodes, names the target `key` is, has an id of
// 1..32 hex digits and ends after it starts.
bool decode_shared_action(std::string_view key, std::string_view value, ShapingAction& out);
// A removal's key: the target's fields into `out` (no id, no times).
bool decode_target_key(std::string_view key, ShapingAction& out);

class ShapingActions {
 public:
  static constexpr std::size_t kMaxActions = 1000;

  // `rule` matched a reply from `scope`: the new action, or nothing (one
  // for the same target is in force, the table is full, or the action
  // needs a tenant/campaign the reply's message does not have).
  std::optional<ShapingAction> fire(const ShapingRule& rule, const ReplyScope& scope,
                                    std::int64_t now_ms);
  // A (source, site) path suspended: until when (ms), else 0.
  std::int64_t blocked_until(std::string_view source, std::string_view site,
                             std::int64_t now_ms) const;
  // The tightest limits the Override actions in force put on a path.
  ShapingOverride override_for(std::string_view source, std::string_view site,
                               std::int64_t now_ms) const;

  std::vector<ShapingAction> list(std::int64_t now_ms) const;
  std::optional<ShapingAction> clear(std::string_view id);
  std::vector<ShapingAction> clear_all();
  // Removes and returns the actions whose time is up.
  std::vector<ShapingAction> expire(std::int64_t now_ms);
  // An action another node took (issue 16): in force here too, in place of
  // ours for the same target, returned in `replaced` (the one started later
  // wins; at the same time the larger id, so every node keeps the same
  // one). False: nothing changed (already here, ours is newer, it expired,
  // or the table is full: counted as refused).
  bool adopt(const ShapingAction& a, std::int64_t now_ms, std::vector<ShapingAction>& replaced);
  // Another node cleared `target`'s action at `ms`: ours for that target
  // ends, unless it started after `ms`. Returns what ended.
  std::vector<ShapingAction> clear_target(const ShapingAction& target, std::int64_t ms);
  // Actions read from the spool at start: those still in force are kept;
  // returns the ids of the others (the caller deletes their rows).
  std::vector<std::string> load(std::vector<ShapingAction> rows, std::int64_t now_ms);

  // Metrics: actions taken by (rule, kind) since start, and refused at the cap.
  std::map<std::pair<std::string, ShapingKind>, std::uint64_t> taken() const;
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  std::size_t active() const;

 private:
  std::string next_id(std::int64_t now_ms);
  void note_size() { any_.store(!actions_.empty(), std::memory_order_relaxed); }

  mutable std::mutex mu_;
  std::map<std::string, ShapingAction, std::less<>> actions_;  // by id
  std::map<std::pair<std::string, ShapingKind>, std::uint64_t> taken_;
  std::atomic<bool> any_{false};
  std::atomic<std::uint64_t> refused_{0};
  std::uint64_t counter_ = 0;
};

}  // namespace mailgate::egress
