// adminclient/api_client: JSON calls to the mailgate admin API (/api/v1,
// contract in DESIGN §8). Promises: every request carries `Accept:
// application/json` and, when a token is set, `Authorization: Bearer TOKEN`;
// a 2xx answer comes back as parsed JSON (key order kept, so --json prints
// what the server sent); anything else throws: HttpError when the API cannot
// be reached or does not speak HTTP, ApiError (status + the server's
// {"error": ...} text) for a 3xx/4xx/5xx answer or a 2xx body that is not JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "adminclient/http_client.hpp"
#include "adminclient/url.hpp"

namespace mailgate::adminclient {

using Json = nlohmann::ordered_json;

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& text) : std::runtime_error(text), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

class ApiClient {
 public:
  // Throws std::invalid_argument when the token has control characters.
  ApiClient(Url base, std::string token, HttpOptions options = {});

  // `target` is the path and query under the base URL, already encoded.
  Json call(std::string_view method, std::string_view target, const Json* body = nullptr) const;

  const Url& url() const { return base_; }

 private:
  Url base_;
  std::string token_;
  HttpOptions options_;
};

// What to show for a non-2xx response: its JSON "error" string, else the
// first line of its body (at most 200 bytes), else its reason phrase.
std::string error_text(const HttpResponse& response);

}  // namespace mailgate::adminclient
