// adminclient/api_client: see api_client.hpp.
#include "adminclient/api_client.hpp"

#include <utility>

namespace mailgate::adminclient {

ApiClient::ApiClient(Url base, std::string token, HttpOptions options)
    : base_(std::move(base)), token_(std::move(token)), options_(options) {
  for (unsigned char c : token_)
    if (c < 0x21 || c == 0x7f)
      throw std::invalid_argument("the API token has spaces or control characters");
}

Json ApiClient::call(std::string_view method, std::string_view target, const Json* body) const {
  HttpRequest req;
  req.method = std::string(method);
  req.target = std::string(target);
  req.headers.emplace_back("Accept", "application/json");
  req.headers.emplace_back("User-Agent", "mailgate-admin");
  if (!token_.empty()) req.headers.emplace_back("Authorization", "Bearer " + token_);
  if (body) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body->dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  HttpResponse resp = http_request(base_, req, options_);
  if (resp.status >= 300 && resp.status < 400) {
    throw ApiError(resp.status,
                   "redirected to " + resp.header("Location").value_or("?") + " (not followed)");
  }
  if (resp.status < 200 || resp.status >= 300) throw ApiError(resp.status, error_text(resp));
  Json j = Json::parse(resp.body, nullptr, false);
  if (j.is_discarded()) throw ApiError(resp.status, "the response is not JSON");
  return j;
}

std::string error_text(const HttpResponse& response) {
  Json j = Json::parse(response.body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (auto it = j.find("error"); it != j.end() && it->is_string()) return it->get<std::string>();
  }
  std::string_view body = response.body;
  while (!body.empty() && (body.front() == '\n' || body.front() == '\r' || body.front() == ' '))
    body.remove_prefix(1);
  body = body.substr(0, body.find_first_of("\r\n"));
  if (!body.empty()) return std::string(body.substr(0, 200));
  return response.reason.empty() ? "(no error text)" : response.reason;
}

}  // namespace mailgate::adminclient
