// Tests of adminclient/http_client: the exact request bytes, and the client
// against a tiny real HTTP server on 127.0.0.1 (JSON and chunked answers,
// request bodies, names that resolve), and each failure: refused
// connection, a server that never answers (fails within the timeout), a
// too large answer, a peer that does not speak HTTP.
#include "adminclient/http_client.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "test_server.hpp"

namespace mailgate::adminclient {
namespace {

using testing::http_response;
using testing::request_body;
using testing::request_line;
using testing::TestServer;

TEST(FormatRequest, GetWithBasePathAndHeaders) {
  Url url{"gw.example", 8025, "/mailgate"};
  HttpRequest req;
  req.target = "/api/v1/queue?x=1";
  req.headers = {{"Accept", "application/json"}, {"Authorization", "Bearer s3cret"}};
  EXPECT_EQ(format_request(url, req),
            "GET /mailgate/api/v1/queue?x=1 HTTP/1.1\r\n"
            "Host: gw.example:8025\r\n"
            "Accept: application/json\r\n"
            "Authorization: Bearer s3cret\r\n"
            "Connection: close\r\n\r\n");
}

TEST(FormatRequest, BodiesAndEmptyPostsHaveContentLength) {
  Url url{"::1", 80, ""};
  HttpRequest post{"POST", "/api/v1/suppression", {}, "{\"address\":\"x@y\"}"};
  EXPECT_EQ(format_request(url, post),
            "POST /api/v1/suppression HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 17\r\n"
            "Connection: close\r\n\r\n{\"address\":\"x@y\"}");
  HttpRequest empty{"POST", "/api/v1/reload", {}, ""};
  EXPECT_EQ(format_request(url, empty),
            "POST /api/v1/reload HTTP/1.1\r\nHost: [::1]\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n");
  HttpRequest del{"DELETE", "/x", {}, ""};
  EXPECT_NE(format_request(url, del).find("Content-Length: 0\r\n"), std::string::npos);
}

TEST(FormatRequest, RejectsInjection) {
  Url url{"gw", 80, ""};
  EXPECT_THROW(format_request(url, {"GET", "/a\r\nX: y", {}, ""}), std::invalid_argument);
  EXPECT_THROW(format_request(url, {"GET", "/a b", {}, ""}), std::invalid_argument);
  EXPECT_THROW(format_request(url, {"GET", "noslash", {}, ""}), std::invalid_argument);
  EXPECT_THROW(format_request(url, {"GE T", "/", {}, ""}), std::invalid_argument);
  EXPECT_THROW(format_request(url, {"GET", "/", {{"A", "b\r\nEvil: 1"}}, ""}),
               std::invalid_argument);
  EXPECT_THROW(format_request(url, {"GET", "/", {{"A:", "b"}}, ""}), std::invalid_argument);
}

TEST(HttpClient, GetsJsonFromARealServer) {
  TestServer server(
      [](const std::string&) { return http_response(200, R"({"destinations":[]})"); });
  HttpRequest req;
  req.target = "/api/v1/queue";
  auto resp = http_request(server.url(), req);
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, R"({"destinations":[]})");
  EXPECT_EQ(resp.header("Content-Type"), "application/json");
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(request_line(reqs[0]), "GET /api/v1/queue HTTP/1.1");
  EXPECT_NE(reqs[0].find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"),
            std::string::npos);
  EXPECT_NE(reqs[0].find("\r\nConnection: close\r\n"), std::string::npos);
}

TEST(HttpClient, ChunkedAnswer) {
  TestServer server([](const std::string&) -> std::optional<std::string> {
    return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
  });
  auto resp = http_request(server.url(), {"GET", "/", {}, ""});
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "{\"a\":1}");
}

TEST(HttpClient, LargeCloseDelimitedAnswer) {
  const std::string big(3 * 1024 * 1024 + 17, 'x');
  TestServer server([&](const std::string&) -> std::optional<std::string> {
    return "HTTP/1.0 200 OK\r\n\r\n" + big;
  });
  auto resp = http_request(server.url(), {"GET", "/", {}, ""});
  EXPECT_EQ(resp.body, big);
}

TEST(HttpClient, SendsTheBody) {
  TestServer server([](const std::string&) { return http_response(201, R"({"address":"x@y"})"); });
  const std::string body(100000, 'b');  // more than one socket buffer's worth
  auto resp = http_request(server.url(), {"POST", "/api/v1/suppression", {}, body});
  EXPECT_EQ(resp.status, 201);
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(request_body(reqs[0]), body);
}

TEST(HttpClient, ErrorStatusIsAResponse) {
  TestServer server(
      [](const std::string&) { return http_response(404, R"({"error":"no message 00"})"); });
  auto resp = http_request(server.url(), {"GET", "/api/v1/messages/00", {}, ""});
  EXPECT_EQ(resp.status, 404);
  EXPECT_EQ(resp.body, R"({"error":"no message 00"})");
}

TEST(HttpClient, ResolvesNames) {
  TestServer server([](const std::string&) { return http_response(200, "{}"); });
  Url url{"localhost", server.port(), ""};  // ::1 may be refused first, then 127.0.0.1
  EXPECT_EQ(http_request(url, {"GET", "/", {}, ""}).status, 200);
  Url bad{"no-such-host.invalid", server.port(), ""};
  try {
    http_request(bad, {"GET", "/", {}, ""});
    FAIL() << "resolved an .invalid name";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Resolve) << e.what();
  }
}

TEST(HttpClient, ConnectionRefused) {
  std::uint16_t port;
  {
    TestServer gone([](const std::string&) { return http_response(200, "{}"); });
    port = gone.port();
  }
  try {
    http_request(Url{"127.0.0.1", port, ""}, {"GET", "/", {}, ""});
    FAIL() << "connected to a closed port";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Connect);
    EXPECT_STREQ(e.what(), "connection refused");
  }
}

TEST(HttpClient, ServerThatNeverAnswersTimesOut) {
  TestServer server([](const std::string&) { return std::nullopt; });
  HttpOptions opts;
  opts.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  try {
    http_request(server.url(), {"GET", "/api/v1/queue", {}, ""}, opts);
    FAIL() << "got an answer";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Timeout);
    EXPECT_STREQ(e.what(), "no response within 300 ms");
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(HttpClient, DefaultTimeoutIsTenSeconds) {
  EXPECT_EQ(HttpOptions{}.timeout, std::chrono::seconds(10));
  EXPECT_EQ(HttpOptions{}.max_response, 64u * 1024 * 1024);
}

TEST(HttpClient, TooLargeAnswer) {
  TestServer server([](const std::string&) { return http_response(200, std::string(5000, 'x')); });
  HttpOptions opts;
  opts.max_response = 1000;
  try {
    http_request(server.url(), {"GET", "/", {}, ""}, opts);
    FAIL() << "accepted a too large answer";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Protocol);
    EXPECT_STREQ(e.what(), "the response is larger than 1000 bytes");
  }
}

TEST(HttpClient, PeerThatIsNotHttp) {
  TestServer smtp(
      [](const std::string&) -> std::optional<std::string> { return "220 mx.example ESMTP\r\n"; });
  try {
    http_request(smtp.url(), {"GET", "/", {}, ""});
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Protocol);
    EXPECT_STREQ(e.what(), "not an HTTP response (got \"220 mx.example ESMTP\")");
  }
  TestServer mute([](const std::string&) -> std::optional<std::string> { return ""; });
  try {
    http_request(mute.url(), {"GET", "/", {}, ""});
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Protocol);
    EXPECT_STREQ(e.what(), "the server closed the connection without a response");
  }
}

// https: what fails before any HTTP is sent. (Against the real HTTPS
// listener: tests/integration/test_https.py.)
TEST(HttpClient, HttpsFailuresAreTlsErrorsOrBoundedWaits) {
  TestServer plain([](const std::string&) -> std::optional<std::string> { return std::nullopt; });
  Url url = plain.url();
  url.tls = true;
  HttpOptions options;
  options.ca_file = "/nonexistent/ca.pem";
  try {
    http_request(url, {"GET", "/", {}, ""}, options);
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Tls);
    EXPECT_NE(std::string(e.what()).find("cannot read the CA file /nonexistent/ca.pem"),
              std::string::npos)
        << e.what();
  }
  // A server that never answers the ClientHello: the handshake's wait is bounded.
  options = HttpOptions{};
  options.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  try {
    http_request(url, {"GET", "/", {}, ""}, options);
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_EQ(e.kind(), HttpError::Kind::Timeout);
    EXPECT_STREQ(e.what(), "the TLS handshake timed out after 300 ms");
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace mailgate::adminclient
