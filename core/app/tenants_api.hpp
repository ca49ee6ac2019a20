// app/tenants_api: the tenant and campaign parts of the admin API (issue 12
// item 4, DESIGN §8): POST /api/v1/queue/suspend|resume|flush with
// {"tenant", "campaign"?, "destination"?, "until"?}, the tenant scope of
// POST /api/v1/bounce, and the rules in force for GET /api/v1/queue.
// Promises: every bad input is a 400 with a JSON error naming the field; a
// resume of a rule that is not in force is a 404; a suspension is answered
// only after it is synced in the spool.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "app/admin_api.hpp"
#include "http/http_server.hpp"
#include "tenancy/tenancy.hpp"

namespace mailgate::app {

// POST /api/v1/queue/<action> (no destination in the path): `action` is
// suspend, resume or flush.
http::Response tenant_queue_action(const AdminContext& ctx, const http::Request& req,
                                   const std::string& action);
// The scope {"tenant", "campaign"?, "destination"?} of a JSON body; nullopt
// and `error` (a 400) when a field is missing, of the wrong type or invalid.
std::optional<tenancy::Suspension> tenant_scope(const nlohmann::json& body, http::Response& error);
// The rules in force as JSON (GET /api/v1/queue "tenant_suspensions").
nlohmann::json tenant_suspensions_json(const std::vector<tenancy::Suspension>& rules);

}  // namespace mailgate::app
