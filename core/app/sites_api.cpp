// app/sites_api: GET /api/v1/sites (README "Bulk sending"): the sources,
// pools and sites the current policy declares, and every (source, site)
// path with its connections, messages, and today's warm-up count, cap and
// persisted count. Reads the engine's shared registry (a mutex), never a
// worker's state.
#include <nlohmann/json.hpp>

#include "app/admin_api.hpp"
#include "delivery/delivery_engine.hpp"
#include "http/http_server.hpp"
#include "queue/queue_shard.hpp"

namespace mailgate::app {
namespace {

using nlohmann::json;

json opt(const std::optional<std::uint64_t>& v) { return v ? json(*v) : json(nullptr); }

http::Response list_sites(const AdminContext& ctx) {
  const auto plan = ctx.engine->egress_plan();
  json sources = json::array(), pools = json::array(), sites = json::array(), paths = json::array();
  for (const auto& s : plan->sources()) {
    json warmup = nullptr;
    if (s.warmup)
      warmup = {{"start", s.warmup->start}, {"factor", s.warmup->factor}, {"days", s.warmup->days}};
    sources.push_back(
        {{"name", s.name}, {"address", s.address}, {"ehlo_name", s.ehlo_name}, {"warmup", warmup}});
  }
  for (const auto& p : plan->pools()) {
    json members = json::array();
    for (const auto& m : p.members) members.push_back({{"source", m.source}, {"weight", m.weight}});
    pools.push_back({{"name", p.name}, {"sources", members}});
  }
  for (const auto& s : plan->sites())
    sites.push_back({{"name", s.name},
                     {"mx_suffixes", s.mx_suffixes},
                     {"max_connections", s.max_connections},
                     {"max_message_rate", s.max_message_rate},
                     {"max_message_burst", s.max_message_burst}});
  for (const auto& p : ctx.engine->paths()) {
    paths.push_back({{"source", p.source},
                     {"site", p.site},
                     {"connections", p.connections},
                     {"messages", p.messages},
                     {"sent_today", p.today},
                     {"quota_today", opt(p.quota)},
                     {"quota_remaining", opt(p.remaining())},
                     {"cluster_today", opt(p.cluster_today)},
                     {"persisted_today", p.persisted}});
  }
  return http::json_response(200, {{"sources", sources},
                                   {"pools", pools},
                                   {"sites", sites},
                                   {"paths", paths},
                                   {"warmup_held", ctx.engine->warmup_holds()}});
}

}  // namespace

void register_sites_routes(http::HttpServer& server, AdminContext& ctx) {
  const AdminContext* c = &ctx;
  server.handle("GET", "/api/v1/sites", [c](const http::Request&) { return list_sites(*c); });
}

}  // namespace mailgate::app
