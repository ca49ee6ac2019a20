// app/http_inject: POST /api/v1/inject. The handler (on a CivetWeb thread)
// validates the JSON and builds the message, then runs the transaction on a
// worker (inject_transaction.cpp: envelope hooks, recipient admission, the
// submission stage) and waits for its result, which comes only after the
// spool sync. There is no SMTP listener behind it.
// Promises: the wait has a deadline (60 s, then 503); bad JSON, missing
// fields and unbuildable structured messages are 400s; no accepted recipient
// is 422 with the per-recipient replies; a temporary refusal is 503.
#include <asio/co_spawn.hpp>
#include <atomic>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <variant>

#include "app/admin_api.hpp"
#include "app/http_inject_template.hpp"
#include "app/inject_batch.hpp"
#include "app/inject_transaction.hpp"
#include "http/http_server.hpp"
#include "idempotency/idempotency_cache.hpp"
#include "mime/mime.hpp"
#include "net/worker_pool.hpp"
#include "settings/gateway_config.hpp"
#include "smtp/reply.hpp"

namespace mailgate::app {

namespace {

using nlohmann::json;

// "a\nb" and "a\r\nb" → "a\r\nb\r\n": RFC 5322 line ends, a final one added.
std::string canonical_lines(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 32 + 2);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    if (s[i] == '\n') {
      out += "\r\n";
    } else {
      out.push_back(s[i]);
    }
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

// The request body as an InjectRequest, or the 400 that refuses it.
std::variant<InjectRequest, http::Response> parse_request(const AdminContext& ctx,
                                                          const http::Request& req,
                                                          const nlohmann::ordered_json& body) {
  if (!body.contains("from") || !body["from"].is_string())
    return http::error_response(400, "\"from\" (the envelope sender, a string) is required");
  if (!body.contains("to") || !body["to"].is_array() || body["to"].empty())
    return http::error_response(400, "\"to\" must be a non-empty array of addresses");
  const auto from = body["from"].get<std::string>();
  std::vector<std::string> to;
  for (const auto& t : body["to"]) {
    if (!t.is_string()) return http::error_response(400, "\"to\" must hold strings");
    to.push_back(t.get<std::string>());
  }
  if (to.size() > 10000) return http::error_response(400, "too many recipients");
  if (from.find_first_of("\r\n<>") != std::string::npos)
    return http::error_response(400, "bad address: " + from);
  for (const auto& a : to) {
    if (a.find_first_of("\r\n<>") != std::string::npos || a.empty())
      return http::error_response(400, "bad address: " + a);
  }

  std::string content;
  if (body.contains("content")) {
    if (!body["content"].is_string())
      return http::error_response(400, "\"content\" must be a string (the RFC 5322 message)");
    content = canonical_lines(body["content"].get<std::string>());
  } else {
    mime::StructuredMessage m;
    m.from = body.value("from_header", from);
    m.to = to;
    try {
      m.subject = body.value("subject", std::string());
      m.text = body.value("text", std::string());
      m.html = body.value("html", std::string());
      if (body.contains("headers")) {
        if (!body["headers"].is_object())
          return http::error_response(400, "\"headers\" must be an object of strings");
        for (const auto& [k, v] : body["headers"].items()) {
          if (!v.is_string()) return http::error_response(400, "header values must be strings");
          m.headers.emplace_back(k, v.get<std::string>());
        }
      }
    } catch (const nlohmann::ordered_json::exception&) {
      return http::error_response(400, "subject, text and html must be strings");
    }
    if (m.text.empty() && m.html.empty())
      return http::error_response(400, "give \"content\", or \"text\" and/or \"html\"");
    mime::BuildOptions opts;
    opts.hostname = ctx.config->hostname;
    try {
      content = mime::build_message(m, opts);
    } catch (const mime::BuildError& e) {
      return http::error_response(400, e.what());
    }
  }

  InjectRequest out;
  out.client_ip = req.remote_ip;
  out.from = from;
  out.to = std::move(to);
  out.content = std::move(content);
  return out;
}

// The answer to an injection that ran (DESIGN §8).
http::Response to_response(const InjectResult& r) {
  json rejected = json::array();
  bool temporary = false;
  for (const auto& [address, reply] : r.rejected) {
    temporary = temporary || reply.transient();
    rejected.push_back({{"recipient", address}, {"code", reply.code}, {"text", reply_text(reply)}});
  }
  switch (r.kind) {
    case InjectResult::Kind::SenderRefused:
      return http::json_response(
          r.reply.code >= 500 ? 422 : 503,
          {{"error", "sender refused: " + std::to_string(r.reply.code) + " " + reply_text(r.reply)},
           {"id", nullptr},
           {"accepted", 0},
           {"rejected", std::move(rejected)}});
    case InjectResult::Kind::NoRecipient:
      return http::json_response(
          temporary ? 503 : 422,
          {{"id", nullptr}, {"accepted", 0}, {"rejected", std::move(rejected)}});
    case InjectResult::Kind::MessageRefused:
      return http::json_response(
          r.reply.transient() ? 503 : 422,
          {{"error", std::to_string(r.reply.code) + " " + reply_text(r.reply)},
           {"id", nullptr},
           {"accepted", 0},
           {"rejected", std::move(rejected)}});
    case InjectResult::Kind::Accepted:
      break;
  }
  return http::json_response(
      200, {{"id", r.id}, {"accepted", r.accepted}, {"rejected", std::move(rejected)}});
}

http::Response run_injection(const AdminContext& ctx, const http::Request& req) {
  // ordered_json: extra headers keep the order the client gave them in.
  const auto body = nlohmann::ordered_json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return http::error_response(400, "the body must be a JSON object");
  if (body.contains("recipients")) return inject_templated(ctx, req, body);
  auto parsed = parse_request(ctx, req, body);
  if (auto* refused = std::get_if<http::Response>(&parsed)) return std::move(*refused);
  auto request = std::make_shared<InjectRequest>(std::move(std::get<InjectRequest>(parsed)));
  // Any worker will do: round robin spreads injects like the kernel spreads connections.
  static std::atomic<unsigned> next{0};
  const unsigned w = next.fetch_add(1, std::memory_order_relaxed) % ctx.workers->size();
  const InjectWorker worker = inject_worker(ctx, w);
  auto done = std::make_shared<std::promise<InjectResult>>();
  auto future = done->get_future();
  asio::co_spawn(
      ctx.workers->context(w), [worker, request]() { return run_inject(worker, request); },
      [done](std::exception_ptr e, InjectResult r) {
        if (e) {
          done->set_exception(e);
        } else {
          done->set_value(std::move(r));
        }
      });
  // Hooks (hook_timeout each) and the spool sync come first; past this the
  // client gets 503 and the transaction may still complete.
  if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready)
    return http::error_response(503, "the gateway did not finish the injection in time");
  InjectResult r;
  try {
    r = future.get();
  } catch (const std::exception& e) {
    return http::error_response(503, std::string("injection failed: ") + e.what());
  }
  return to_response(r);
}

// With an Idempotency-Key: the first final answer (200 or 422: something
// was decided) is kept and replayed; any other answer (400, 413, 503) is not,
// so the request can be corrected or retried under the same key.
http::Response inject(const AdminContext& ctx, const http::Request& req) {
  const std::string* key = http::find_header(req, "Idempotency-Key");
  if (key == nullptr) return run_injection(ctx, req);
  if (ctx.idempotency == nullptr)
    return http::error_response(501, "Idempotency-Key: not supported by this server");
  if (auto bad = idempotency::IdempotencyCache::check_key(*key))
    return http::error_response(400, *bad);
  using Claim = idempotency::IdempotencyCache::Claim;
  auto begun = ctx.idempotency->begin(*key, req.body);
  switch (begun.claim) {
    case Claim::Replay:
      return http::text_response(begun.response.status, "application/json",
                                 std::move(begun.response.body));
    case Claim::Running:
      return http::error_response(
          409, "a request with this Idempotency-Key is still running; retry later");
    case Claim::Mismatch:
      return http::error_response(
          422, "this Idempotency-Key was used for a different request body in the last 24 h");
    case Claim::Run:
      break;
  }
  http::Response r;
  try {
    r = run_injection(ctx, req);
  } catch (...) {
    ctx.idempotency->abandon(*key);
    throw;
  }
  if (r.status == 200 || r.status == 422)
    ctx.idempotency->finish(*key, {r.status, r.body});
  else
    ctx.idempotency->abandon(*key);
  return r;
}

}  // namespace

void register_inject_route(http::HttpServer& server, AdminContext& ctx) {
  const AdminContext* c = &ctx;
  server.handle("POST", "/api/v1/inject", [c](const http::Request& r) { return inject(*c, r); });
}

}  // namespace mailgate::app
