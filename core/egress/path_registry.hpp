// egress/path_registry: the process-wide state of (source, site) paths, the
// unit providers count in (DESIGN §6b): a site's connections and message
// rate per source, and each source's warm-up quota per site and UTC day.
// Destinations of one site live on different owner workers, so this is one
// shared object behind a mutex (a hash lookup and a few integers per call;
// bench/egress_bench.cpp measures it).
// Promises: try_connect() never admits more than the site's max_connections
// per source; acquire_message() admits at most burst + t × rate messages
// per source over any t; take_quota() never hands out more than the
// source's warm-up quota for the (source, site, UTC day) — refund_quota()
// returns one not used. Counts survive restarts through load() and
// take_dirty() (the caller writes them to the spool: at most what changed
// since the last write is lost on a crash). Thread-safe. With a RateBackend
// (a cluster) a site's rate per source is shared by every node; with a
// WarmupBackend so are warm-up quotas and each source's day 1 (the local
// counts stay, for the spool and for the node's share while the backend is
// degraded); connection counts stay per node.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "egress/egress_plan.hpp"
#include "egress/warmup_backend.hpp"
#include "ratelimit/rate_limit.hpp"

namespace mailgate::egress {

// The site name warm-up counts and metrics use for destinations no site
// covers (so label sets and persisted keys stay bounded).
inline constexpr std::string_view kOtherSite = "other";

// A spool row of warm-up state (the default family, key prefix "warmup/").
struct WarmupRow {
  std::string key;
  std::string value;  // decimal
};
inline constexpr std::string_view kWarmupPrefix = "warmup/";

// One path as the admin API and /metrics show it.
struct PathView {
  std::string source, site;
  unsigned connections = 0;
  std::uint64_t messages = 0;          // handed to connections since start
  std::uint64_t today = 0;             // warm-up count of this UTC day
  std::optional<std::uint64_t> quota;  // today's cap (none: no warm-up, or it is over)
  std::uint64_t persisted = 0;         // the count last written to the spool
  // With a WarmupBackend: today's count over every node, as last seen.
  std::optional<std::uint64_t> cluster_today;
  // Today's quota left (none: no cap), by the larger of the two counts.
  std::optional<std::uint64_t> remaining() const {
    if (!quota) return std::nullopt;
    const auto used = std::max(today, cluster_today.value_or(0));
    return *quota > used ? *quota - used : 0;
  }
};

class PathRegistry {
 public:
  // Site rates made from now on are shared through `rates` (null: local).
  // Before any acquire_message (not synchronised with it).
  void set_rate_backend(ratelimit::RateBackend* rates) { rates_ = rates; }
  // Warm-up quotas shared through `warmup` (null: per node). Before any
  // take_quota (not synchronised with it).
  void set_warmup_backend(WarmupBackend* warmup) { warmup_ = warmup; }

  // A connection of `source` to site `site_name` may open: counted until
  // disconnect(); false (nothing counted) when `max` (0: no cap) are open.
  bool try_connect(const std::string& source, const std::string& site_name, unsigned max);
  void disconnect(const std::string& source, const std::string& site_name);
  // 0: one message admitted under the site's rate; else microseconds to wait.
  std::int64_t acquire_message(const std::string& source, const Site* site, std::int64_t now_us);

  // Warm-up: one message of `src` to `site_name` today (UTC, from now_ms, or
  // the backend's clock). Granted (counted), Spent (today's quota is used:
  // until_ms is the next 00:00 UTC) or, with a backend, Wait (its share is
  // being fetched: ask again after wait_us). Nothing is counted unless
  // Granted. Always Granted for a source without warm-up or past its
  // schedule (counted for the metrics). `ready`: the caller's messages ready
  // for the path, this one included (sizes the backend's leases).
  WarmupTake take_quota(const Source& src, const std::string& site_name, std::int64_t now_ms,
                        std::uint64_t ready = 1);
  void refund_quota(const Source& src, const std::string& site_name, std::int64_t now_ms);
  // Today's quota left (none: unlimited).
  std::optional<std::uint64_t> remaining(const Source& src, const std::string& site_name,
                                         std::int64_t now_ms);

  // Rows read from the spool at start (before any take_quota).
  void load(const std::vector<WarmupRow>& rows, std::int64_t now_ms);
  // What changed since the last call: rows to put, keys to delete (older
  // days). The caller writes them; mark_persisted() after the write.
  struct Dirty {
    std::vector<WarmupRow> put;
    std::vector<std::string> remove;
    bool empty() const { return put.empty() && remove.empty(); }
  };
  Dirty take_dirty();
  void mark_persisted(const std::vector<WarmupRow>& rows);

  // Every path known, with the newest plan's warm-up caps.
  std::vector<PathView> view(std::int64_t now_ms);
  // The newest plan a worker used (for views from other threads).
  void set_plan(std::shared_ptr<const Plan> plan);
  std::shared_ptr<const Plan> plan();

 private:
  struct Path {
    unsigned connections = 0;
    ratelimit::RateLimit rate;
    double rate_per_s = 0;
    std::uint32_t burst = 1;
    std::uint64_t messages = 0;
    std::int64_t day = 0;  // the UTC day `today` counts
    std::uint64_t today = 0;
    std::uint64_t persisted = 0;
    bool dirty = false;
  };
  using Key = std::pair<std::string, std::string>;  // source, site
  Path& path(const std::string& source, const std::string& site);
  std::int64_t warmup_day(const std::string& source, std::int64_t today);
  static void roll(Path& p, std::int64_t today);
  std::int64_t shared_now(std::int64_t now_ms) const;

  ratelimit::RateBackend* rates_ = nullptr;
  WarmupBackend* warmup_ = nullptr;
  std::mutex mu_;
  std::shared_ptr<const Plan> plan_ = std::make_shared<Plan>();
  std::map<Key, Path, std::less<>> paths_;
  std::map<std::string, std::int64_t, std::less<>> first_day_;  // source → its day 1
  std::vector<std::string> dirty_first_day_;
  std::vector<std::string> stale_keys_;
};

std::string warmup_count_key(std::string_view source, std::string_view site, std::int64_t day);
std::string warmup_start_key(std::string_view source);

}  // namespace mailgate::egress
