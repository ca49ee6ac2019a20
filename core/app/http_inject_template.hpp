// app/http_inject_template: the templated form of POST /api/v1/inject
// (DESIGN §8: a body with "recipients"): validates the whole request
// (shape, vars, recipient count, every template parses) before anything is
// queued, runs it (app/inject_batch), and answers
// 200 {"accepted", "results": [{"email", "id"} | {"email", "code", "text"}]}
// once every accepted message is synced; 422 (503 when every refusal was
// temporary) when none was accepted.
// Promises: a request that does not validate is a 400 naming the field
// (and, for a template, the line and column) and queues nothing.
#pragma once

#include <nlohmann/json.hpp>

#include "http/http_server.hpp"

namespace mailgate::app {

struct AdminContext;

http::Response inject_templated(const AdminContext& ctx, const http::Request& req,
                                const nlohmann::ordered_json& body);

}  // namespace mailgate::app
