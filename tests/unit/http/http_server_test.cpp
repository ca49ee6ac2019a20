// Tests of http/http_server on a real CivetWeb listener (127.0.0.1, port 0)
// with a raw-socket client: routes dispatch by method and path (exact and
// prefix routes, the prefix's tail as the path parameter, URL-decoded path
// and query), 404 for an unknown path and 405 with Allow for a known path
// with another method, JSON error bodies, a handler's exception as a 500,
// the request body limit (413, with and without Content-Length), the bearer
// token on token routes (401 without it or with a wrong one) while open
// routes like /metrics need none, and are checked before any of the body is
// read; a body that trickles in past its deadline is a 408; keep-alive; the
// answer to HEAD has no body; and url_decode.
#include "http/http_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"

namespace mailgate::http {
namespace {

using nlohmann::json;
using testing::Connection;
using testing::format_request;
using testing::Reply;
using testing::request;

constexpr const char* kToken = "s3cret-T0ken";

json echo(const Request& r) {
  return json{{"method", r.method}, {"path", r.path}, {"tail", r.tail},
              {"query", r.query},   {"body", r.body}, {"remote_ip", r.remote_ip}};
}

// A server with routes like the admin API's; every handled request is recorded.
class Server {
 public:
  explicit Server(std::string token = "", std::size_t max_body = 32u << 20,
                  unsigned body_timeout_ms = 30'000) {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.max_body = max_body;
    o.body_timeout_ms = body_timeout_ms;
    if (body_timeout_ms < 30'000) o.io_timeout_ms = 1000;
    o.token = std::move(token);
    server_ = std::make_unique<HttpServer>(o);
    auto record = [this](const char* route) {
      return [this, route](const Request& r) {
        std::lock_guard lock(mu_);
        calls_.push_back(route);
        auto j = echo(r);
        j["route"] = route;
        return json_response(200, j);
      };
    };
    server_->handle(
        "GET", "/metrics",
        [this](const Request&) {
          std::lock_guard lock(mu_);
          calls_.push_back("metrics");
          return text_response(200, "text/plain; version=0.0.4", "mailgate_up 1\n");
        },
        false);
    server_->handle("GET", "/healthz", record("healthz"), false);
    server_->handle("GET", "/api/v1/queue", record("queue"));
    server_->handle("POST", "/api/v1/queue/", record("queue_action"));
    server_->handle("GET", "/api/v1/messages/", record("message"));
    server_->handle("GET", "/api/v1/suppression", record("suppression_list"));
    server_->handle("POST", "/api/v1/suppression", record("suppression_add"));
    server_->handle("DELETE", "/api/v1/suppression/", record("suppression_remove"));
    server_->handle("POST", "/api/v1/echo", record("echo"));
    server_->handle("GET", "/api/v1/boom",
                    [](const Request&) -> Response { throw std::runtime_error("boom"); });
    server_->handle("GET", "/api/v1/created", [](const Request&) {
      return json_response(201, {{"ok", true}});
    });
    const auto err = server_->start();
    if (!err.empty()) throw std::runtime_error(err);
  }

  std::uint16_t port() const { return server_->port(); }
  HttpServer& get() { return *server_; }
  std::vector<std::string> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::unique_ptr<HttpServer> server_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
};

json body_json(const Reply& r) {
  json j;
  EXPECT_NO_THROW(j = json::parse(r.body)) << r.body;
  return j;
}

void expect_json_error(const Reply& r, int status, const std::string& message = "") {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  const auto j = body_json(r);
  ASSERT_TRUE(j.is_object()) << r.body;
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_TRUE(j["error"].is_string());
  if (!message.empty()) {
    EXPECT_EQ(j["error"], message);
  }
}

// CivetWeb's mg_stop() takes up to two seconds (its listener polls in 2 s
// steps), so the tests share one server per configuration.
template <int kKind>
class SharedServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (kKind == 0) server_ = new Server();
    if (kKind == 1) server_ = new Server(kToken);
    if (kKind == 2) server_ = new Server("", 1024);
    if (kKind == 3) server_ = new Server(kToken, 32u << 20, 500);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "the shared server did not start"; }
  static std::uint16_t port() { return server_->port(); }
  static std::size_t calls() { return server_->calls().size(); }
  static Server* server_;
};
template <int kKind>
Server* SharedServer<kKind>::server_ = nullptr;

using HttpRouting = SharedServer<0>;     // no token, default body limit
using HttpAuth = SharedServer<1>;        // token kToken
using HttpBodyLimit = SharedServer<2>;   // max_body 1024
using HttpSlowClient = SharedServer<3>;  // token kToken, body_timeout 500 ms, io_timeout 1 s

TEST_F(HttpRouting, StartsOnAnEphemeralPort) { EXPECT_NE(port(), 0); }

TEST_F(HttpRouting, DispatchesByMethodAndExactPath) {
  auto r = request(port(), "GET", "/api/v1/queue");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto j = body_json(r);
  EXPECT_EQ(j["route"], "queue");
  EXPECT_EQ(j["method"], "GET");
  EXPECT_EQ(j["path"], "/api/v1/queue");
  EXPECT_EQ(j["tail"], "");

  // Same path, two methods, two handlers.
  EXPECT_EQ(body_json(request(port(), "GET", "/api/v1/suppression"))["route"], "suppression_list");
  EXPECT_EQ(body_json(request(port(), "POST", "/api/v1/suppression", "{}"))["route"],
            "suppression_add");

  r = request(port(), "GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4");
  EXPECT_EQ(r.body, "mailgate_up 1\n");

  r = request(port(), "GET", "/api/v1/created");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(body_json(r), (json{{"ok", true}}));
}

TEST_F(HttpRouting, ExactRouteDoesNotMatchLongerPaths) {
  const auto before = calls();
  expect_json_error(request(port(), "GET", "/api/v1/queue/extra"), 405);  // prefix: POST only
  expect_json_error(request(port(), "GET", "/healthz/x"), 404);
  expect_json_error(request(port(), "GET", "/healthzz"), 404);
  expect_json_error(request(port(), "GET", "/api/v1/queu"), 404);
  EXPECT_EQ(calls(), before);  // no handler ran
}

TEST_F(HttpRouting, UnknownPathIs404Json) {
  const auto before = calls();
  expect_json_error(request(port(), "GET", "/nope"), 404, "no such endpoint: /nope");
  expect_json_error(request(port(), "POST", "/api/v2/queue", "{}"), 404);
  expect_json_error(request(port(), "GET", "/"), 404);
  EXPECT_EQ(calls(), before);  // no handler ran
}

TEST_F(HttpRouting, KnownPathWithAnotherMethodIs405WithAllow) {
  const auto before = calls();
  auto r = request(port(), "DELETE", "/api/v1/queue");
  expect_json_error(r, 405, "method not allowed");
  EXPECT_EQ(r.header("allow"), "GET");

  r = request(port(), "PUT", "/api/v1/suppression", "{}");
  expect_json_error(r, 405);
  EXPECT_EQ(r.header("allow"), "GET, POST");

  r = request(port(), "GET", "/api/v1/suppression/user@example.com");
  expect_json_error(r, 405);
  EXPECT_EQ(r.header("allow"), "DELETE");

  r = request(port(), "POST", "/metrics", "");
  expect_json_error(r, 405);
  EXPECT_EQ(r.header("allow"), "GET");
  // Other answers carry no Allow header.
  EXPECT_EQ(request(port(), "GET", "/metrics").header("allow"), "");
  EXPECT_EQ(request(port(), "GET", "/nope").header("allow"), "");
  EXPECT_EQ(calls(), before + 1);  // only the one GET /metrics
}

TEST_F(HttpRouting, PrefixRoutePassesTheRestOfThePathAsTail) {
  auto j = body_json(request(port(), "POST", "/api/v1/queue/example.com/suspend", ""));
  EXPECT_EQ(j["route"], "queue_action");
  EXPECT_EQ(j["tail"], "example.com/suspend");
  EXPECT_EQ(j["path"], "/api/v1/queue/example.com/suspend");

  j = body_json(request(port(), "GET", "/api/v1/messages/0191f0c2a4e1000000000100000002a1"));
  EXPECT_EQ(j["route"], "message");
  EXPECT_EQ(j["tail"], "0191f0c2a4e1000000000100000002a1");

  // The prefix alone has no parameter: it is not a match.
  expect_json_error(request(port(), "GET", "/api/v1/messages/"), 404);
}

TEST_F(HttpRouting, PathAndTailAreUrlDecoded) {
  auto j = body_json(request(port(), "DELETE", "/api/v1/suppression/user%40example.com"));
  EXPECT_EQ(j["route"], "suppression_remove");
  EXPECT_EQ(j["tail"], "user@example.com");

  // A smarthost destination as the admin client percent-encodes it.
  j = body_json(request(port(), "POST", "/api/v1/queue/%5B10.0.0.1%5D%3A2525/flush", ""));
  EXPECT_EQ(j["tail"], "[10.0.0.1]:2525/flush");
}

TEST_F(HttpRouting, QueryIsParsedAndDecoded) {
  auto j = body_json(request(
      port(), "POST", "/api/v1/echo?destination=example.com&limit=10&q=a%20b+c&flag&e=", "x"));
  EXPECT_EQ(j["path"], "/api/v1/echo");  // without the query
  EXPECT_EQ(j["query"], (json{{"destination", "example.com"},
                              {"limit", "10"},
                              {"q", "a b c"},
                              {"flag", ""},
                              {"e", ""}}));
  EXPECT_EQ(j["remote_ip"], "127.0.0.1");
}

TEST_F(HttpRouting, HandlerGetsTheRequestBody) {
  const std::string body = R"({"from":"a@example.org","to":["b@example.com"]})";
  auto j = body_json(
      request(port(), "POST", "/api/v1/echo", body, {{"Content-Type", "application/json"}}));
  EXPECT_EQ(j["body"], body);

  // A binary body of a few hundred KiB (several reads) arrives intact.
  std::string big;
  for (int i = 0; i < 300'000; ++i) big.push_back(static_cast<char>('a' + i % 26));
  j = body_json(request(port(), "POST", "/api/v1/echo", big));
  EXPECT_EQ(j["body"].get<std::string>().size(), big.size());
  EXPECT_EQ(j["body"], big);
}

TEST_F(HttpRouting, ChunkedBodyIsRead) {
  Connection c(port());
  c.send(
      "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto r = c.read_reply();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_json(r)["body"], "hello world");
}

TEST_F(HttpRouting, HandlerExceptionIs500Json) {
  expect_json_error(request(port(), "GET", "/api/v1/boom"), 500, "internal error: boom");
  // The server lives on.
  EXPECT_EQ(request(port(), "GET", "/healthz").status, 200);
}

TEST_F(HttpBodyLimit, BodyAtTheLimitIsAccepted) {
  const std::string body(1024, 'x');
  auto r = request(port(), "POST", "/api/v1/echo", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_json(r)["body"], body);
}

TEST_F(HttpBodyLimit, BodyOverTheLimitIs413AndNeverReachesTheHandler) {
  const auto before = calls();
  auto r = request(port(), "POST", "/api/v1/echo", std::string(1025, 'x'));
  expect_json_error(r, 413, "request body too large");

  // A huge declared length is refused from the head alone: the client sends
  // no body at all and still gets its answer.
  Connection c(port());
  c.send(
      "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n"
      "Connection: close\r\n\r\n");
  expect_json_error(c.read_reply(), 413);
  EXPECT_EQ(calls(), before);  // no handler ran
}

TEST_F(HttpBodyLimit, UnreadBodyOfA413IsNeverParsedAsAnotherRequest) {
  const auto before = calls();
  // The refused body is made of complete requests (request smuggling): the
  // server must skip it (or close the connection), never run one of them.
  const std::string inner = "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  std::string body;
  while (body.size() < 100'000) body += inner;
  Connection c(port());
  try {
    c.send(
        "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  } catch (const std::runtime_error&) {
    // The server may close before it has read everything.
  }
  expect_json_error(c.read_reply(), 413);
  std::optional<Reply> next;
  try {
    next = c.read_reply();
  } catch (const std::runtime_error&) {
    // Closed after the 413: fine too.
  }
  if (next) {
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(body_json(*next)["route"], "healthz");
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_EQ(c.unread(), "");
    EXPECT_EQ(calls(), before + 1);  // the GET, nothing from the body
  } else {
    EXPECT_EQ(calls(), before);
  }
}

TEST_F(HttpBodyLimit, ChunkedBodyOverTheLimitIs413) {
  const auto before = calls();
  Connection c(port());
  std::string req =
      "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  for (int i = 0; i < 4; ++i) req += "200\r\n" + std::string(512, 'y') + "\r\n";  // 2 KiB
  req += "0\r\n\r\n";
  c.send(req);
  expect_json_error(c.read_reply(), 413);
  EXPECT_EQ(calls(), before);  // no handler ran
}

TEST_F(HttpAuth, TokenRoutesNeedTheBearerToken) {
  const auto before = calls();
  const std::string good = std::string("Bearer ") + kToken;
  auto r = request(port(), "GET", "/api/v1/queue");
  expect_json_error(r, 401, "missing or bad bearer token");
  for (const std::string& bad :
       {std::string("Bearer wrong"), std::string("Bearer ") + kToken + "x",
        std::string("Bearer ") + std::string(kToken).substr(1), std::string(kToken),
        std::string("Basic ") + kToken, std::string("Bearer"), std::string("Bearer  ") + kToken,
        std::string("")}) {
    SCOPED_TRACE("Authorization: " + bad);
    expect_json_error(request(port(), "GET", "/api/v1/queue", "", {{"Authorization", bad}}), 401);
    expect_json_error(
        request(port(), "POST", "/api/v1/queue/example.com/flush", "", {{"Authorization", bad}}),
        401);
  }
  EXPECT_EQ(calls(), before);  // no handler ran

  r = request(port(), "GET", "/api/v1/queue", "", {{"Authorization", good}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(body_json(r)["route"], "queue");
  r = request(port(), "POST", "/api/v1/queue/example.com/flush", "", {{"Authorization", good}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(calls(), before + 2);
}

TEST_F(HttpAuth, OpenRoutesNeedNoTokenEvenWhenOneIsSet) {
  EXPECT_EQ(request(port(), "GET", "/metrics").status, 200);
  EXPECT_EQ(request(port(), "GET", "/healthz").status, 200);
  // A wrong token on an open route does not matter either.
  EXPECT_EQ(request(port(), "GET", "/healthz", "", {{"Authorization", "Bearer nope"}}).status, 200);
}

TEST_F(HttpRouting, NoTokenConfiguredMeansNoAuth) {
  EXPECT_EQ(request(port(), "GET", "/api/v1/queue").status, 200);
  EXPECT_EQ(request(port(), "GET", "/api/v1/queue", "", {{"Authorization", "Bearer any"}}).status,
            200);
}

TEST_F(HttpRouting, KeepAliveServesSeveralRequestsOnOneConnection) {
  Connection c(port());
  c.send(
      "GET /api/v1/queue HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  auto r1 = c.read_reply();
  EXPECT_EQ(r1.status, 200);
  EXPECT_EQ(body_json(r1)["route"], "queue");
  expect_json_error(c.read_reply(), 404);
  auto r3 = c.read_reply();
  EXPECT_EQ(r3.status, 200);
  EXPECT_EQ(body_json(r3)["body"], "abc");
  auto r4 = c.read_reply();
  EXPECT_EQ(r4.status, 200);
  EXPECT_EQ(body_json(r4)["route"], "healthz");
  EXPECT_TRUE(c.closed_by_peer());
}

// The answer to HEAD carries no body (RFC 9110 §9.3.2): on a kept-alive
// connection a body would be read as the start of the next response.
TEST_F(HttpRouting, AnswerToHeadHasNoBody) {
  Connection c(port());
  c.send(
      "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto head = c.read_reply(std::chrono::seconds(20), /*head_only=*/true);
  EXPECT_TRUE(head.status == 200 || head.status == 405) << head.status;
  const auto get = c.read_reply();
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(body_json(get)["route"], "healthz");
}

TEST_F(HttpRouting, ConcurrentClientsAreAllAnswered) {
  constexpr int kThreads = 4, kEach = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string body = std::to_string(t) + ":" + std::to_string(i);
        try {
          auto r = request(port(), "POST", "/api/v1/echo", body);
          if (r.status == 200 && json::parse(r.body)["body"] == body) ++ok;
        } catch (const std::exception&) {
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
}

TEST_F(HttpRouting, SecondServerOnTheSamePortFailsToStart) {
  ServerOptions o;
  o.listen = "127.0.0.1:" + std::to_string(port());
  HttpServer other(o);
  const auto err = other.start();
  EXPECT_NE(err, "");
  EXPECT_NE(err.find("cannot listen for HTTP on 127.0.0.1:" + std::to_string(port())),
            std::string::npos)
      << err;
  // The first one still answers.
  EXPECT_EQ(request(port(), "GET", "/healthz").status, 200);
}

TEST(HttpServer, StopClosesTheListenerAndIsIdempotent) {
  auto s = std::make_unique<Server>();
  const auto port = s->port();
  EXPECT_EQ(request(port, "GET", "/healthz").status, 200);
  s->get().stop();
  s->get().stop();
  EXPECT_THROW(request(port, "GET", "/healthz"), std::runtime_error);
}

TEST(Responses, JsonAndErrorAndText) {
  auto r = json_response(202, {{"a", 1}});
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, "{\"a\":1}\n");
  r = error_response(400, "bad \"json\"");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body), (json{{"error", "bad \"json\""}}));
  r = text_response(200, "text/plain", "hi");
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.body, "hi");
  // Invalid UTF-8 in a message does not throw.
  EXPECT_NO_THROW(error_response(400, "bad \xff byte"));
}

TEST(UrlCoding, DecodePercentAndPlus) {
  EXPECT_EQ(url_decode("a%20b+c"), "a b c");
  EXPECT_EQ(url_decode("%5b10.0.0.1%5D%3a25"), "[10.0.0.1]:25");
  EXPECT_EQ(url_decode("%C3%A9"), "\xc3\xa9");
  // Malformed escapes are kept as they are.
  EXPECT_EQ(url_decode("100%"), "100%");
  EXPECT_EQ(url_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(url_decode("%00%01%FF"), std::string("\x00\x01\xff", 3));
  EXPECT_EQ(url_decode("%2B%25"), "+%");  // escaped '+' and '%' stay themselves
  EXPECT_EQ(url_decode(""), "");
}

}  // namespace
}  // namespace mailgate::http

namespace mailgate::http {
namespace {

// The token is checked before the body is read: a client without it cannot
// make the server wait for (or buffer) 30 MB it announces and never sends.
TEST_F(HttpSlowClient, TokenIsCheckedBeforeTheBodyIsRead) {
  const auto before = calls();
  Connection c(port());
  c.send("POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\nab");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = c.read_reply(std::chrono::seconds(5));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(body_json(r)["error"], "missing or bad bearer token");
  EXPECT_EQ(r.header("connection"), "close");
  // Closed at once: no CivetWeb thread waits for the announced 30 MB.
  EXPECT_TRUE(c.closed_by_peer(std::chrono::seconds(3)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
  EXPECT_EQ(calls(), before);
}

TEST_F(HttpSlowClient, ABodyTricklingInPastItsDeadlineIs408) {
  const auto before = calls();
  Connection c(port());
  c.send(std::string("POST /api/v1/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kToken +
         "\r\nContent-Length: 100\r\n\r\n");
  // A few bytes, slowly, past the 500 ms deadline; then nothing more.
  for (int i = 0; i < 4; ++i) {
    c.send("x");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<Reply> r = c.read_reply(std::chrono::seconds(10));
  // Cut off within one io_timeout (1 s) of the deadline, not at 100 bytes.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  expect_json_error(*r, 408, "request body not received in time");
  EXPECT_EQ(calls(), before);
}

}  // namespace
}  // namespace mailgate::http
