// http/http_server: the admin HTTP server (DESIGN §8) on CivetWeb: a small
// router of exact paths and path prefixes to handlers, JSON replies, and
// bearer-token auth. Handlers run on CivetWeb's threads; they must never
// touch worker state directly (the admin routes post to workers and wait
// with a deadline).
// Promises: the route and the token are checked BEFORE the request body is
// read (an unauthenticated client cannot make the server buffer anything,
// and such a refusal closes the connection); request bodies are read up to
// `max_body` bytes (larger: 413, never buffered) within `body_timeout` in
// all (slower: 408 and close, so a slow upload cannot hold a thread for
// ever: a read waits at most io_timeout, so a body is cut off at most
// io_timeout after its deadline); a handler's exception is a 500 JSON error, never a crash; routes
// marked `needs_token` answer 401 unless the configured token is sent as
// "Authorization: Bearer TOKEN" (compared in constant time); unknown paths
// are 404 and known paths with another method 405, both as JSON; the
// answer to HEAD has headers only.
// HTTPS (options.tls set): every connection is TLS with that context (never
// plain HTTP on the port); when TLS cannot be set up, start() fails and says
// why. CivetWeb loads OpenSSL itself by the names libssl.so/libcrypto.so:
// core/http/civetweb_openssl/ says how the executable provides them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

struct mg_context;

namespace asio::ssl {
class context;
}

namespace mailgate::http {

struct Request {
  std::string method;
  std::string path;  // URL-decoded, without the query
  std::map<std::string, std::string> query;
  std::string body;
  std::string remote_ip;
  // For prefix routes: the rest of the path after the prefix.
  std::string tail;
  // The header fields as sent (name, value), e.g. Idempotency-Key.
  std::vector<std::pair<std::string, std::string>> headers;
};

// The value of the first header field named `name` (case-insensitive), or null.
const std::string* find_header(const Request& req, std::string_view name);

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // 405: the methods the path does take (the Allow header)
};

Response json_response(int status, const nlohmann::json& j);
Response error_response(int status, std::string_view message);
Response text_response(int status, std::string content_type, std::string body);

using Handler = std::function<Response(const Request&)>;

struct ServerOptions {
  std::string listen = "127.0.0.1:8025";  // "ip:port" / "[ipv6]:port"; port 0 = ephemeral
  unsigned threads = 4;
  std::size_t max_body = 32u << 20;
  std::string token;                  // empty: no auth
  unsigned body_timeout_ms = 30'000;  // the whole body, however it trickles in
  unsigned io_timeout_ms = 10'000;    // one read or write (CivetWeb's request_timeout_ms)
  // HTTPS with this server context (kept until the server is destroyed);
  // null: plain HTTP.
  std::shared_ptr<asio::ssl::context> tls;
};

class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before start(). `path` is exact, or a prefix when it ends with '/'.
  void handle(std::string method, std::string path, Handler handler, bool needs_token = true);
  // Returns "" or an error (e.g. the address is in use).
  std::string start();
  std::uint16_t port() const { return port_; }
  void stop();

  struct Route;
  // Internal (public for the C callback): finds the route for the request
  // and checks its token. Returns the route, or null with `refusal` set.
  const Route* route(Request& req, const std::string& authorization, Response& refusal) const;
  const ServerOptions& options() const { return options_; }

 private:
  ServerOptions options_;
  std::vector<std::unique_ptr<Route>> routes_;
  ::mg_context* ctx_ = nullptr;
  std::uint16_t port_ = 0;
};

// "%2F" and '+' in queries. (Encoding, for clients: text::percent_encode.)
std::string url_decode(std::string_view s);

}  // namespace mailgate::http
