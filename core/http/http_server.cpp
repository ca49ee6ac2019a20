// http/http_server: see http_server.hpp.
#include "http/http_server.hpp"

#include <civetweb.h>
#include <openssl/crypto.h>

#include <asio/ssl/context.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "text/ascii.hpp"

namespace mailgate::http {

struct HttpServer::Route {
  std::string method, path;
  bool prefix;
  bool needs_token;
  Handler handler;
};

Response json_response(int status, const nlohmann::json& j) {
  return text_response(status, "application/json",
                       j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

Response text_response(int status, std::string content_type, std::string body) {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

Response error_response(int status, std::string_view message) {
  return json_response(status, nlohmann::json{{"error", std::string(message)}});
}

namespace {

using text::hex_value;

std::map<std::string, std::string> parse_query(const char* q) {
  std::map<std::string, std::string> out;
  if (q == nullptr) return out;
  std::string_view s(q);
  while (!s.empty()) {
    auto amp = s.find('&');
    auto part = s.substr(0, amp);
    auto eq = part.find('=');
    out[url_decode(part.substr(0, eq))] =
        eq == std::string_view::npos ? "" : url_decode(part.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    s.remove_prefix(amp + 1);
  }
  return out;
}

// `close`: the request's body was not read to its end (413, 408), so the
// connection cannot carry another request.
void send(mg_connection* conn, const Request& req, const Response& r, bool close = false) {
  mg_response_header_start(conn, r.status);
  mg_response_header_add(conn, "Content-Type", r.content_type.c_str(), -1);
  const auto length = std::to_string(r.body.size());
  mg_response_header_add(conn, "Content-Length", length.c_str(), -1);
  if (!r.allow.empty()) mg_response_header_add(conn, "Allow", r.allow.c_str(), -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
  if (close) mg_response_header_add(conn, "Connection", "close", -1);
  mg_response_header_send(conn);
  if (req.method != "HEAD") mg_write(conn, r.body.data(), r.body.size());  // RFC 9110 §9.3.2
}

// After a refusal that leaves the request body unread: CivetWeb would read
// and discard the rest on this thread, for as long as a slow client likes
// (its timeout is per read), and its API cannot mark a server connection
// for closing. So: take what already arrived (at most 64 KiB: a small body
// sent with the request, so that closing does not reset the connection
// before the client reads the answer), then shut down the read side of the
// client's socket (found by its addresses among our descriptors): the
// discard sees EOF at once and CivetWeb closes the connection.
void stop_reading(mg_connection* conn, const mg_request_info* ri) {
  // (A bigger announced body is not waited for: mg_read blocks until it has
  // what it asked for or io_timeout passes.)
  if (ri->content_length > 0 && ri->content_length <= 64 * 1024) {
    char buf[4096];
    while (mg_read(conn, buf, sizeof buf) > 0) {
    }
  }
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (const dirent* e = ::readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2 || fd == ::dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    char host[INET6_ADDRSTRLEN] = {};
    int port = 0;
    if (peer.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&peer);
      ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (peer.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&peer);
      ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    } else {
      continue;
    }
    if (port == ri->remote_port && std::strcmp(host, ri->remote_addr) == 0) {
      ::shutdown(fd, SHUT_RD);
      break;
    }
  }
  ::closedir(dir);
}

bool has_body(const mg_request_info* ri) {
  if (ri->content_length > 0) return true;
  if (ri->content_length == 0) return false;
  for (int i = 0; i < ri->num_headers; ++i)  // no Content-Length: chunked?
    if (text::iequals(ri->http_headers[i].name, "Transfer-Encoding")) return true;
  return false;
}

int on_request(mg_connection* conn, void* cbdata) {
  const auto* server = static_cast<const HttpServer*>(cbdata);
  const mg_request_info* ri = mg_get_request_info(conn);
  Request req;
  req.method = ri->request_method ? ri->request_method : "";
  req.path = ri->local_uri_raw ? ri->local_uri_raw : (ri->local_uri ? ri->local_uri : "");
  req.query = parse_query(ri->query_string);
  req.remote_ip = ri->remote_addr;
  for (int i = 0; i < ri->num_headers; ++i)
    req.headers.emplace_back(ri->http_headers[i].name, ri->http_headers[i].value);
  const char* auth = mg_get_header(conn, "Authorization");
  // Route and token first: nothing of the body is read for a refused request.
  Response r;
  const auto* route = server->route(req, auth ? auth : "", r);
  if (route == nullptr) {
    const bool unread = has_body(ri);
    send(conn, req, r, unread);
    if (unread) stop_reading(conn, ri);
    return r.status;
  }
  const auto& opts = server->options();
  if (ri->content_length > 0 &&
      static_cast<unsigned long long>(ri->content_length) > opts.max_body) {
    // (Authenticated: CivetWeb may read and discard the rest as usual.)
    send(conn, req, error_response(413, "request body too large"), true);
    return 413;
  }
  // Read the body (also without Content-Length, e.g. chunked) up to the limit,
  // within one deadline for all of it.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.body_timeout_ms);
  char buf[16384];
  for (;;) {
    const int n = mg_read(conn, buf, sizeof buf);
    if (n <= 0) break;
    if (req.body.size() + static_cast<std::size_t>(n) > opts.max_body) {
      send(conn, req, error_response(413, "request body too large"), true);
      return 413;
    }
    req.body.append(buf, static_cast<std::size_t>(n));
    if (std::chrono::steady_clock::now() > deadline) {
      send(conn, req, error_response(408, "request body not received in time"), true);
      stop_reading(conn, ri);
      return 408;
    }
  }
  try {
    r = route->handler(req);
  } catch (const std::exception& e) {
    r = error_response(500, std::string("internal error: ") + e.what());
  } catch (...) {
    r = error_response(500, "internal error");
  }
  send(conn, req, r);
  return r.status;
}

bool token_ok(const std::string& expected, const std::string& header) {
  static constexpr std::string_view kBearer = "Bearer ";
  if (header.size() != kBearer.size() + expected.size() || !header.starts_with(kBearer))
    return false;
  return CRYPTO_memcmp(header.data() + kBearer.size(), expected.data(), expected.size()) == 0;
}

std::once_flag g_init;

}  // namespace

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

const std::string* find_header(const Request& req, std::string_view name) {
  for (const auto& [n, v] : req.headers)
    if (text::iequals(n, name)) return &v;
  return nullptr;
}

HttpServer::HttpServer(ServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::handle(std::string method, std::string path, Handler handler, bool needs_token) {
  const bool prefix = !path.empty() && path.back() == '/';
  routes_.push_back(std::make_unique<Route>(
      Route{std::move(method), std::move(path), prefix, needs_token, std::move(handler)}));
}

const HttpServer::Route* HttpServer::route(Request& req, const std::string& authorization,
                                           Response& refusal) const {
  std::string allowed;  // methods of the routes matching the path
  for (const auto& r : routes_) {
    const bool match = r->prefix ? req.path.size() > r->path.size() && req.path.starts_with(r->path)
                                 : req.path == r->path;
    if (!match) continue;
    if (r->method != req.method) {
      allowed += (allowed.empty() ? "" : ", ") + r->method;
      continue;
    }
    if (r->needs_token && !options_.token.empty() && !token_ok(options_.token, authorization)) {
      refusal = error_response(401, "missing or bad bearer token");
      return nullptr;
    }
    req.tail = r->prefix ? req.path.substr(r->path.size()) : std::string();
    return r.get();
  }
  if (allowed.empty()) {
    refusal = error_response(404, "no such endpoint: " + req.path);
    return nullptr;
  }
  refusal = error_response(405, "method not allowed");
  refusal.allow = allowed;
  return nullptr;
}

std::string HttpServer::start() {
  std::call_once(g_init, [] { mg_init_library(0); });
  // A trailing 's' makes CivetWeb's port TLS-only.
  const std::string ports = options_.listen + (options_.tls ? "s" : "");
  const std::string threads = std::to_string(options_.threads);
  const std::string io_timeout = std::to_string(options_.io_timeout_ms);
  const char* opts[] = {"listening_ports",
                        ports.c_str(),
                        "num_threads",
                        threads.c_str(),
                        "request_timeout_ms",
                        io_timeout.c_str(),
                        "enable_keep_alive",
                        "yes",
                        "keep_alive_timeout_ms",
                        "5000",
                        nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  // mg_start logs why it fails (in several lines) on this thread; what
  // CivetWeb's own threads log later is dropped.
  static thread_local std::string* start_log = nullptr;
  std::string log;
  start_log = &log;
  callbacks.log_message = [](const mg_connection*, const char* message) {
    if (start_log != nullptr) *start_log += (start_log->empty() ? "" : "; ") + std::string(message);
    return 1;
  };
  if (options_.tls) {
    // Our context, as it is: CivetWeb neither changes nor frees it (it asks
    // again when it stops, and 1 means "keep your hands off").
    callbacks.external_ssl_ctx = [](void** ssl_ctx, void* user) {
      *ssl_ctx = static_cast<HttpServer*>(user)->options_.tls->native_handle();
      return 1;
    };
  }
  ctx_ = mg_start(&callbacks, this, opts);
  start_log = nullptr;
  if (ctx_ == nullptr) {
    std::string why = log;
    if (options_.tls &&
        (why.find("libssl") != std::string::npos || why.find("libcrypto") != std::string::npos)) {
      why +=
          " (CivetWeb loads OpenSSL as libssl.so and libcrypto.so: the build puts them in "
          "civetweb-openssl/ beside the mailgate binary, which must stay there)";
    }
    return std::string("cannot listen for ") + (options_.tls ? "HTTPS" : "HTTP") + " on " +
           options_.listen + (why.empty() ? std::string() : ": " + why);
  }
  mg_set_request_handler(ctx_, "/", on_request, this);
  mg_server_port ports_bound[4];
  const int n = mg_get_server_ports(ctx_, 4, ports_bound);
  if (n > 0) port_ = static_cast<std::uint16_t>(ports_bound[0].port);
  return {};
}

void HttpServer::stop() {
  if (ctx_ != nullptr) {
    mg_stop(ctx_);
    ctx_ = nullptr;
  }
}

}  // namespace mailgate::http
