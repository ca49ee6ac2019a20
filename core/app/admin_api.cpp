// app/admin_api: see admin_api.hpp. JSON shapes are those of README's
// "HTTP API" section.
#include "app/admin_api.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/tenants_api.hpp"
#include "delivery/delivery_engine.hpp"
#include "eventlog/delivery_log.hpp"
#include "http/http_server.hpp"
#include "policy/runtime.hpp"
#include "queue/queue_shard.hpp"
#include "server/smtp_server.hpp"
#include "settings/gateway_config.hpp"
#include "smtp/address.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "spool/recovery.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "suppression/suppression_list.hpp"
#include "tls/reloading_context.hpp"

namespace mailgate::app {

namespace {

using nlohmann::json;
constexpr std::chrono::milliseconds kWorkerDeadline{2000};

http::Response busy() {
  return http::error_response(503, "the workers did not answer in time; try again");
}

std::size_t limit_param(const http::Request& r) {
  auto it = r.query.find("limit");
  if (it == r.query.end()) return 100;
  char* end = nullptr;
  const auto n = std::strtoul(it->second.c_str(), &end, 10);
  if (*end != '\0' || n == 0) return 100;
  return std::min<std::size_t>(n, 1000);
}

std::string query(const http::Request& r, const char* key) {
  auto it = r.query.find(key);
  return it == r.query.end() ? std::string() : it->second;
}

// A body that must be a JSON object; nullopt + response when it is not.
std::optional<json> json_body(const http::Request& r, http::Response& error) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    error = http::error_response(400, "the body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

json recipients_json(const spool::Envelope& env, const spool::DestRecord& rec) {
  json out = json::array();
  for (const auto& r : rec.recipients) {
    if (r.index >= env.recipients.size()) continue;
    out.push_back({{"address", env.recipients[r.index].address},
                   {"state", std::string(spool::to_string(r.state))},
                   {"last_reply", r.last_reply}});
  }
  return out;
}

// ---------------------------------------------------------------------------

http::Response queue_summary(const AdminContext& ctx) {
  auto summary = ctx.engine->queue_summary(kWorkerDeadline);
  if (!summary) return busy();
  std::sort(summary->begin(), summary->end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  const auto now = queue::now_ms();
  json dests = json::array();
  std::size_t scheduled = 0, ready = 0, in_flight = 0;
  for (const auto& d : *summary) {
    if (d.ready + d.scheduled + d.in_flight == 0 && d.active == 0 && !d.suspended) continue;
    dests.push_back({{"name", d.name},
                     {"source", d.source},  // egress source ("" = the default)
                     {"site", d.site},      // provider site ("" = none)
                     {"scheduled", d.scheduled},
                     {"ready", d.ready},
                     {"in_flight", d.in_flight},
                     {"connections", d.active},
                     {"suspended", d.suspended},
                     {"held", d.held},
                     {"oldest_age_seconds",
                      d.oldest_ms ? static_cast<double>(now - d.oldest_ms) / 1000.0 : 0.0}});
    scheduled += d.scheduled;
    ready += d.ready;
    in_flight += d.in_flight;
  }
  const auto count = dests.size();
  auto holds = ctx.engine->tenant_suspensions(kWorkerDeadline);
  if (!holds) return busy();
  return http::json_response(200, {{"destinations", std::move(dests)},
                                   {"tenant_suspensions", tenant_suspensions_json(*holds)},
                                   {"totals",
                                    {{"scheduled", scheduled},
                                     {"ready", ready},
                                     {"in_flight", in_flight},
                                     {"destinations", count}}}});
}

http::Response list_messages(const AdminContext& ctx, const http::Request& req) {
  const auto destination = query(req, "destination");
  const auto cursor = query(req, "cursor");
  const auto limit = limit_param(req);
  auto items = ctx.engine->queued_items(destination, kWorkerDeadline);
  if (!items) return busy();
  // Stable order for paging: by id, then destination; the cursor is the last key shown.
  auto key = [](const queue::ItemView& v) { return v.id.hex() + "|" + v.destination; };
  std::sort(items->begin(), items->end(),
            [&](const auto& a, const auto& b) { return key(a) < key(b); });
  json out = json::array();
  std::string last;
  bool more = false;
  const auto tenant = query(req, "tenant");
  for (const auto& v : *items) {
    const auto k = key(v);
    if (!cursor.empty() && k <= cursor) continue;
    if (!tenant.empty() && (!v.tenancy || v.tenancy->tenant != tenant)) continue;
    if (out.size() == limit) {
      more = true;
      break;
    }
    spool::Envelope env;
    spool::DestRecord rec;
    if (!ctx.store->read_envelope(v.id, env) || !ctx.store->read_dest(v.id, v.destination, rec))
      continue;  // delivered meanwhile
    out.push_back({{"id", v.id.hex()},
                   {"destination", v.destination},
                   {"sender", env.sender},
                   {"size", env.size},
                   {"received", eventlog::iso_time(env.received_ms)},
                   {"attempts", rec.attempts},
                   {"next_attempt", eventlog::iso_time(v.next_ms)},
                   {"tenant", v.tenancy ? json(v.tenancy->tenant) : json(nullptr)},
                   {"campaign", v.tenancy && !v.tenancy->campaign.empty()
                                    ? json(v.tenancy->campaign)
                                    : json(nullptr)},
                   {"suspended", v.held},
                   {"recipients", recipients_json(env, rec)}});
    last = k;
  }
  return http::json_response(
      200, {{"messages", std::move(out)}, {"next_cursor", more ? json(last) : json(nullptr)}});
}

http::Response show_message(const AdminContext& ctx, const std::string& hex) {
  auto id = spool::MessageId::from_hex(hex);
  if (!id) return http::error_response(400, "a message id is 32 hex digits");
  spool::Envelope env;
  if (!ctx.store->read_envelope(*id, env)) return http::error_response(404, "no message " + hex);
  const auto records = ctx.store->read_dests(*id);
  // The spool's next attempt is the one recorded with the last attempt of
  // this message; the queue knows the real one (a destination-level
  // deferral, a flush, a suspension change it without a spool write).
  std::vector<std::string> names;
  for (const auto& [name, rec] : records) names.push_back(name);
  auto states = ctx.engine->item_states(*id, names, kWorkerDeadline);
  if (!states) return busy();
  json dests = json::array();
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& [name, rec] = records[i];
    const bool pending = std::any_of(rec.recipients.begin(), rec.recipients.end(),
                                     [](auto& r) { return r.state == spool::RcptState::Pending; });
    json state = "done";
    json next = nullptr;
    bool suspended = false;
    if (pending) {
      const auto& st = (*states)[i];
      using Where = queue::ItemState::Where;
      if (!st) {  // not queued (yet): recovery has not reached it, or it is being submitted
        state = "waiting";
        next = eventlog::iso_time(rec.next_attempt_ms);
      } else {
        state = st->where == Where::Ready       ? "ready"
                : st->where == Where::Scheduled ? "scheduled"
                                                : "in_flight";
        if (st->where != Where::InFlight) next = eventlog::iso_time(st->next_ms);
        suspended = st->suspended;
      }
    }
    dests.push_back({{"name", name},
                     {"attempts", rec.attempts},
                     {"state", std::move(state)},
                     {"next_attempt", std::move(next)},
                     {"suspended", suspended},
                     {"recipients", recipients_json(env, rec)}});
  }
  json meta = json::object();
  for (const auto& [k, v] : env.meta) meta[k] = v;
  return http::json_response(200, {{"id", id->hex()},
                                   {"sender", env.sender},
                                   {"size", env.size},
                                   {"received", eventlog::iso_time(env.received_ms)},
                                   {"client_ip", env.client_ip},
                                   {"meta", std::move(meta)},
                                   {"destinations", std::move(dests)}});
}

http::Response queue_action(const AdminContext& ctx, const http::Request& req) {
  // tail: "<destination>/<action>"
  const auto slash = req.tail.rfind('/');
  // No destination in the path: a tenant action with a JSON scope.
  if (slash == std::string::npos) return tenant_queue_action(ctx, req, req.tail);
  if (slash == 0)
    return http::error_response(404, "expected /api/v1/queue/DESTINATION/suspend|resume|flush");
  const auto dest = req.tail.substr(0, slash);
  const auto action = req.tail.substr(slash + 1);
  delivery::DeliveryEngine::Action a;
  if (action == "suspend") {
    a = delivery::DeliveryEngine::Action::Suspend;
  } else if (action == "resume") {
    a = delivery::DeliveryEngine::Action::Resume;
  } else if (action == "flush") {
    a = delivery::DeliveryEngine::Action::Flush;
  } else {
    return http::error_response(404, "unknown action '" + action + "'");
  }
  std::string error;
  using R = delivery::DeliveryEngine::ActResult;
  switch (ctx.engine->act(a, dest, kWorkerDeadline, error)) {
    case R::Busy:
      return busy();
    case R::NoQueue:
      return http::error_response(404, "no queue for destination " + dest);
    case R::NotSaved:
      return http::error_response(
          500, action + " not saved in the spool (" + error + "); nothing changed");
    case R::Done:
      break;
  }
  return http::json_response(200, {{"destination", dest}, {"action", action}});
}

http::Response bounce(const AdminContext& ctx, const http::Request& req) {
  http::Response error;
  auto body = json_body(req, error);
  if (!body) return error;
  const auto reason = body->value("reason", std::string());
  if (body->contains("tenant")) {
    if (body->contains("id")) return http::error_response(400, "give \"id\" or \"tenant\", not both");
    auto scope = tenant_scope(*body, error);
    if (!scope) return error;
    auto n = ctx.engine->bounce(scope->destination, nullptr, reason, kWorkerDeadline,
                                queue::TenancyFilter{scope->tenant, scope->campaign});
    if (!n) return busy();
    if (*n == 0)
      return http::error_response(
          404, "nothing queued matches (in-flight messages finish their attempt)");
    return http::json_response(200, {{"bounced", *n}});
  }
  if (body->contains("id") == body->contains("destination"))
    return http::error_response(400, "give exactly one of \"id\" and \"destination\"");
  std::optional<std::size_t> n;
  if (body->contains("id")) {
    if (!(*body)["id"].is_string()) return http::error_response(400, "\"id\" must be a string");
    auto id = spool::MessageId::from_hex((*body)["id"].get<std::string>());
    if (!id) return http::error_response(400, "a message id is 32 hex digits");
    n = ctx.engine->bounce("", &*id, reason, kWorkerDeadline);
  } else {
    if (!(*body)["destination"].is_string())
      return http::error_response(400, "\"destination\" must be a string");
    n = ctx.engine->bounce((*body)["destination"].get<std::string>(), nullptr, reason,
                           kWorkerDeadline);
  }
  if (!n) return busy();
  if (*n == 0)
    return http::error_response(404,
                                "nothing queued matches (in-flight messages finish their attempt)");
  return http::json_response(200, {{"bounced", *n}});
}

http::Response suppression_list(const AdminContext& ctx, const http::Request& req) {
  const auto limit = limit_param(req);
  auto entries = ctx.suppressions->list(query(req, "cursor"), limit + 1);
  const bool more = entries.size() > limit;
  if (more) entries.pop_back();
  json out = json::array();
  for (const auto& e : entries)
    out.push_back(
        {{"address", e.address}, {"reason", e.reason}, {"added", eventlog::iso_time(e.added_ms)}});
  return http::json_response(
      200, {{"entries", std::move(out)},
            {"next_cursor", more ? json(entries.back().address) : json(nullptr)}});
}

http::Response suppression_add(const AdminContext& ctx, const http::Request& req) {
  http::Response error;
  auto body = json_body(req, error);
  if (!body) return error;
  if (!body->contains("address") || !(*body)["address"].is_string())
    return http::error_response(400, "\"address\" (a string) is required");
  const auto address = (*body)["address"].get<std::string>();
  auto parsed = smtp::parse_mailbox(address, true);
  if (std::holds_alternative<smtp::Reply>(parsed))
    return http::error_response(400, "not a mailbox address: " + address);
  ctx.suppressions->add(address, body->value("reason", std::string("added by the administrator")));
  return http::json_response(201, {{"address", suppression::SuppressionList::normalize(address)}});
}

http::Response suppression_remove(const AdminContext& ctx, const http::Request& req) {
  if (!ctx.suppressions->remove(req.tail))
    return http::error_response(404, "not on the suppression list: " + req.tail);
  return http::json_response(
      200, {{"address", suppression::SuppressionList::normalize(req.tail)}, {"removed", true}});
}

}  // namespace

std::string reload_certificates(const AdminContext& ctx) {
  std::string error = ctx.smtp->reload_certificates();
  if (ctx.http_tls) {
    if (auto e = ctx.http_tls->reload(); !e.empty())
      error += (error.empty() ? "" : "; ") + std::string("http.tls: ") + e;
  }
  return error;
}

void register_admin_routes(http::HttpServer& server, AdminContext& ctx) {
  const AdminContext* c = &ctx;
  server.handle(
      "GET", "/healthz",
      [](const http::Request&) { return http::text_response(200, "text/plain", "ok\n"); }, false);
  server.handle(
      "GET", "/readyz",
      [c](const http::Request&) {
        const auto& w = c->writer->stats();
        std::string reason;
        if (c->writer->disk_low()) reason = "free disk space is below spool.min_free_space";
        if (!w.last_write_ok.load()) reason = "the last spool write failed";
        json recovery = nullptr;
        if (const auto* r = c->recovery.load()) {
          recovery = {{"done", r->done()},
                      {"records", r->records()},
                      {"estimated_total", r->estimated_total()},
                      {"messages", r->messages()},
                      {"seconds", r->seconds()}};
        }
        // Unreadable records set aside by recovery: reported, not a reason to be unready.
        const json quarantine = {{"messages", c->store->quarantined_messages()}};
        if (!reason.empty())
          return http::json_response(503, {{"ready", false},
                                           {"reason", reason},
                                           {"recovery", recovery},
                                           {"quarantine", quarantine},
                                           {"cluster", cluster_readiness(*c)}});
        // Mail is accepted while recovery runs: ready, with its progress.
        // Redis down is "degraded", not unready: mail flows on local limits.
        return http::json_response(200, {{"ready", true},
                                         {"recovery", recovery},
                                         {"quarantine", quarantine},
                                         {"cluster", cluster_readiness(*c)}});
      },
      false);
  server.handle(
      "GET", "/metrics",
      [c](const http::Request&) {
        return http::text_response(200, "text/plain; version=0.0.4; charset=utf-8",
                                   render_metrics(*c));
      },
      false);
  server.handle("GET", "/api/v1/queue", [c](const http::Request&) { return queue_summary(*c); });
  server.handle("POST", "/api/v1/queue/",
                [c](const http::Request& r) { return queue_action(*c, r); });
  server.handle("GET", "/api/v1/messages",
                [c](const http::Request& r) { return list_messages(*c, r); });
  server.handle("GET", "/api/v1/messages/",
                [c](const http::Request& r) { return show_message(*c, r.tail); });
  server.handle("POST", "/api/v1/bounce", [c](const http::Request& r) { return bounce(*c, r); });
  server.handle("GET", "/api/v1/suppression",
                [c](const http::Request& r) { return suppression_list(*c, r); });
  server.handle("POST", "/api/v1/suppression",
                [c](const http::Request& r) { return suppression_add(*c, r); });
  server.handle("DELETE", "/api/v1/suppression/",
                [c](const http::Request& r) { return suppression_remove(*c, r); });
  server.handle("POST", "/api/v1/reload", [c](const http::Request&) {
    auto error = c->policy->reload();
    if (!error.empty()) return http::error_response(422, error);
    // The policy is reloaded even when a certificate is not (422 says so).
    error = reload_certificates(*c);
    if (!error.empty()) return http::error_response(422, "TLS certificates not reloaded: " + error);
    return http::json_response(200, {{"version", c->policy->version()}});
  });
}

}  // namespace mailgate::app
