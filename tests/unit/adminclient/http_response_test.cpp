// Tests of adminclient/http_response: Content-Length, chunked (extensions,
// trailers, split at every byte) and close-delimited bodies, interim 1xx,
// bodiless statuses, and each malformed or oversized response failing with a
// reason.
#include "adminclient/http_response.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::adminclient {
namespace {

using S = ResponseParser::Status;

// Feeds `wire` in pieces of `step` bytes, then EOF if `close` and still needed.
ResponseParser parse(const std::string& wire, std::size_t step = 0, bool close = true,
                     std::size_t max = kMaxResponseSize, bool head = false) {
  ResponseParser p(max, head);
  if (step == 0) step = wire.size() ? wire.size() : 1;
  for (std::size_t i = 0; i < wire.size() && p.status() == S::NeedMore; i += step)
    p.feed(std::string_view(wire).substr(i, step));
  if (close && p.status() == S::NeedMore) p.finish();
  return p;
}

TEST(ResponseParser, ContentLength) {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
      "{\"a\":true}\n";
  for (std::size_t step : {0, 1, 3, 7}) {
    auto p = parse(wire, step, /*close=*/false);
    ASSERT_EQ(p.status(), S::Done) << step << " " << p.error();
    EXPECT_EQ(p.response().status, 200);
    EXPECT_EQ(p.response().reason, "OK");
    EXPECT_EQ(p.response().body, "{\"a\":true}\n");
    EXPECT_EQ(p.response().header("content-type"), "application/json");
    EXPECT_EQ(p.response().header("CONTENT-LENGTH"), "11");
    EXPECT_FALSE(p.response().header("X-Nope"));
  }
}

TEST(ResponseParser, IgnoresBytesAfterTheBody) {
  auto p = parse("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nabEXTRA", 0, false);
  ASSERT_EQ(p.status(), S::Done);
  EXPECT_EQ(p.response().status, 404);
  EXPECT_EQ(p.response().body, "ab");
  EXPECT_EQ(p.feed("more"), S::Done);
}

TEST(ResponseParser, Chunked) {
  const std::string wire =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n"
      "1;name=value\r\n,\r\n"
      "B \r\n 0123456789\r\n"
      "0\r\nX-Trailer: 1\r\n\r\n";
  for (std::size_t step = 1; step <= wire.size(); ++step) {
    auto p = parse(wire, step, /*close=*/false);
    ASSERT_EQ(p.status(), S::Done) << step << " " << p.error();
    EXPECT_EQ(p.response().body, "hello, 0123456789");
  }
}

TEST(ResponseParser, ChunkedWithLowercaseHexAndBareLf) {
  auto p = parse(
      "HTTP/1.1 200 OK\nTransfer-Encoding: gzip, Chunked\n\n"
      "1f\n0123456789abcdefghijklmnopqrstu\n0\n\n",
      0, false);
  ASSERT_EQ(p.status(), S::Done) << p.error();
  EXPECT_EQ(p.response().body, "0123456789abcdefghijklmnopqrstu");
}

TEST(ResponseParser, TransferEncodingWinsOverContentLength) {
  auto p = parse(
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nok\r\n0\r\n\r\n",
      0, false);
  ASSERT_EQ(p.status(), S::Done) << p.error();
  EXPECT_EQ(p.response().body, "ok");
}

TEST(ResponseParser, UntilClose) {
  auto p = parse("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n", 4, false);
  EXPECT_EQ(p.status(), S::NeedMore);
  EXPECT_EQ(p.finish(), S::Done);
  EXPECT_EQ(p.response().body, "ok\n");
  // A non-chunked transfer coding is close-delimited too.
  auto q = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nabc");
  ASSERT_EQ(q.status(), S::Done);
  EXPECT_EQ(q.response().body, "abc");
}

TEST(ResponseParser, SkipsInterimResponses) {
  auto p = parse(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
      5, false);
  ASSERT_EQ(p.status(), S::Done) << p.error();
  EXPECT_EQ(p.response().status, 201);
  EXPECT_EQ(p.response().body, "{}");
  EXPECT_FALSE(p.response().header("X"));
}

TEST(ResponseParser, BodilessResponses) {
  auto p = parse("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 0, false);
  ASSERT_EQ(p.status(), S::Done);
  EXPECT_EQ(p.response().body, "");
  auto h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0, false, kMaxResponseSize,
                 /*head=*/true);
  ASSERT_EQ(h.status(), S::Done);
  auto z = parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, false);
  ASSERT_EQ(z.status(), S::Done);
  auto noreason = parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0, false);
  ASSERT_EQ(noreason.status(), S::Done);
  EXPECT_EQ(noreason.response().reason, "");
}

TEST(ResponseParser, RepeatedEqualContentLengthIsFine) {
  auto p =
      parse("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok", 0, false);
  ASSERT_EQ(p.status(), S::Done) << p.error();
  EXPECT_EQ(p.response().body, "ok");
}

std::string error_of(const std::string& wire, std::size_t max = kMaxResponseSize) {
  auto p = parse(wire, 0, true, max);
  EXPECT_EQ(p.status(), S::Error) << wire;
  return p.error();
}

TEST(ResponseParser, Errors) {
  EXPECT_EQ(error_of(""), "the server closed the connection without a response");
  EXPECT_EQ(error_of("220 mx.example ESMTP\r\n"),
            "not an HTTP response (got \"220 mx.example ESMTP\")");
  EXPECT_EQ(error_of("HTTP/2 200\r\n"), "not an HTTP response (got \"HTTP/2 200\")");
  EXPECT_EQ(error_of("HTTP/1.1 20x OK\r\n"), "not an HTTP response (got \"HTTP/1.1 20x OK\")");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"),
            "the server closed the connection before the response was complete");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Le"),
            "the server closed the connection before the response was complete");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            "conflicting Content-Length values in the response");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            "bad Content-Length in the response");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"),
            "bad Content-Length in the response");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n"),
            "malformed header line in the response");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"),
            "malformed header line in the response");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n"),
            "obsolete header line folding in the response");
  EXPECT_EQ(error_of("HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            "the server switched protocols (101)");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            "bad chunk size line");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\n"),
            "bad chunk size line");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXY\r\n"),
            "chunk data not followed by CRLF");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "1000000000000000\r\n"),
            "chunk size too large");
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"),
            "the server closed the connection before the response was complete");
}

TEST(ResponseParser, SizeLimits) {
  // Declared length over the limit fails before the body arrives.
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 100),
            "the response is larger than 100 bytes");
  // Chunks adding up to more than the limit.
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n80\r\n", 100),
            "the response is larger than 100 bytes");
  // Close-delimited bodies are bounded by the bytes received.
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\n\r\n" + std::string(200, 'x'), 100),
            "the response is larger than 100 bytes");
  // A head that never ends.
  EXPECT_EQ(error_of("HTTP/1.1 200 OK\r\nX: " + std::string(kMaxResponseHead, 'x')),
            "the response head is larger than 65536 bytes");
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 10000; ++i) many += "X-Header: 1\r\n";
  EXPECT_EQ(error_of(many), "the response head is larger than 65536 bytes");
  // Exactly at the limit is fine.
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
  auto p = parse(head + "0123456789", 0, false, head.size() + 10);
  ASSERT_EQ(p.status(), S::Done) << p.error();
}

}  // namespace
}  // namespace mailgate::adminclient
