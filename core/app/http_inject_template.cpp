// app/http_inject_template: see http_inject_template.hpp.
#include "app/http_inject_template.hpp"

#include <memory>
#include <variant>

#include "app/admin_api.hpp"
#include "app/inject_batch.hpp"
#include "settings/gateway_config.hpp"

namespace mailgate::app {

namespace {

using ojson = nlohmann::ordered_json;

const ojson* member(const ojson& o, const char* name) {
  const auto it = o.find(name);
  return it == o.end() ? nullptr : &*it;
}

// A string member, absent = "", anything else a 400 naming it.
std::variant<std::string, http::Response> optional_string(const ojson& body, const char* name) {
  const auto* v = member(body, name);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string())
    return http::error_response(400, std::string("\"") + name + "\" must be a string");
  return v->get<std::string>();
}

std::variant<std::shared_ptr<TemplatedInject>, http::Response> parse(const AdminContext& ctx,
                                                                     const http::Request& req,
                                                                     const ojson& body) {
  if (body.contains("to") || body.contains("content"))
    return http::error_response(
        400, "\"recipients\" (templated) cannot be combined with \"to\" or \"content\"");
  const auto* from = member(body, "from");
  if (from == nullptr || !from->is_string())
    return http::error_response(400, "\"from\" (the envelope sender, a string) is required");
  const std::string sender = from->get<std::string>();
  if (sender.find_first_of("\r\n<>") != std::string::npos)
    return http::error_response(400, "bad address: " + sender);
  std::string from_header;

  templating::TemplateSources sources;
  for (auto [name, into] :
       {std::pair{"from_header", &from_header}, std::pair{"subject", &sources.subject},
        std::pair{"text", &sources.text}, std::pair{"html", &sources.html}}) {
    auto v = optional_string(body, name);
    if (auto* refused = std::get_if<http::Response>(&v)) return std::move(*refused);
    *into = std::move(std::get<std::string>(v));
  }
  if (from_header.empty()) from_header = sender;
  if (sources.text.empty() && sources.html.empty())
    return http::error_response(400, "give \"text\" and/or \"html\" (templates)");
  if (const auto* h = member(body, "headers"); h != nullptr && !h->is_null()) {
    if (!h->is_object())
      return http::error_response(400, "\"headers\" must be an object of strings");
    for (const auto& [k, v] : h->items()) {
      if (!v.is_string()) return http::error_response(400, "header values must be strings");
      sources.headers.emplace_back(k, v.get<std::string>());
    }
  }

  const auto* recipients = member(body, "recipients");
  if (!recipients->is_array() || recipients->empty())
    return http::error_response(400, "\"recipients\" must be a non-empty array");
  const auto max = ctx.config->http.inject_max_recipients;
  if (recipients->size() > max)
    return http::error_response(400, "too many recipients: " + std::to_string(recipients->size()) +
                                         " (http.inject_max_recipients is " + std::to_string(max) +
                                         ")");

  const templating::TemplateLimits limits;
  // The templates first: a template that does not parse refuses the whole
  // request, whatever the recipients.
  auto parsed = templating::TemplateBatch::parse(sources, limits);
  if (auto* e = std::get_if<templating::TemplateError>(&parsed))
    return http::error_response(400, "template " + e->what());
  // By reference: a copy of a JSON value recurses once per nesting level
  // (a deep one would overflow the HTTP thread's stack before the depth check).
  static const ojson kNoVars;
  const auto* request_vars = member(body, "vars");
  auto vars = templating::Vars::from_json(request_vars ? *request_vars : kNoVars, "vars", limits);
  if (auto* e = std::get_if<templating::TemplateError>(&vars))
    return http::error_response(400, e->what());

  std::vector<BatchRecipient> batch;
  batch.reserve(recipients->size());
  for (std::size_t i = 0; i < recipients->size(); ++i) {
    const auto& r = (*recipients)[i];
    const std::string field = "recipients[" + std::to_string(i) + "]";
    if (!r.is_object())
      return http::error_response(400, field + " must be an object {\"email\", \"vars\"}");
    const auto* email = member(r, "email");
    if (email == nullptr || !email->is_string())
      return http::error_response(400, field + ".email (a string) is required");
    const auto* rcpt_vars = member(r, "vars");
    auto rv =
        templating::Vars::from_json(rcpt_vars ? *rcpt_vars : kNoVars, field + ".vars", limits);
    if (auto* e = std::get_if<templating::TemplateError>(&rv))
      return http::error_response(400, e->what());
    batch.push_back({email->get<std::string>(), std::move(std::get<templating::Vars>(rv))});
  }
  return std::make_shared<TemplatedInject>(
      TemplatedInject{req.remote_ip, sender, std::move(from_header), ctx.config->hostname,
                      std::move(std::get<templating::TemplateBatch>(parsed)),
                      std::move(std::get<templating::Vars>(vars)), std::move(batch)});
}

}  // namespace

http::Response inject_templated(const AdminContext& ctx, const http::Request& req,
                                const ojson& body) {
  auto parsed = parse(ctx, req, body);
  if (auto* refused = std::get_if<http::Response>(&parsed)) return std::move(*refused);
  const auto job = std::get<std::shared_ptr<TemplatedInject>>(std::move(parsed));
  const BatchResult r = run_templated_inject(ctx, job);
  nlohmann::json results = nlohmann::json::array();
  bool all_temporary = true;
  for (std::size_t i = 0; i < r.outcomes.size(); ++i) {
    const auto& o = r.outcomes[i];
    const auto& email = job->recipients[i].email;
    if (!o.id.empty()) {
      results.push_back({{"email", email}, {"id", o.id}});
    } else {
      all_temporary = all_temporary && o.reply.transient();
      results.push_back({{"email", email}, {"code", o.reply.code}, {"text", reply_text(o.reply)}});
    }
  }
  const int status = r.accepted > 0 ? 200 : (all_temporary ? 503 : 422);
  return http::json_response(status, {{"accepted", r.accepted}, {"results", std::move(results)}});
}

}  // namespace mailgate::app
