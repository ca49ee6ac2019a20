// app/webhooks_api: the webhook routes of the admin API (DESIGN §8):
// GET /api/v1/webhooks (targets, backlog, dead letters, last error — never
// the secret), GET /api/v1/webhooks/NAME/dead_letters?limit=N and
// POST /api/v1/webhooks/NAME/replay. Spool reads and the replay's synced
// write run on the HTTP thread, never on a worker.
#include <nlohmann/json.hpp>

#include "app/admin_api.hpp"
#include "eventlog/delivery_log.hpp"
#include "http/http_server.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::app {
namespace {

using nlohmann::json;

json time_or_null(std::int64_t ms) { return ms ? json(eventlog::iso_time(ms)) : json(nullptr); }

http::Response list_targets(const webhooks::Webhooks* w) {
  json targets = json::array();
  if (w) {
    for (const auto& t : w->status()) {
      targets.push_back({{"name", t.name},
                         {"url", t.url},
                         {"events", t.events},
                         {"backlog_events", t.backlog_events},
                         {"backlog_bytes", t.backlog_bytes},
                         {"max_backlog_bytes", t.max_backlog_bytes},
                         {"dead_letters", t.dead_letters},
                         {"queued", t.queued},
                         {"sent", t.sent},
                         {"failed", t.failed},
                         {"dead", t.dead},
                         {"consecutive_failures", t.consecutive_failures},
                         {"in_flight", t.in_flight},
                         {"last_error", t.last_error.empty() ? json(nullptr) : json(t.last_error)},
                         {"last_error_time", time_or_null(t.last_error_ms)},
                         {"last_success_time", time_or_null(t.last_success_ms)}});
    }
  }
  return http::json_response(200, {{"targets", std::move(targets)}});
}

// "NAME/ACTION" → (NAME, ACTION); NAME never contains '/'.
std::pair<std::string, std::string> split_tail(const std::string& tail) {
  const auto slash = tail.find('/');
  if (slash == std::string::npos) return {tail, ""};
  return {tail.substr(0, slash), tail.substr(slash + 1)};
}

std::size_t limit_of(const http::Request& r) {
  auto it = r.query.find("limit");
  if (it == r.query.end()) return 100;
  char* end = nullptr;
  const auto n = std::strtoul(it->second.c_str(), &end, 10);
  return (*end != '\0' || n == 0) ? 100 : std::min<std::size_t>(n, 1000);
}

http::Response dead_letters(webhooks::Webhooks* w, const http::Request& r) {
  const auto [name, action] = split_tail(r.tail);
  if (action != "dead_letters") return http::error_response(404, "not found");
  auto list = w ? w->dead_letters(name, limit_of(r)) : std::nullopt;
  if (!list) return http::error_response(404, "no webhook target named \"" + name + "\"");
  json out = json::array();
  for (const auto& d : *list) {
    json event = json::parse(d.json, nullptr, false);
    out.push_back({{"seq", d.seq},
                   {"queued", eventlog::iso_time(d.queued_ms)},
                   {"reason", d.reason},
                   {"event", event.is_discarded() ? json(d.json) : event}});
  }
  return http::json_response(200, {{"target", name}, {"dead_letters", std::move(out)}});
}

http::Response replay(webhooks::Webhooks* w, const http::Request& r) {
  const auto [name, action] = split_tail(r.tail);
  if (action != "replay") return http::error_response(404, "not found");
  std::string error = "no webhook target named \"" + name + "\"";
  auto n = w ? w->replay(name, error) : std::nullopt;
  if (!n) return http::error_response(error.starts_with("no webhook") ? 404 : 500, error);
  return http::json_response(200, {{"target", name}, {"replayed", *n}});
}

}  // namespace

void register_webhook_routes(http::HttpServer& server, AdminContext& ctx) {
  webhooks::Webhooks* w = ctx.webhooks;
  server.handle("GET", "/api/v1/webhooks", [w](const http::Request&) { return list_targets(w); });
  server.handle("GET", "/api/v1/webhooks/",
                [w](const http::Request& r) { return dead_letters(w, r); });
  server.handle("POST", "/api/v1/webhooks/", [w](const http::Request& r) { return replay(w, r); });
}

}  // namespace mailgate::app
