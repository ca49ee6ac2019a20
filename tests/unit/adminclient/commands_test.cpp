// Tests of adminclient/commands and api_client against a tiny real HTTP
// server: the request each command sends (method, percent-encoded path,
// query, JSON body, bearer token), its human and --json output, paging with
// --all, and the exit codes: 1 with "mailgate: <status>: <error>" for server
// errors, 3 with the http.listen hint when the API cannot be reached.
#include "adminclient/commands.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <mutex>
#include <sstream>

#include "test_server.hpp"

namespace mailgate::adminclient {
namespace {

using testing::http_response;
using testing::request_body;
using testing::request_line;
using testing::TestServer;

// A server answering by request line ("GET /path HTTP/1.1" minus " HTTP/1.1").
struct Fixture {
  explicit Fixture(std::map<std::string, std::string> answers, std::string token = "")
      : answers(std::move(answers)),
        server([this](const std::string& req) -> std::optional<std::string> {
          auto line = request_line(req);
          line = line.substr(0, line.rfind(' '));
          std::lock_guard lock(mu);
          auto it = this->answers.find(line);
          if (it == this->answers.end())
            return http_response(404, R"({"error":"no route )" + line + "\"}");
          return it->second;
        }),
        api(server.url(), std::move(token)) {}

  void answer(const std::string& line, std::string response) {
    std::lock_guard lock(mu);
    answers[line] = std::move(response);
  }

  int run(bool json, const std::function<int(Commands&)>& f) {
    out.str("");
    err.str("");
    Commands c(api, json, out, err);
    return f(c);
  }

  std::mutex mu;  // answers is read by the server thread
  std::map<std::string, std::string> answers;
  TestServer server;
  ApiClient api;
  std::ostringstream out, err;
};

const char* kQueue =
    R"({"destinations":[{"name":"gmail.com","scheduled":3,"ready":10,"in_flight":2,)"
    R"("connections":2,"suspended":false,"oldest_age_seconds":12.5}],)"
    R"("totals":{"scheduled":3,"ready":10,"in_flight":2,"destinations":1}})";

TEST(Commands, QueueSummaryTable) {
  Fixture f({{"GET /api/v1/queue", http_response(200, kQueue)}}, "s3cret");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_summary(); }), kExitOk);
  EXPECT_EQ(f.out.str(),
            "DESTINATION  SCHEDULED  READY  IN-FLIGHT  CONN  SUSPENDED  OLDEST\n"
            "gmail.com            3     10          2     2  no            12s\n"
            "1 destination: 3 scheduled, 10 ready, 2 in flight\n");
  EXPECT_EQ(f.err.str(), "");
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_NE(reqs[0].find("\r\nAuthorization: Bearer s3cret\r\n"), std::string::npos);
  EXPECT_NE(reqs[0].find("\r\nAccept: application/json\r\n"), std::string::npos);
}

TEST(Commands, JsonIsPrettyAndKeepsTheServersKeyOrder) {
  Fixture f({{"GET /api/v1/queue", http_response(200, R"({"z":1,"a":{"y":[1,"x"]},"m":null})")}});
  EXPECT_EQ(f.run(true, [](Commands& c) { return c.queue_summary(); }), kExitOk);
  EXPECT_EQ(f.out.str(),
            "{\n  \"z\": 1,\n  \"a\": {\n    \"y\": [\n      1,\n      \"x\"\n    ]\n  },\n"
            "  \"m\": null\n}\n");
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].find("Authorization"), std::string::npos);  // no token, no header
}

TEST(Commands, ServerErrorExitsOne) {
  Fixture f({{"GET /api/v1/messages/0123", http_response(400, R"({"error":"malformed id"})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_show("0123"); }), kExitApiError);
  EXPECT_EQ(f.out.str(), "");
  EXPECT_EQ(f.err.str(), "mailgate: 400: malformed id\n");
}

TEST(Commands, UnauthorizedHintsAtTheToken) {
  Fixture f(
      {{"POST /api/v1/reload", http_response(401, R"({"error":"missing or bad bearer token"})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.reload(); }), kExitApiError);
  EXPECT_EQ(f.err.str(),
            "mailgate: 401: missing or bad bearer token\n"
            "mailgate: pass --token TOKEN or set MAILGATE_API_TOKEN (http.token)\n");
}

TEST(Commands, ErrorWithoutJsonBody) {
  Fixture f({{"GET /api/v1/queue", http_response(503, "Service Unavailable\n", "text/plain")},
             {"POST /api/v1/reload", http_response(500, "")},
             {"GET /api/v1/suppression", http_response(200, "<html>", "text/html")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_summary(); }), kExitApiError);
  EXPECT_EQ(f.err.str(), "mailgate: 503: Service Unavailable\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.reload(); }), kExitApiError);
  EXPECT_EQ(f.err.str(), "mailgate: 500: X\n");  // the reason phrase
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.suppression_list({}); }), kExitApiError);
  EXPECT_EQ(f.err.str(), "mailgate: 200: the response is not JSON\n");
}

TEST(Commands, ErrorTextIsSanitized) {
  Fixture f({{"POST /api/v1/reload", http_response(422, R"({"error":"line 3:\n\u001b[2Jbad"})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.reload(); }), kExitApiError);
  EXPECT_EQ(f.err.str(), "mailgate: 422: line 3:??[2Jbad\n");
}

TEST(Commands, UnreachableExitsThree) {
  std::uint16_t port;
  {
    TestServer gone([](const std::string&) { return http_response(200, "{}"); });
    port = gone.port();
  }
  ApiClient api(Url{"127.0.0.1", port, ""}, "");
  std::ostringstream out, err;
  Commands c(api, false, out, err);
  EXPECT_EQ(c.queue_summary(), kExitUnreachable);
  EXPECT_EQ(err.str(),
            "mailgate: cannot reach the admin API at http://127.0.0.1:" + std::to_string(port) +
                ": connection refused\n"
                "mailgate: is the gateway running, and does --api match its "
                "http.listen setting?\n");
}

TEST(Commands, TimeoutExitsThree) {
  TestServer server([](const std::string&) { return std::nullopt; });
  HttpOptions opts;
  opts.timeout = std::chrono::milliseconds(200);
  ApiClient api(server.url(), "", opts);
  std::ostringstream out, err;
  Commands c(api, false, out, err);
  EXPECT_EQ(c.reload(), kExitUnreachable);
  EXPECT_NE(err.str().find(": no response within 200 ms\n"), std::string::npos) << err.str();
}

TEST(Commands, NotHttpExitsThree) {
  TestServer smtp(
      [](const std::string&) -> std::optional<std::string> { return "220 mx ESMTP\r\n"; });
  ApiClient api(smtp.url(), "");
  std::ostringstream out, err;
  Commands c(api, false, out, err);
  EXPECT_EQ(c.reload(), kExitUnreachable);
  EXPECT_EQ(err.str(), "mailgate: the admin API at " + smtp.url().str() +
                           " did not answer with valid HTTP: not an HTTP response (got \"220 mx "
                           "ESMTP\")\n"
                           "mailgate: check that --api points at the gateway's http.listen "
                           "address (https:// when http.tls is set)\n");
}

TEST(Commands, QueueActionsEncodeTheDestination) {
  Fixture f({{"POST /api/v1/queue/%5B127.0.0.1%5D%3A2525/suspend",
              http_response(200, R"({"destination":"[127.0.0.1]:2525","action":"suspend"})")},
             {"POST /api/v1/queue/gmail.com/resume",
              http_response(200, R"({"destination":"gmail.com","action":"resume"})")},
             {"POST /api/v1/queue/gmail.com/flush", http_response(200, "{}")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_action("suspend", "[127.0.0.1]:2525"); }),
            kExitOk);
  EXPECT_EQ(f.out.str(), "suspended [127.0.0.1]:2525\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_action("resume", "gmail.com"); }),
            kExitOk);
  EXPECT_EQ(f.out.str(), "resumed gmail.com\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_action("flush", "gmail.com"); }),
            kExitOk);
  EXPECT_EQ(f.out.str(), "flushed gmail.com\n");
  EXPECT_EQ(f.run(true, [](Commands& c) { return c.queue_action("resume", "gmail.com"); }),
            kExitOk);
  EXPECT_EQ(f.out.str(), "{\n  \"destination\": \"gmail.com\",\n  \"action\": \"resume\"\n}\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_action("suspend", "nope.example"); }),
            kExitApiError);
  EXPECT_EQ(f.err.str(), "mailgate: 404: no route POST /api/v1/queue/nope.example/suspend\n");
  auto reqs = f.server.requests();
  ASSERT_GE(reqs.size(), 1u);
  EXPECT_NE(reqs[0].find("\r\nContent-Length: 0\r\n"), std::string::npos);
}

TEST(Commands, QueueShow) {
  Fixture f({{"GET /api/v1/messages/0123456789abcdef0123456789abcdef",
              http_response(200, R"({"id":"0123456789abcdef0123456789abcdef","sender":"a@b",
                "size":10,"received":"2026-11-28T17:00:00.000Z","meta":{},
                "destinations":[{"name":"a.io","attempts":1,"next_attempt":null,
                "recipients":[{"address":"x@a.io","state":"pending","last_reply":null}]}]})")}});
  EXPECT_EQ(
      f.run(false, [](Commands& c) { return c.queue_show("0123456789abcdef0123456789abcdef"); }),
      kExitOk);
  EXPECT_EQ(f.out.str(),
            "id        0123456789abcdef0123456789abcdef\n"
            "sender    a@b\n"
            "size      10\n"
            "received  2026-11-28T17:00:00.000Z\n"
            "\n"
            "destination a.io: 1 attempt(s), next -\n"
            "  RECIPIENT  STATE    LAST REPLY\n"
            "  x@a.io     pending  -\n");
}

std::string message(const std::string& id) {
  return R"({"id":")" + id +
         R"(","destination":"a.io","sender":"s@b","size":1,)"
         R"("received":"r","attempts":1,"next_attempt":"n",)"
         R"("recipients":[{"address":"x@a.io","state":"pending","last_reply":null}]})";
}

TEST(Commands, QueueListOnePageHintsAtMore) {
  Fixture f(
      {{"GET /api/v1/messages?destination=%5B10.0.0.1%5D%3A25&limit=1",
        http_response(200, R"({"messages":[)" + message("m1") + R"(],"next_cursor":"c/2"})")}});
  ListOptions o;
  o.destination = "[10.0.0.1]:25";
  o.limit = 1;
  EXPECT_EQ(f.run(false, [&](Commands& c) { return c.queue_list(o); }), kExitOk) << f.err.str();
  EXPECT_EQ(f.out.str(),
            "ID  DESTINATION  SENDER  RECIPIENTS  ATTEMPTS  NEXT\n"
            "m1  a.io         s@b     x@a.io             1  n\n"
            "(more messages: use --all to list them all)\n");
  // --json prints the page as is, next_cursor included.
  EXPECT_EQ(f.run(true, [&](Commands& c) { return c.queue_list(o); }), kExitOk);
  auto j = Json::parse(f.out.str());
  EXPECT_EQ(j["next_cursor"], "c/2");
  EXPECT_EQ(j["messages"].size(), 1u);
}

TEST(Commands, QueueListAllFollowsTheCursor) {
  Fixture f(
      {{"GET /api/v1/messages?limit=1000",
        http_response(200, R"({"messages":[)" + message("m1") + "," + message("m2") +
                               R"(],"next_cursor":"c/2 +"})")},
       {"GET /api/v1/messages?limit=1000&cursor=c%2F2%20%2B",
        http_response(200, R"({"messages":[)" + message("m3") + R"(],"next_cursor":null})")}});
  ListOptions o;
  o.all = true;
  EXPECT_EQ(f.run(false, [&](Commands& c) { return c.queue_list(o); }), kExitOk) << f.err.str();
  EXPECT_EQ(f.out.str(),
            "ID  DESTINATION  SENDER  RECIPIENTS  ATTEMPTS  NEXT\n"
            "m1  a.io         s@b     x@a.io             1  n\n"
            "m2  a.io         s@b     x@a.io             1  n\n"
            "m3  a.io         s@b     x@a.io             1  n\n");
  EXPECT_EQ(f.run(true, [&](Commands& c) { return c.queue_list(o); }), kExitOk);
  auto j = Json::parse(f.out.str());
  EXPECT_EQ(j["messages"].size(), 3u);
  EXPECT_TRUE(j["next_cursor"].is_null());
}

TEST(Commands, RepeatedCursorStopsPaging) {
  Fixture f({{"GET /api/v1/suppression?limit=5",
              http_response(200, R"({"entries":[],"next_cursor":"same"})")},
             {"GET /api/v1/suppression?limit=5&cursor=same",
              http_response(200, R"({"entries":[],"next_cursor":"same"})")}});
  ListOptions o;
  o.all = true;
  o.limit = 5;
  EXPECT_EQ(f.run(false, [&](Commands& c) { return c.suppression_list(o); }), kExitApiError);
  EXPECT_EQ(f.err.str(),
            "mailgate: 200: unexpected answer from the server: next_cursor repeats \"same\"\n");
}

TEST(Commands, WrongShapeIsAnError) {
  Fixture f({{"GET /api/v1/messages", http_response(200, R"({"items":[]})")},
             {"POST /api/v1/bounce", http_response(200, R"({"bounced":"many"})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_list({}); }), kExitApiError);
  EXPECT_EQ(f.err.str(),
            "mailgate: 200: unexpected answer from the server: no \"messages\" array\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_bounce("x", {}, {}); }), kExitApiError);
  EXPECT_EQ(f.err.str(),
            "mailgate: 200: unexpected answer from the server: no \"bounced\" count\n");
}

TEST(Commands, Bounce) {
  Fixture f({{"POST /api/v1/bounce", http_response(200, R"({"bounced":1})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.queue_bounce("abc", {}, {}); }), kExitOk);
  EXPECT_EQ(f.out.str(), "bounced 1 message\n");
  f.answer("POST /api/v1/bounce", http_response(200, R"({"bounced":3})"));
  EXPECT_EQ(f.run(false,
                  [](Commands& c) {
                    return c.queue_bounce({}, std::string("gmail.com"),
                                          std::string("policy \"x\""));
                  }),
            kExitOk);
  EXPECT_EQ(f.out.str(), "bounced 3 messages\n");
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(Json::parse(request_body(reqs[0])), Json::parse(R"({"id":"abc"})"));
  EXPECT_EQ(Json::parse(request_body(reqs[1])),
            Json::parse(R"({"destination":"gmail.com","reason":"policy \"x\""})"));
  EXPECT_NE(reqs[1].find("\r\nContent-Type: application/json\r\n"), std::string::npos);
}

TEST(Commands, Suppression) {
  Fixture f({{"GET /api/v1/suppression",
              http_response(200, R"({"entries":[{"address":"x@y","reason":"550 5.1.1 gone",)"
                                 R"("added":"2026-11-28T17:00:00.000Z"}],"next_cursor":null})")},
             {"POST /api/v1/suppression", http_response(201, R"({"address":"x@y"})")},
             {"DELETE /api/v1/suppression/a%2Bb%40y.example",
              http_response(200, R"({"address":"a+b@y.example","removed":true})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.suppression_list({}); }), kExitOk);
  EXPECT_EQ(f.out.str(),
            "ADDRESS  ADDED                     REASON\n"
            "x@y      2026-11-28T17:00:00.000Z  550 5.1.1 gone\n");
  EXPECT_EQ(
      f.run(false, [](Commands& c) { return c.suppression_add("x@y", std::string("complained")); }),
      kExitOk);
  EXPECT_EQ(f.out.str(), "added x@y to the suppression list\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.suppression_remove("a+b@y.example"); }),
            kExitOk);
  EXPECT_EQ(f.out.str(), "removed a+b@y.example from the suppression list\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.suppression_remove("zz@y"); }), kExitApiError);
  auto reqs = f.server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  EXPECT_EQ(Json::parse(request_body(reqs[1])),
            Json::parse(R"({"address":"x@y","reason":"complained"})"));
  EXPECT_EQ(request_line(reqs[2]), "DELETE /api/v1/suppression/a%2Bb%40y.example HTTP/1.1");
}

TEST(Commands, Reload) {
  Fixture f({{"POST /api/v1/reload", http_response(200, R"({"version":2})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.reload(); }), kExitOk);
  EXPECT_EQ(f.out.str(), "reloaded the configuration (version 2)\n");
  f.answer("POST /api/v1/reload",
           http_response(422, R"({"error":"conf/mailgate.lua:3: syntax error"})"));
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.reload(); }), kExitApiError);
  EXPECT_EQ(f.err.str(), "mailgate: 422: conf/mailgate.lua:3: syntax error\n");
}

TEST(Commands, ShapingListAndClear) {
  Fixture f({{"GET /api/v1/shaping",
              http_response(200, R"({"actions":[{"id":"01a244844c490000","rule":"ts04",)"
                                 R"("action":"set","site":"yahoo","source":"ip1","tenant":null,)"
                                 R"("campaign":null,"destination":null,)"
                                 R"("set":{"max_message_rate":0.5},"since":0,)"
                                 R"("until":1796453050697}]})")},
             {"DELETE /api/v1/shaping/01a244844c490000", http_response(200, R"({"cleared":1})")},
             {"DELETE /api/v1/shaping", http_response(200, R"({"cleared":3})")}});
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.shaping_list(); }), kExitOk);
  EXPECT_EQ(f.out.str(),
            "ID                RULE  ACTION                    SITE   SOURCE  TENANT  CAMPAIGN  "
            "UNTIL\n"
            "01a244844c490000  ts04  set max_message_rate=0.5  yahoo  ip1     -       -         "
            "2026-12-05T06:44:10Z\n");
  EXPECT_NE(f.out.str().find("set max_message_rate=0.5"), std::string::npos) << f.out.str();
  EXPECT_NE(f.out.str().find("2026-12-05T06:44:10Z"), std::string::npos) << f.out.str();
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.shaping_clear("01a244844c490000"); }), kExitOk);
  EXPECT_EQ(f.out.str(), "cleared 1 shaping action\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.shaping_clear(std::nullopt); }), kExitOk);
  EXPECT_EQ(f.out.str(), "cleared 3 shaping actions\n");
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.shaping_clear("a/b"); }), kExitApiError);
  EXPECT_EQ(f.err.str(), "mailgate: 404: no route DELETE /api/v1/shaping/a%2Fb\n");
  f.answer("GET /api/v1/shaping", http_response(200, R"({"actions":[]})"));
  EXPECT_EQ(f.run(false, [](Commands& c) { return c.shaping_list(); }), kExitOk);
  EXPECT_EQ(f.out.str(), "no shaping actions in force\n");
}

TEST(ApiClient, RejectsTokensThatWouldBreakTheHeader) {
  EXPECT_THROW(ApiClient(Url{"h", 80, ""}, "a\r\nX: y"), std::invalid_argument);
  EXPECT_THROW(ApiClient(Url{"h", 80, ""}, "a b"), std::invalid_argument);
  EXPECT_NO_THROW(ApiClient(Url{"h", 80, ""}, "abc-._~+/="));
}

TEST(ApiClient, RedirectsAreNotFollowed) {
  TestServer server([](const std::string&) -> std::optional<std::string> {
    return "HTTP/1.1 301 Moved\r\nLocation: https://elsewhere/\r\nContent-Length: 0\r\n\r\n";
  });
  ApiClient api(server.url(), "");
  try {
    api.call("GET", "/api/v1/queue");
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 301);
    EXPECT_STREQ(e.what(), "redirected to https://elsewhere/ (not followed)");
  }
}

}  // namespace
}  // namespace mailgate::adminclient
