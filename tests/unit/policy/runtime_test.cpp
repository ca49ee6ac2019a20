// Unit tests for the policy runtime: verdict chaining, errors and timeouts as
// tempfails, hooks yielding in mailgate.dns.mx (real dnsmasq / a silent
// server) without blocking other calls, result parsing, the msg object, and
// reload keeping the old version when the new config is broken.
#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "../dns/dnsmasq_fixture.hpp"
#include "dkim/signer.hpp"
#include "dkim/signing_key.hpp"
#include "dns/resolver.hpp"
#include "policy/runtime.hpp"
#include "ratelimit/shared_limiter.hpp"

namespace mailgate::policy {
namespace {

using namespace std::chrono_literals;

class TempConfig {
 public:
  TempConfig() {
    char tmpl[] = "/tmp/mailgate-policy-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~TempConfig() { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& body, const std::string& name = "mailgate.lua") {
    const auto path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << body;
    return path;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

const char* kHeader = R"(mailgate.configure { policy = { hook_timeout = "300ms" } }
mailgate.listen { address = "127.0.0.1:0" }
)";

class MemorySuppression : public SuppressionStore {
 public:
  bool has(std::string_view a) const override { return set.count(std::string(a)) > 0; }
  void add(std::string_view a, std::string_view) override { set.insert(std::string(a)); }
  bool remove(std::string_view a) override { return set.erase(std::string(a)) > 0; }
  std::set<std::string> set;
};

struct Harness {
  explicit Harness(const std::string& lua, std::vector<std::string> dns_servers = {"127.0.0.1:1"}) {
    path = tmp.write(std::string(kHeader) + lua);
    config = load_config(path);
    dns::ResolverOptions opts;
    opts.servers = std::move(dns_servers);
    opts.timeout = 500ms;  // the silent-server test waits for c-ares to give up
    resolver = std::make_unique<dns::Resolver>(ctx, opts);
    services.limiter = &limiter;
    services.suppression = &suppression;
    policy = build_policy(path, 1, config, services, resolver.get(), &stats);
  }
  ~Harness() {
    resolver->shutdown();
    ctx.run();
  }
  template <class F>
  void run(F&& f) {
    asio::co_spawn(ctx, std::forward<F>(f), asio::detached);
    ctx.restart();
    ctx.run();
  }
  Verdict rcpt(const std::string& address) {
    Verdict v;
    ConnInfo conn{"192.0.2.1", 4000, "127.0.0.1", 25, "127.0.0.1:25", false, "client.test"};
    TxInfo tx;
    tx.conn = &conn;
    tx.sender = make_address_info("sender@example.com");
    run([&]() -> asio::awaitable<void> {
      v = co_await policy->rcpt_to(tx, make_address_info(address));
    });
    return v;
  }

  TempConfig tmp;
  std::string path;
  Config config;
  asio::io_context ctx;
  std::unique_ptr<dns::Resolver> resolver;
  ratelimit::SharedLimiter limiter;
  MemorySuppression suppression;
  Services services;
  HookStats stats;
  PolicyRef policy;
};

TEST(PolicyRuntime, NoHandlersMeansNoVerdict) {
  Harness h("");
  EXPECT_FALSE(h.policy->has(Event::RcptTo));
  auto v = h.rcpt("a@b.test");
  EXPECT_EQ(v.kind, Verdict::Kind::None);
}

TEST(PolicyRuntime, FirstVerdictWinsInRegistrationOrder) {
  Harness h(R"(
    calls = {}
    mailgate.on("rcpt_to", function(tx, rcpt)
      table.insert(calls, "first")
      if rcpt.user == "x" then return mailgate.reject(550, "5.1.1 no such user x") end
    end)
    mailgate.on("rcpt_to", function(tx, rcpt)
      table.insert(calls, "second")
      if rcpt.domain == "blocked.test" then return mailgate.tempfail(451, "4.7.1 later") end
      if rcpt.domain == "vip.test" then return mailgate.accept() end
    end)
    mailgate.on("rcpt_to", function(tx, rcpt)
      return mailgate.reject(554, "never reached for vip")
    end)
  )");
  auto v = h.rcpt("x@vip.test");
  EXPECT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_EQ(v.reply.code, 550);
  EXPECT_EQ(v.reply.enhanced, "5.1.1");
  EXPECT_EQ(v.reply.text, "no such user x");
  v = h.rcpt("y@Blocked.TEST");
  EXPECT_EQ(v.kind, Verdict::Kind::Tempfail);
  EXPECT_EQ(v.reply.code, 451);
  v = h.rcpt("y@vip.test");
  EXPECT_EQ(v.kind, Verdict::Kind::Accept);
  v = h.rcpt("y@other.test");
  EXPECT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_EQ(v.reply.code, 554);
  EXPECT_EQ(v.reply.enhanced, "5.7.1");  // default for a reject without one
  EXPECT_FALSE(v.error);
}

TEST(PolicyRuntime, TxRecipientsAreBuiltOnUseAndDieWithTheCall) {
  Harness h(R"(
    kept = nil
    mailgate.on("rcpt_to", function(tx, rcpt)
      if not kept then
        kept = tx  -- its recipients never read during its own call
        return nil
      end
      local ok, err = pcall(function() return #kept.recipients end)
      return mailgate.reject(550, #tx.recipients .. " " .. tx.recipients[2].address .. " " ..
                                  tx.sender.address .. " | " .. (ok and "stale worked" or err))
    end)
  )");
  ConnInfo conn;
  TxInfo tx;
  tx.conn = &conn;
  tx.sender = make_address_info("s@x.test");
  tx.recipients = {make_address_info("a@y.test"), make_address_info("b@y.test")};
  Verdict v;
  for (int i = 0; i < 2; ++i) {
    h.run([&]() -> asio::awaitable<void> {
      v = co_await h.policy->rcpt_to(tx, make_address_info("c@y.test"));
    });
  }
  EXPECT_NE(v.reply.text.find("2 b@y.test s@x.test | "), std::string::npos) << v.reply.text;
  EXPECT_NE(v.reply.text.find("tx used after its hook returned"), std::string::npos)
      << v.reply.text;
}

TEST(PolicyRuntime, LuaErrorIsTempfailNeverAccept) {
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt) error("boom") end)
    mailgate.on("rcpt_to", function(tx, rcpt) return mailgate.accept() end)
  )");
  auto v = h.rcpt("a@b.test");
  EXPECT_TRUE(v.error);
  EXPECT_EQ(v.kind, Verdict::Kind::Tempfail);
  EXPECT_EQ(v.reply.code, 451);
  EXPECT_EQ(v.reply.enhanced, "4.3.0");
  const int i = static_cast<int>(Event::RcptTo);
  EXPECT_EQ(h.stats.errors[i].load(), 1u);
  EXPECT_EQ(h.stats.calls[i].load(), 1u);
}

TEST(PolicyRuntime, BadReturnValueIsAnError) {
  Harness h(R"(mailgate.on("rcpt_to", function() return { verdict = "accept" } end))");
  auto v = h.rcpt("a@b.test");
  EXPECT_TRUE(v.error);
  EXPECT_EQ(v.reply.code, 451);
}

TEST(PolicyRuntime, BadVerdictArgumentsAreErrors) {
  Harness h(R"(mailgate.on("rcpt_to", function() return mailgate.reject(250, "ok?") end))");
  EXPECT_TRUE(h.rcpt("a@b.test").error);
  Harness h2(
      R"(mailgate.on("rcpt_to", function() return mailgate.reject(550, "4.1.1 mismatch") end))");
  EXPECT_TRUE(h2.rcpt("a@b.test").error);
}

TEST(PolicyRuntime, BusyLoopTimesOut) {
  Harness h(R"(mailgate.on("rcpt_to", function() while true do end end))");
  const auto t0 = std::chrono::steady_clock::now();
  auto v = h.rcpt("a@b.test");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(v.error);
  EXPECT_EQ(v.reply.code, 451);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
}

TEST(PolicyRuntime, YieldOutsideTheApiIsAnError) {
  Harness h(R"(mailgate.on("rcpt_to", function() coroutine.yield() end))");
  EXPECT_TRUE(h.rcpt("a@b.test").error);
}

TEST(PolicyRuntime, DnsMxYieldsAndReturnsTheAnswer) {
  dns::testing::Dnsmasq dnsmasq(
      {"--mx-host=good.test,mx2.good.test,20", "--mx-host=good.test,mx1.good.test,10",
       "--host-record=mx1.good.test,127.0.0.1", "--host-record=mx2.good.test,127.0.0.1",
       "--mx-host=null.test,.,0", "--host-record=aonly.test,127.0.0.1"});
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      local r = mailgate.dns.mx(rcpt.domain)
      if r.status ~= "ok" then return mailgate.reject(550, "5.1.2 " .. r.status) end
      return mailgate.reject(599, r.hosts[1].host .. "/" .. r.hosts[1].preference ..
                                  "/" .. tostring(r.implicit))
    end)
  )",
            {dnsmasq.server()});
  auto v = h.rcpt("a@good.test");
  EXPECT_EQ(v.reply.code, 599) << v.reply.text;
  EXPECT_EQ(v.reply.text, "mx1.good.test/10/false");
  v = h.rcpt("a@aonly.test");
  EXPECT_EQ(v.reply.text, "aonly.test/0/true");
  v = h.rcpt("a@null.test");
  EXPECT_EQ(v.reply.code, 550);
  EXPECT_NE(v.reply.text.find("null"), std::string::npos) << v.reply.text;
  v = h.rcpt("a@nonexistent.test");
  EXPECT_EQ(v.reply.code, 550);
  EXPECT_NE(v.reply.text.find("nxdomain"), std::string::npos) << v.reply.text;
}

TEST(PolicyRuntime, DnsMxYieldsThroughPcallAndXpcall) {
  dns::testing::Dnsmasq dnsmasq({"--mx-host=good.test,mx1.good.test,10"});
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      local ok, r = pcall(mailgate.dns.mx, rcpt.domain)
      local ok2, r2 = xpcall(function() return mailgate.dns.mx(rcpt.domain) end, debug.traceback)
      return mailgate.reject(550, tostring(ok) .. " " .. r.hosts[1].host .. " " ..
                                  tostring(ok2) .. " " .. r2.hosts[1].host)
    end)
  )",
            {dnsmasq.server()});
  const auto v = h.rcpt("a@good.test");
  EXPECT_FALSE(v.error);
  EXPECT_EQ(v.reply.text, "true mx1.good.test true mx1.good.test");
}

TEST(PolicyRuntime, SuspendedHookDoesNotBlockOtherCallsAndTimesOut) {
  dns::testing::SilentServer silent;
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      if rcpt.domain == "slow.test" then mailgate.dns.mx("slow.test") end
      return mailgate.reject(550, "5.7.1 fast " .. rcpt.domain)
    end)
  )",
            {silent.server()});
  ConnInfo conn;
  TxInfo tx;
  tx.conn = &conn;
  Verdict slow, fast;
  std::chrono::steady_clock::duration fast_took{}, slow_took{};
  const auto t0 = std::chrono::steady_clock::now();
  asio::co_spawn(
      h.ctx,
      [&]() -> asio::awaitable<void> {
        slow = co_await h.policy->rcpt_to(tx, make_address_info("a@slow.test"));
        slow_took = std::chrono::steady_clock::now() - t0;
      },
      asio::detached);
  asio::co_spawn(
      h.ctx,
      [&]() -> asio::awaitable<void> {
        fast = co_await h.policy->rcpt_to(tx, make_address_info("a@fast.test"));
        fast_took = std::chrono::steady_clock::now() - t0;
      },
      asio::detached);
  h.ctx.run();
  EXPECT_EQ(fast.kind, Verdict::Kind::Reject);
  EXPECT_EQ(fast.reply.text, "fast fast.test");
  EXPECT_LT(fast_took, 200ms);
  EXPECT_TRUE(slow.error);
  EXPECT_GE(slow_took, 300ms);
  EXPECT_LT(slow_took, 2s);
}

TEST(PolicyRuntime, RouteResults) {
  Harness h(R"(
    mailgate.on("route", function(msg, domain)
      if domain == "a.test" then return { smarthost = "127.0.0.1:2525", tls = "disabled" } end
      if domain == "b.test" then return { smarthost = "[::1]:26" } end
      if domain == "c.test" then return { smarthost = "Relay.Example" } end
      if domain == "d.test" then return { discard = true } end
      if domain == "e.test" then return { smarthost = "x:1", auth = { user = "u" } } end
      if domain == "f.test" then return { smarthost = "x:1", bogus = 1 } end
      if domain == "g.test" then return { smarthost = "x:1", tls = "Required" } end
      if domain == "h.test" then return { smarthost = "x:1", tls = "dane" } end
    end)
  )");
  Message msg;
  auto route = [&](const char* d) {
    RouteDecision r;
    h.run([&]() -> asio::awaitable<void> { r = co_await h.policy->route(msg, d); });
    return r;
  };
  auto r = route("a.test");
  EXPECT_EQ(r.kind, RouteDecision::Kind::Smarthost);
  EXPECT_EQ(r.destination, "[127.0.0.1]:2525");
  EXPECT_EQ(r.tls, smtp::TlsMode::Disabled);
  EXPECT_EQ(route("b.test").destination, "[::1]:26");
  EXPECT_EQ(route("c.test").destination, "[relay.example]:25");
  EXPECT_EQ(route("d.test").kind, RouteDecision::Kind::Discard);
  r = route("other.test");
  EXPECT_EQ(r.kind, RouteDecision::Kind::Mx);
  EXPECT_EQ(r.destination, "other.test");
  EXPECT_TRUE(route("e.test").failure.error);  // auth without a password: refused, not ignored
  EXPECT_TRUE(route("f.test").failure.error);
  EXPECT_TRUE(route("g.test").failure.error);  // names are exact
  r = route("h.test");
  EXPECT_FALSE(r.failure.error);
  EXPECT_EQ(r.tls, smtp::TlsMode::Dane);
}

TEST(PolicyRuntime, EgressPathResults) {
  Harness h(R"(
    mailgate.on("egress_path", function(d)
      if d == "a.test" then
        return { max_connections = 2, max_message_rate = "20/s", max_message_burst = 3,
                 max_connection_rate = "5/min", tls = "required", source_address = "127.0.0.2",
                 ehlo_name = "out.example", max_messages_per_connection = 7 }
      end
      if d == "bad.test" then return { max_message_rate = "fast" } end
      -- An EHLO name goes on the wire: a CRLF in it would inject commands.
      if d == "crlf.test" then return { ehlo_name = "ok.example\r\nMAIL FROM:<x@y>" } end
      if d == "space.test" then return { ehlo_name = "a b" } end
      if d == "literal.test" then return { ehlo_name = "[192.0.2.1]" } end
      if d == "badip.test" then return { source_address = "127.0.0.1\r\n" } end
      if d == "dane.test" then return { tls = "dane" } end
    end)
  )");
  auto egress = [&](const char* d) {
    EgressPath p;
    h.run([&]() -> asio::awaitable<void> { p = co_await h.policy->egress_path(d); });
    return p;
  };
  auto p = egress("a.test");
  EXPECT_FALSE(p.failed);
  EXPECT_EQ(p.max_connections, 2u);
  EXPECT_EQ(p.max_messages_per_connection, 7u);
  ASSERT_TRUE(p.max_message_rate);
  EXPECT_DOUBLE_EQ(p.max_message_rate->per_second(), 20.0);
  EXPECT_EQ(p.max_message_burst, 3u);
  ASSERT_TRUE(p.max_connection_rate);
  EXPECT_NEAR(p.max_connection_rate->per_second(), 5.0 / 60, 1e-9);
  EXPECT_EQ(p.tls, smtp::TlsMode::Required);
  EXPECT_EQ(p.source_address, "127.0.0.2");
  EXPECT_EQ(p.ehlo_name, "out.example");
  EXPECT_FALSE(egress("other.test").max_connections);
  EXPECT_TRUE(egress("bad.test").failed);
  EXPECT_TRUE(egress("crlf.test").failed);
  EXPECT_FALSE(egress("crlf.test").ehlo_name);
  EXPECT_TRUE(egress("space.test").failed);
  EXPECT_TRUE(egress("badip.test").failed);
  EXPECT_FALSE(egress("dane.test").failed);
  EXPECT_EQ(egress("dane.test").tls, smtp::TlsMode::Dane);
  p = egress("literal.test");
  EXPECT_FALSE(p.failed);
  EXPECT_EQ(p.ehlo_name, "[192.0.2.1]");
}

TEST(PolicyRuntime, MessageObjectHeadersMetaAndLifetime) {
  Harness h(R"(
    kept = nil
    mailgate.on("message", function(tx, msg)
      if kept then
        local ok, err = pcall(function() return msg.id .. kept:header("Subject") end)
        return mailgate.reject(550, ok and "stale msg worked" or "stale: " .. tostring(err))
      end
      kept = msg
      msg:set_meta("tenant", "acme")
      msg:add_header("X-Policy", "seen " .. msg:header("subject"))
      msg:remove_header("X-Drop")
      if msg.size ~= 42 or msg.sender ~= "s@x.test" or #msg.recipients ~= 2 then
        return mailgate.reject(550, "bad fields")
      end
      if #msg:headers("Received") ~= 2 then return mailgate.reject(550, "bad headers") end
    end)
  )");
  HeaderSection headers(
      "Received: one\r\nReceived: two\r\nSubject: Hello\r\n  folded\r\nX-Drop: a\r\nx-drop: b\r\n");
  std::map<std::string, std::string> meta;
  Message msg;
  msg.id = "abc";
  msg.size = 42;
  msg.sender = "s@x.test";
  msg.recipients = {"a@y.test", "b@y.test"};
  msg.headers = &headers;
  msg.headers_writable = true;
  msg.meta = &meta;
  msg.meta_writable = true;
  TxInfo tx;
  Verdict v;
  h.run([&]() -> asio::awaitable<void> { v = co_await h.policy->message(tx, msg); });
  EXPECT_EQ(v.kind, Verdict::Kind::None) << v.reply.text;
  EXPECT_EQ(meta["tenant"], "acme");
  EXPECT_TRUE(headers.modified());
  EXPECT_EQ(headers.str(),
            "X-Policy: seen Hello  folded\r\nReceived: one\r\nReceived: two\r\nSubject: "
            "Hello\r\n  folded\r\n");
  // A msg kept from an earlier call is dead, not a dangling pointer.
  h.run([&]() -> asio::awaitable<void> { v = co_await h.policy->message(tx, msg); });
  EXPECT_EQ(v.kind, Verdict::Kind::Reject);
  EXPECT_NE(v.reply.text.find("after its hook returned"), std::string::npos) << v.reply.text;
}

TEST(PolicyRuntime, DkimSignRecordsRequestsInCallOrderAndChecksTheTable) {
  Harness h(R"(
    mailgate.on("message", function(tx, msg)
      local bad = msg:header("X-Bad")
      if bad == "field" then msg:dkim_sign { domain = "a.test", selector = "s", key = "k", l = 1 } end
      if bad == "algorithm" then
        msg:dkim_sign { domain = "a.test", selector = "s", key = "k", algorithm = "rsa-sha1" }
      end
      if bad == "selector" then msg:dkim_sign { domain = "a.test", selector = "s;x", key = "k" } end
      msg:dkim_sign { domain = "Cust.TEST", selector = "s1", key = "/k1.pem" }
      msg:dkim_sign { domain = "esp.test", selector = "e1", key = "/k2.pem",
                      algorithm = "ed25519-sha256", canonicalization = "simple/relaxed",
                      headers = { "From", "List-Unsubscribe" }, expire = "7d",
                      on_error = "send_unsigned" }
    end)
    mailgate.on("route", function(msg, domain)
      if msg:header("X-Route-Sign") then msg:dkim_sign { domain = "a.test", selector = "s", key = "k" } end
    end)
  )");
  auto run = [&](const std::string& section, std::vector<dkim::SignRequest>& requests) {
    HeaderSection headers(section);
    Message msg;
    msg.headers = &headers;
    msg.headers_writable = true;
    msg.dkim = &requests;
    TxInfo tx;
    Verdict v;
    h.run([&]() -> asio::awaitable<void> { v = co_await h.policy->message(tx, msg); });
    return v;
  };
  std::vector<dkim::SignRequest> requests;
  auto v = run("Subject: x\r\n", requests);
  EXPECT_EQ(v.kind, Verdict::Kind::None) << v.reply.text;
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].domain, "cust.test");
  EXPECT_EQ(requests[0].key_path, "/k1.pem");
  EXPECT_FALSE(requests[0].algorithm);
  EXPECT_EQ(requests[0].canonicalization.header, dkim::Canonicalization::Relaxed);
  EXPECT_EQ(requests[0].canonicalization.body, dkim::Canonicalization::Relaxed);
  EXPECT_FALSE(requests[0].expire);
  EXPECT_FALSE(requests[0].send_unsigned_on_error);
  EXPECT_EQ(requests[1].algorithm, dkim::Algorithm::Ed25519Sha256);
  EXPECT_EQ(requests[1].canonicalization.header, dkim::Canonicalization::Simple);
  EXPECT_EQ(requests[1].headers, (std::vector<std::string>{"From", "List-Unsubscribe"}));
  EXPECT_EQ(requests[1].expire, std::chrono::seconds(7 * 86400));
  EXPECT_TRUE(requests[1].send_unsigned_on_error);
  for (const char* bad : {"field", "algorithm", "selector"}) {
    std::vector<dkim::SignRequest> none;
    v = run(std::string("X-Bad: ") + bad + "\r\n", none);
    EXPECT_EQ(v.kind, Verdict::Kind::Tempfail) << bad;
    EXPECT_TRUE(v.error) << bad;
    EXPECT_TRUE(none.empty()) << bad;
  }
  // Only the message hook may ask (route: msg.dkim is null there).
  HeaderSection headers("X-Route-Sign: 1\r\n");
  Message msg;
  msg.headers = &headers;
  RouteDecision d;
  h.run([&]() -> asio::awaitable<void> { d = co_await h.policy->route(msg, "x.test"); });
  EXPECT_TRUE(d.failure.error);
}

TEST(HeaderSection, ReplaceKeepsPositionAndDropsDuplicates) {
  HeaderSection h("A: 1\r\nSubject: old\r\nB: 2\r\nsubject: dup\r\n");
  EXPECT_EQ(h.replace("Subject", "new"), "");
  EXPECT_EQ(h.str(), "A: 1\r\nSubject: new\r\nB: 2\r\n");
  EXPECT_EQ(h.replace("X-New", "v"), "");
  EXPECT_EQ(h.str(), "X-New: v\r\nA: 1\r\nSubject: new\r\nB: 2\r\n");
  EXPECT_NE(h.replace("Bad Name", "v"), "");
  EXPECT_NE(h.replace("X", "a\r\nInjected: 1"), "");
  EXPECT_EQ(h.all("subject").size(), 1u);
}

TEST(HeaderSection, LongValuesAreFoldedUnder998) {
  HeaderSection h("");
  std::string v;
  for (int i = 0; i < 400; ++i) v += "word" + std::to_string(i) + " ";
  EXPECT_EQ(h.add("X-Long", v), "");
  for (std::size_t p = 0, e; (e = h.str().find("\r\n", p)) != std::string::npos; p = e + 2)
    EXPECT_LE(e - p, 998u);
  EXPECT_NE(h.add("X-Word", std::string(2000, 'x')), "");
}

TEST(PolicyRuntime, ReadOnlyMessageRefusesEdits) {
  Harness h(R"(
    mailgate.on("bounced", function(msg, rcpt, reply)
      mailgate.suppression.add(rcpt.address, reply.enhanced)
      msg:add_header("X-A", "b")
    end)
    mailgate.on("deferred", function(msg, rcpt, reply) return "90s" end)
  )");
  HeaderSection headers("Subject: x\r\n");
  Message msg;
  msg.headers = &headers;
  ReplyInfo reply{550, "5.1.1", "no such user", "bad-mailbox"};
  std::optional<Duration> delay;
  h.run([&]() -> asio::awaitable<void> {
    co_await h.policy->bounced(msg, make_address_info("gone@x.test"), reply);
    delay = co_await h.policy->deferred(msg, make_address_info("gone@x.test"), reply);
  });
  EXPECT_TRUE(h.suppression.has("gone@x.test"));  // ran up to the refused edit
  EXPECT_FALSE(headers.modified());
  EXPECT_EQ(h.stats.errors[static_cast<int>(Event::Bounced)].load(), 1u);
  ASSERT_TRUE(delay);
  EXPECT_EQ(*delay, 90s);
}

TEST(PolicyRuntime, RateLimitIsSharedByKey) {
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      if not mailgate.ratelimit.check("ip:" .. tx.conn.remote_ip, "3/h") then
        return mailgate.tempfail(452, "4.7.1 rate")
      end
    end)
  )");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(h.rcpt("a@b.test").kind, Verdict::Kind::None);
  EXPECT_EQ(h.rcpt("a@b.test").reply.code, 452);
}

TEST(PolicyRuntime, ConfigErrorsInHooksShowAtLoad) {
  TempConfig t;
  auto bad_event = t.write(std::string(kHeader) + R"(mailgate.on("rcpt", function() end))");
  EXPECT_THROW(load_config(bad_event), ConfigError);
  auto no_plugin = t.write(std::string(kHeader) + R"(mailgate.use("no_such_plugin"))");
  try {
    load_config(no_plugin);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_plugin"), std::string::npos);
  }
  auto mx_at_top = t.write(std::string(kHeader) + R"(mailgate.dns.mx("x.test"))");
  EXPECT_THROW(load_config(mx_at_top), ConfigError);
}

TEST(PolicyRuntime, DkimCheckKeyFailsTheConfigForABadKey) {
  TempConfig t;
  const auto key_path = t.dir() + "/k.pem";
  std::ofstream(key_path)
      << dkim::SigningKey::generate(dkim::Algorithm::Ed25519Sha256)->private_pem();
  auto ok = t.write(std::string(kHeader) + "assert(mailgate.dkim.check_key(\"" + key_path +
                    "\") == \"ed25519-sha256\")");
  EXPECT_NO_THROW(load_config(ok));
  for (const std::string& call : {"mailgate.dkim.check_key(\"" + t.dir() + "/missing.pem\")",
                                 "mailgate.dkim.check_key(\"" + key_path + "\", \"rsa-sha256\")",
                                 "mailgate.dkim.check_key(\"" + t.dir() + "/mailgate.lua\")"}) {
    auto bad = t.write(std::string(kHeader) + call, "bad.lua");
    try {
      load_config(bad);
      ADD_FAILURE() << call;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("mailgate.dkim.check_key"), std::string::npos)
          << e.what();
    }
  }
}

TEST(PolicyRuntime, LocalPluginsComeFirst) {
  TempConfig t;
  t.write(R"(return function(opts)
    mailgate.on("rcpt_to", function() return mailgate.reject(550, "5.7.1 " .. opts.word) end)
  end)",
          "plugins/local_thing.lua");
  auto path = t.write(std::string(kHeader) + R"(mailgate.use("local_thing", { word = "hi" }))");
  auto config = load_config(path);
  ratelimit::SharedLimiter limiter;
  Services s;
  s.limiter = &limiter;
  auto p = build_policy(path, 1, config, s, nullptr, nullptr);
  asio::io_context ctx;
  Verdict v;
  ConnInfo conn;
  TxInfo tx;
  tx.conn = &conn;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> { v = co_await p->rcpt_to(tx, make_address_info("a@b")); },
      asio::detached);
  ctx.run();
  EXPECT_EQ(v.reply.text, "hi");
}

TEST(PolicyRuntime, ReloadKeepsTheOldVersionOnError) {
  TempConfig t;
  auto path =
      t.write(std::string(kHeader) +
              R"(mailgate.on("rcpt_to", function() return mailgate.reject(550, "v1") end))");
  auto config = load_config(path);
  asio::io_context ctx;
  auto work = asio::make_work_guard(ctx);
  std::thread worker([&] { ctx.run(); });
  ratelimit::SharedLimiter limiter;
  Services s;
  s.limiter = &limiter;
  PolicyRuntime rt(path, {}, config, s, {&ctx}, {nullptr});
  rt.start();
  EXPECT_EQ(rt.version(), 1u);
  auto old = rt.current(0);  // as a transaction in progress would hold it
  t.write(std::string(kHeader) + "mailgate.on(\"rcpt_to\", function() return end\n");  // syntax
  EXPECT_NE(rt.reload(), "");
  EXPECT_EQ(rt.version(), 1u);
  t.write(std::string(kHeader) + R"(mailgate.configure { bogus = 1 })");
  EXPECT_NE(rt.reload(), "");
  t.write(std::string(kHeader) +
          R"(mailgate.on("rcpt_to", function() return mailgate.reject(550, "v2") end))");
  EXPECT_EQ(rt.reload(), "");
  EXPECT_EQ(rt.version(), 2u);
  std::promise<std::uint64_t> seen;
  asio::post(ctx, [&] { seen.set_value(rt.current(0)->version()); });
  EXPECT_EQ(seen.get_future().get(), 2u);
  EXPECT_EQ(old->version(), 1u);  // still usable by whoever holds it
  work.reset();
  ctx.stop();
  worker.join();
}


// Issue 12 item 4: tenancy setters are checked like set_meta, read back as
// fields, and an invalid value is a Lua error (the hook tempfails).
TEST(PolicyRuntime, TenancySettersValidateAndReadBack) {
  Harness h(R"(
    mailgate.on("message", function(tx, msg)
      local bad = msg:header("X-Bad")
      if msg.tenant ~= nil or msg.campaign ~= nil or msg.priority ~= "normal" then
        return mailgate.reject(550, "not empty at first")
      end
      msg:set_tenant(msg:header("X-Tenant") or "acme")
      msg:set_campaign("spring-2026.a_b")
      msg:set_priority("high")
      if bad == "tenant" then msg:set_tenant("has space") end
      if bad == "long" then msg:set_campaign(string.rep("x", 65)) end
      if bad == "priority" then msg:set_priority("urgent") end
      if bad == "meta" then msg:set_meta("tenant", "a/b") end
      if bad == "slash" then msg:set_tenant("a/b") end
      if msg.tenant ~= "acme" or msg.campaign ~= "spring-2026.a_b" or msg.priority ~= "high" then
        return mailgate.reject(550, "read back: " .. tostring(msg.tenant))
      end
    end)
  )");
  auto run = [&](const std::string& bad, std::map<std::string, std::string>& meta) {
    HeaderSection headers(bad.empty() ? "Subject: x\r\n" : "X-Bad: " + bad + "\r\n");
    Message msg;
    msg.id = "abc";
    msg.headers = &headers;
    msg.meta = &meta;
    msg.meta_writable = true;
    TxInfo tx;
    Verdict v;
    h.run([&]() -> asio::awaitable<void> { v = co_await h.policy->message(tx, msg); });
    return v;
  };
  std::map<std::string, std::string> meta;
  auto v = run("", meta);
  EXPECT_EQ(v.kind, Verdict::Kind::None) << v.reply.text;
  EXPECT_EQ(meta["tenant"], "acme");
  EXPECT_EQ(meta["campaign"], "spring-2026.a_b");
  EXPECT_EQ(meta["priority"], "high");
  for (std::string bad : {"tenant", "long", "priority", "meta", "slash"}) {
    std::map<std::string, std::string> m;
    v = run(bad, m);
    EXPECT_EQ(v.kind, Verdict::Kind::Tempfail) << bad;
    EXPECT_EQ(v.reply.code, 451) << bad;
  }
}

}  // namespace
}  // namespace mailgate::policy
