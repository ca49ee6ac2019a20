// app/shaping_api: traffic shaping automation in the admin API (DESIGN §8,
// README "Traffic shaping automation"): GET /api/v1/shaping lists the
// actions in force, DELETE /api/v1/shaping/ID ends one before its time,
// DELETE /api/v1/shaping ends them all (what `mailgate shaping clear --all`
// calls). Reads the engine's process-wide table (a mutex), never a
// worker's state.
// Promises: `until` and `since` are Unix milliseconds; an unknown id is a
// 404, a failed spool write a 500 that changed nothing, a worker that did
// not answer (resuming a tenant suspension) a 503.
#include <nlohmann/json.hpp>

#include "app/admin_api.hpp"
#include "delivery/delivery_engine.hpp"
#include "http/http_server.hpp"

namespace mailgate::app {
namespace {

using nlohmann::json;
constexpr std::chrono::milliseconds kDeadline{2000};

json or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

http::Response list_actions(const AdminContext& ctx) {
  json actions = json::array();
  for (const auto& a : ctx.engine->shaping_actions()) {
    json set = nullptr;
    if (a.kind == egress::ShapingKind::Override) {
      set = json::object();
      if (a.set.max_message_rate > 0) set["max_message_rate"] = a.set.max_message_rate;
      if (a.set.max_connections) set["max_connections"] = a.set.max_connections;
    }
    actions.push_back({{"id", a.id},
                       {"rule", a.rule},
                       {"site", a.site},
                       {"source", a.source},
                       {"tenant", or_null(a.tenant)},
                       {"campaign", or_null(a.campaign)},
                       {"destination", or_null(a.destination)},
                       {"action", std::string(egress::to_string(a.kind))},
                       {"set", set},
                       {"since", a.since_ms},
                       {"until", a.until_ms}});
  }
  return http::json_response(200, {{"actions", actions}});
}

http::Response clear_actions(const AdminContext& ctx, const std::string& id) {
  std::string error;
  std::size_t cleared = 0;
  using R = delivery::DeliveryEngine::ActResult;
  switch (ctx.engine->clear_shaping(id, kDeadline, error, cleared)) {
    case R::Busy:
      return http::error_response(503, "a worker did not answer in time; try again");
    case R::NoQueue:
      if (id.empty()) break;
      return http::error_response(404, "no shaping action " + id + " in force");
    case R::NotSaved:
      return http::error_response(500, "not saved in the spool (" + error + "); nothing changed");
    case R::Done:
      break;
  }
  return http::json_response(200, {{"cleared", cleared}});
}

}  // namespace

void register_shaping_routes(http::HttpServer& server, AdminContext& ctx) {
  const AdminContext* c = &ctx;
  server.handle("GET", "/api/v1/shaping", [c](const http::Request&) { return list_actions(*c); });
  server.handle("DELETE", "/api/v1/shaping",
                [c](const http::Request&) { return clear_actions(*c, ""); });
  server.handle("DELETE", "/api/v1/shaping/", [c](const http::Request& req) {
    if (req.tail.empty() || req.tail.find('/') != std::string::npos)
      return http::error_response(404, "expected /api/v1/shaping/ID");
    return clear_actions(*c, req.tail);
  });
}

}  // namespace mailgate::app
