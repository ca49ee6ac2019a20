// app/tenants_api: see tenants_api.hpp.
#include "app/tenants_api.hpp"

#include <chrono>

#include "delivery/delivery_engine.hpp"
#include "eventlog/delivery_log.hpp"
#include "queue/queue_shard.hpp"

namespace mailgate::app {

namespace {

using nlohmann::json;
constexpr std::chrono::milliseconds kDeadline{2000};

std::optional<std::string> string_field(const json& body, const char* key, http::Response& error) {
  if (!body.contains(key) || body[key].is_null()) return std::string();
  if (!body[key].is_string()) {
    error = http::error_response(400, std::string("\"") + key + "\" must be a string");
    return std::nullopt;
  }
  return body[key].get<std::string>();
}

}  // namespace

std::optional<tenancy::Suspension> tenant_scope(const json& body, http::Response& error) {
  tenancy::Suspension s;
  auto tenant = string_field(body, "tenant", error);
  auto campaign = string_field(body, "campaign", error);
  auto destination = string_field(body, "destination", error);
  if (!tenant || !campaign || !destination) return std::nullopt;
  if (tenant->empty()) {
    error = http::error_response(400, "\"tenant\" is required");
    return std::nullopt;
  }
  s.tenant = *tenant;
  s.campaign = *campaign;
  s.destination = *destination;
  if (body.contains("until") && !body["until"].is_null()) {
    if (!body["until"].is_number()) {
      error = http::error_response(400, "\"until\" must be a number (Unix seconds)");
      return std::nullopt;
    }
    const double until = body["until"].get<double>();
    if (!(until > 0 && until < 1e11)) {
      error = http::error_response(400, "\"until\" must be Unix seconds after 1970");
      return std::nullopt;
    }
    s.until_ms = static_cast<std::int64_t>(until * 1000);
  }
  if (auto why = tenancy::check(s); !why.empty()) {
    error = http::error_response(400, why);
    return std::nullopt;
  }
  return s;
}

json tenant_suspensions_json(const std::vector<tenancy::Suspension>& rules) {
  json out = json::array();
  for (const auto& r : rules)
    out.push_back({{"tenant", r.tenant},
                   {"campaign", r.campaign.empty() ? json(nullptr) : json(r.campaign)},
                   {"destination", r.destination.empty() ? json(nullptr) : json(r.destination)},
                   {"since", eventlog::iso_time(r.since_ms)},
                   {"until", r.until_ms ? json(eventlog::iso_time(r.until_ms)) : json(nullptr)}});
  return out;
}

http::Response tenant_queue_action(const AdminContext& ctx, const http::Request& req,
                                   const std::string& action) {
  if (action != "suspend" && action != "resume" && action != "flush")
    return http::error_response(404,
                                "expected /api/v1/queue/suspend|resume|flush with a tenant, "
                                "or /api/v1/queue/DESTINATION/suspend|resume|flush");
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return http::error_response(400, "the body must be a JSON object");
  http::Response error;
  auto scope = tenant_scope(body, error);
  if (!scope) return error;
  if (action != "suspend" && scope->until_ms)
    return http::error_response(400, "\"until\" is for suspend only");
  json answer = {
      {"tenant", scope->tenant},
      {"campaign", scope->campaign.empty() ? json(nullptr) : json(scope->campaign)},
      {"destination", scope->destination.empty() ? json(nullptr) : json(scope->destination)},
      {"action", action}};
  if (action == "flush") {
    auto n = ctx.engine->flush_tenant(
        scope->destination, queue::TenancyFilter{scope->tenant, scope->campaign}, kDeadline);
    if (!n) return http::error_response(503, "the workers did not answer in time; try again");
    answer["flushed"] = *n;
    return http::json_response(200, answer);
  }
  scope->since_ms = queue::now_ms();
  std::string why;
  using R = delivery::DeliveryEngine::ActResult;
  const auto r = action == "suspend" ? ctx.engine->suspend_tenant(*scope, kDeadline, why)
                                     : ctx.engine->resume_tenant(*scope, kDeadline, why);
  switch (r) {
    case R::Busy:
      return http::error_response(503, "the workers did not answer in time; try again");
    case R::NoQueue:
      return http::error_response(
          404, "no suspension in force for tenant " + scope->tenant +
                   (scope->campaign.empty() ? "" : " campaign " + scope->campaign) +
                   (scope->destination.empty() ? "" : " at " + scope->destination));
    case R::NotSaved:
      return http::error_response(
          500, action + " not saved in the spool (" + why + "); nothing changed");
    case R::Done:
      break;
  }
  if (scope->until_ms) answer["until"] = eventlog::iso_time(scope->until_ms);
  return http::json_response(200, answer);
}

}  // namespace mailgate::app
