// app/cluster_api: GET /api/v1/cluster (DESIGN §8: nodes, heartbeats, Redis
// health) and the "cluster" object of /readyz. Reads the Cluster's status
// snapshot under its lock; never touches a worker.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/admin_api.hpp"
#include "cluster/cluster.hpp"
#include "cluster/connection_leases.hpp"
#include "cluster/leased_rates.hpp"
#include "cluster/shared_suppression.hpp"
#include "cluster/shared_warmup.hpp"
#include "eventlog/delivery_log.hpp"
#include "http/http_server.hpp"

namespace mailgate::app {

using nlohmann::json;

json cluster_readiness(const AdminContext& ctx) {
  const auto* c = ctx.cluster.load();
  if (!c) return nullptr;
  const bool up = c->redis_up();
  const auto* rates = ctx.rates.load();
  const bool local = !up || (rates && rates->fallback());
  const auto* warmup = ctx.warmup.load();
  const bool warmup_local = !up || (warmup && warmup->fallback());
  json out = {{"redis_up", up},
              {"degraded", !up},
              {"live_nodes", c->live_nodes()},
              {"rate_limits", local ? "local" : "shared"},
              {"warmup_quotas", warmup_local ? "local" : "shared"}};
  if (!up)
    out["reason"] = fmt::format(
        "Redis unreachable: rate limits are local (each at its rate / {0} live node(s)) and "
        "warm-up quotas are local (each at its quota / {0}) until it answers again",
        c->live_nodes());
  else if (local || warmup_local)
    out["reason"] = !warmup_local ? "Redis calls failing: rate limits are local for now"
                    : !local      ? "Redis calls failing: warm-up quotas are local for now"
                                  : "Redis calls failing: rate limits are local for now, warm-up "
                                    "quotas too";
  return out;
}

namespace {

json time_or_null(std::int64_t ms) { return ms ? json(eventlog::iso_time(ms)) : json(nullptr); }

// One replicated table's sync (the suppression list, suspensions, shaping).
json table_json(const cluster::TableSyncStats& st) {
  return {{"pushed", st.pushed},   {"applied", st.applied},       {"pending", st.pending},
          {"dropped", st.dropped}, {"full_syncs", st.full_syncs}, {"lag_seconds", st.lag_seconds},
          {"refused", st.refused}, {"redis_errors", st.errors},   {"version", st.version}};
}

http::Response cluster_status(const AdminContext& ctx) {
  const auto* c = ctx.cluster.load();
  if (!c)
    return http::error_response(
        404, "no cluster configured (configure{ cluster = { redis = \"redis://IP:PORT\" } })");
  const auto s = c->status();
  json nodes = json::array();
  for (const auto& n : s.nodes) {
    nodes.push_back({{"node", n.node},
                     {"last_seen", time_or_null(n.last_seen_ms)},
                     {"age_ms", s.last_heartbeat_ms ? s.last_heartbeat_ms - n.last_seen_ms : 0},
                     {"connections", n.connections},
                     {"live", n.live}});
  }
  json leases = nullptr;
  if (const auto* l = ctx.leases.load()) {
    const auto ls = l->stats();
    json keys = json::array();
    for (const auto& k : ls.keys)
      keys.push_back({{"key", k.key}, {"held", k.held}, {"spare", k.spare}, {"max", k.max}});
    leases = {
        {"shared", ls.shared},      {"held", ls.held},       {"acquired", ls.acquired},
        {"refused", ls.refused},    {"expired", ls.expired}, {"renew_failures", ls.renew_failures},
        {"local", ls.local_grants}, {"yielded", ls.yielded}, {"keys", std::move(keys)}};
  }
  json suppression = nullptr;
  if (const auto* ss = ctx.shared_suppression.load()) suppression = table_json(ss->stats());
  json suspensions = nullptr;
  if (const auto* t = ctx.shared_suspensions.load()) suspensions = table_json(t->stats());
  json shaping = nullptr;
  if (const auto* t = ctx.shared_shaping.load()) shaping = table_json(t->stats());
  return http::json_response(
      200, {{"node", s.node},
            {"leases", std::move(leases)},
            {"suppression", std::move(suppression)},
            {"suspensions", std::move(suspensions)},
            {"shaping", std::move(shaping)},
            {"live_nodes", s.live_nodes},
            {"nodes", std::move(nodes)},
            {"redis",
             {{"url", s.redis},
              {"up", s.redis_up},
              {"latency_ms", s.latency_ms},
              {"failures", s.failures},
              {"last_error", s.last_error.empty() ? json(nullptr) : json(s.last_error)}}}});
}

}  // namespace

void register_cluster_routes(http::HttpServer& server, AdminContext& ctx) {
  const AdminContext* c = &ctx;
  server.handle("GET", "/api/v1/cluster", [c](const http::Request&) { return cluster_status(*c); });
}

}  // namespace mailgate::app
