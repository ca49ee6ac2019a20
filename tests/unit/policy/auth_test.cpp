// Unit tests for SMTP AUTH in the policy runtime: the auth event's verdict
// mapping (true / false / nil / verdicts / errors / a timeout caught by pcall,
// never an accept), the password masked in the hook's error log, conn.auth
// and tx.auth, mailgate.crypt_verify with $6$ and $y$ hashes made at test time
// (off the worker's loop, hook_timeout applying, a full queue failing the
// hook), mailgate.file_info, and the shipped auth_file plugin.
#include <crypt.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "policy/crypt.hpp"
#include "policy/runtime.hpp"
#include "ratelimit/shared_limiter.hpp"

namespace mailgate::policy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mailgate-auth-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& body) const {
    const auto path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << body;
    return path;
  }
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

// Hooks get 10 s (a loaded 2-core machine runs yescrypt slowly) except in
// the tests of hook_timeout, which use 300 ms.

// A crypt(3) setting for `prefix` ("$6$", "$y$") at `cost` (0: default).
std::string setting(const char* prefix, unsigned long cost = 0) {
  char out[CRYPT_GENSALT_OUTPUT_SIZE];
  const char* s = crypt_gensalt_rn(prefix, cost, nullptr, 0, out, sizeof out);
  EXPECT_NE(s, nullptr) << prefix;
  return s ? s : "";
}

// The hash of `password` with a fresh salt.
std::string make_hash(const char* prefix, const std::string& password) {
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_rn(password.c_str(), setting(prefix).c_str(), data.get(), sizeof *data);
  EXPECT_NE(h, nullptr);
  return h ? h : "";
}

// Log lines written while it lives.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::string text() {
    spdlog::default_logger()->flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

struct Harness {
  explicit Harness(const std::string& lua, std::unique_ptr<CryptPool> pool = nullptr,
                   const std::string& hook_timeout = "10s")
      : crypt(pool ? std::move(pool) : std::make_unique<CryptPool>()) {
    path = tmp.write("mailgate.lua", "mailgate.configure { policy = { hook_timeout = \"" +
                                         hook_timeout +
                                         "\" } }\n"
                                         "mailgate.listen { address = \"127.0.0.1:0\" }\n" +
                                         lua);
    config = load_config(path);
    services.limiter = &limiter;
    services.crypt = crypt.get();
    policy = build_policy(path, 1, config, services, nullptr, &stats);
  }
  ~Harness() {
    policy.reset();
    crypt->stop();  // before ctx: its completions are posted there
  }
  template <class F>
  void run(F&& f) {
    asio::co_spawn(ctx, std::forward<F>(f), asio::detached);
    ctx.restart();
    ctx.run();
  }
  AuthVerdict auth(const std::string& user, const std::string& password,
                   const std::string& mechanism = "PLAIN") {
    AuthVerdict v;
    run([&]() -> asio::awaitable<void> {
      v = co_await policy->auth(conn, mechanism, user, password);
    });
    return v;
  }
  std::uint64_t errors() const { return stats.errors[static_cast<int>(Event::Auth)].load(); }

  TempDir tmp;
  std::string path;
  Config config;
  asio::io_context ctx;
  std::unique_ptr<CryptPool> crypt;  // after ctx: destroyed (joined) before it
  ratelimit::SharedLimiter limiter;
  Services services;
  HookStats stats;
  PolicyRef policy;
  ConnInfo conn{"192.0.2.1", 4000, "127.0.0.1", 587, "127.0.0.1:587", true, "client.test"};
};

void expect_refused(const AuthVerdict& v) {
  EXPECT_FALSE(v.accepted());
  EXPECT_FALSE(v.error);
  EXPECT_EQ(v.kind, AuthVerdict::Kind::Reject);
  EXPECT_EQ(v.reply.code, 535);
  EXPECT_EQ(v.reply.enhanced, "5.7.8");
}

void expect_failure(const AuthVerdict& v) {
  EXPECT_FALSE(v.accepted());
  EXPECT_TRUE(v.error);
  EXPECT_EQ(v.kind, AuthVerdict::Kind::Tempfail);
  EXPECT_EQ(v.reply.code, 454);
  EXPECT_EQ(v.reply.enhanced, "4.7.0");
}

// ---------------------------------------------------------------------------
// The auth event.

TEST(AuthHook, OnAuthIsAccepted) {
  EXPECT_NO_THROW(Harness("mailgate.on(\"auth\", function() return false end)\n"));
}

TEST(AuthHook, NoHandlerRefuses) {
  Harness h("");
  EXPECT_FALSE(h.policy->has(Event::Auth));
  expect_refused(h.auth("bob", "secret"));
}

TEST(AuthHook, VerdictMapping) {
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      if user == "good" then return password == "right" end
      if user == "blocked" then return mailgate.reject(535, "5.7.8 account locked") end
      if user == "later" then return mailgate.tempfail(454, "4.7.0 directory down") end
      -- nil: the next handler decides
    end)
    mailgate.on("auth", function(conn, mechanism, user, password)
      if user == "second" then return true end
    end)
  )");
  auto v = h.auth("good", "right");
  EXPECT_TRUE(v.accepted());
  EXPECT_FALSE(v.error);
  EXPECT_EQ(v.reply.code, 235);
  EXPECT_EQ(v.reply.enhanced, "2.7.0");
  expect_refused(h.auth("good", "wrong"));  // false
  v = h.auth("blocked", "x");
  EXPECT_EQ(v.kind, AuthVerdict::Kind::Reject);
  EXPECT_EQ(v.reply.code, 535);
  EXPECT_EQ(v.reply.text, "account locked");
  v = h.auth("later", "x");
  EXPECT_EQ(v.kind, AuthVerdict::Kind::Tempfail);
  EXPECT_FALSE(v.error);
  EXPECT_EQ(v.reply.code, 454);
  EXPECT_EQ(v.reply.text, "directory down");
  EXPECT_TRUE(h.auth("second", "anything").accepted());  // first handler nil, second true
  expect_refused(h.auth("nobody", "x"));                 // every handler nil
  EXPECT_EQ(h.errors(), 0u);
}

TEST(AuthHook, SeesConnMechanismUserAndPassword) {
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      return mailgate.reject(535, table.concat({conn.remote_ip, tostring(conn.tls), conn.helo,
        tostring(conn.auth), mechanism, user, password}, "|"))
    end)
  )");
  const auto v = h.auth("bob@example.com", "p w", "LOGIN");
  EXPECT_EQ(v.reply.text, "192.0.2.1|true|client.test|nil|LOGIN|bob@example.com|p w");
}

TEST(AuthHook, ErrorsAndBadResultsNeverAccept) {
  for (const char* body : {"error('boom')", "return mailgate.accept()", "return 'yes'", "return 1",
                           "return {}", "return {true}", "local x = nil; return x.y"}) {
    Harness h(std::string("mailgate.on(\"auth\", function() ") + body + " end)\n");
    expect_failure(h.auth("bob", "secret"));
    EXPECT_EQ(h.errors(), 1u) << body;
  }
}

TEST(AuthHook, ATimeoutCaughtByPcallIsAFailureNotAnAccept) {
  Harness h(R"(
    mailgate.on("auth", function()
      pcall(function() while true do end end)
      return true
    end)
  )",
            nullptr, "300ms");
  const auto t0 = Clock::now();
  const auto v = h.auth("bob", "secret");
  expect_failure(v);
  EXPECT_GE(Clock::now() - t0, 300ms);
  EXPECT_LT(Clock::now() - t0, 10s);
}

TEST(AuthHook, ThePasswordIsMaskedInTheErrorLog) {
  LogCapture log;
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      error("cannot check " .. user .. " with " .. password)
    end)
  )");
  expect_failure(h.auth("bob", "Tr0ub4dor&3"));
  const auto text = log.text();
  EXPECT_NE(text.find("lua auth hook failed"), std::string::npos) << text;
  EXPECT_NE(text.find("cannot check bob with ***"), std::string::npos) << text;
  EXPECT_EQ(text.find("Tr0ub4dor&3"), std::string::npos) << text;
}

TEST(AuthHook, ConnAuthAndTxAuthInLaterHooks) {
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      return mailgate.reject(550, tostring(tx.auth) .. "|" .. tostring(tx.conn.auth))
    end)
    mailgate.on("helo", function(conn, name)
      return mailgate.reject(550, tostring(conn.auth))
    end)
  )");
  auto rcpt = [&](const ConnInfo& conn) {
    Verdict v;
    TxInfo tx;
    tx.conn = &conn;
    tx.sender = make_address_info("s@example.com");
    h.run([&]() -> asio::awaitable<void> {
      v = co_await h.policy->rcpt_to(tx, make_address_info("r@example.net"));
    });
    return v.reply.text;
  };
  EXPECT_EQ(rcpt(h.conn), "nil|nil");
  ConnInfo authed = h.conn;
  authed.auth = "alice@example.com";
  EXPECT_EQ(rcpt(authed), "alice@example.com|alice@example.com");
  Verdict v;
  h.run([&]() -> asio::awaitable<void> { v = co_await h.policy->helo(authed, "x.test"); });
  EXPECT_EQ(v.reply.text, "alice@example.com");
}

// ---------------------------------------------------------------------------
// mailgate.crypt_verify.

TEST(CryptVerify, MatchesSha512AndYescryptHashesMadeNow) {
  const auto sha = make_hash("$6$", "correct horse");
  const auto yes = make_hash("$y$", "correct horse");
  ASSERT_EQ(sha.rfind("$6$", 0), 0u);
  ASSERT_EQ(yes.rfind("$y$", 0), 0u);
  for (const auto& hash : {sha, yes}) {
    EXPECT_TRUE(crypt_matches("correct horse", hash)) << hash;
    EXPECT_FALSE(crypt_matches("correct horse ", hash)) << hash;
    EXPECT_FALSE(crypt_matches("Correct horse", hash)) << hash;
    EXPECT_FALSE(crypt_matches("", hash)) << hash;
    EXPECT_FALSE(crypt_matches(std::string("correct horse\0x", 15), hash)) << hash;
    // A hash cut short or altered does not match.
    EXPECT_FALSE(crypt_matches("correct horse", hash.substr(0, hash.size() - 1))) << hash;
    std::string altered = hash;
    altered.back() = altered.back() == 'A' ? 'B' : 'A';
    EXPECT_FALSE(crypt_matches("correct horse", altered)) << hash;
  }
  const std::vector<std::string> malformed = {
      "",        "$6$", "$y$",  "$6$$",       "garbage",
      "!" + sha, "*",   "*LK*", "$9$abc$def", std::string(600, '$')};
  for (const auto& bad : malformed) {
    EXPECT_FALSE(crypt_matches("correct horse", bad)) << bad;
  }
}

TEST(CryptVerify, FromAHookThroughThePool) {
  const auto sha = make_hash("$6$", "s3cret");
  const auto yes = make_hash("$y$", "s3cret");
  Harness h(R"(
    hashes = { sha = ")" +
            sha + R"(", yes = ")" + yes + R"(", bad = "$6$nope" }
    mailgate.on("auth", function(conn, mechanism, user, password)
      local ok, result = pcall(mailgate.crypt_verify, password, hashes[user])
      return result
    end)
  )");
  EXPECT_TRUE(h.auth("sha", "s3cret").accepted());
  EXPECT_TRUE(h.auth("yes", "s3cret").accepted());
  expect_refused(h.auth("sha", "s3cret!"));
  expect_refused(h.auth("yes", "S3cret"));
  expect_refused(h.auth("bad", "s3cret"));  // a malformed hash is false, not an error
  EXPECT_EQ(h.crypt->checks(), 5u);
  EXPECT_EQ(h.errors(), 0u);
}

TEST(CryptVerify, DoesNotBlockTheWorkersLoop) {
  // yescrypt at cost 8 takes about a second of CPU: plenty of time for a
  // 20 ms timer on the same io_context to fire meanwhile, if (and only if)
  // the check runs elsewhere.
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      return mailgate.crypt_verify(password, user)
    end)
  )",
            nullptr, "30s");
  const auto slow = setting("$y$", 8);
  bool ticked_first = false, auth_done = false;
  asio::co_spawn(
      h.ctx,
      [&]() -> asio::awaitable<void> {
        (void)co_await h.policy->auth(h.conn, "PLAIN", slow, "pw");
        auth_done = true;
      },
      asio::detached);
  asio::co_spawn(
      h.ctx,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(h.ctx, 20ms);
        co_await t.async_wait(asio::use_awaitable);
        ticked_first = !auth_done;
      },
      asio::detached);
  h.ctx.restart();
  h.ctx.run();
  EXPECT_TRUE(auth_done);
  EXPECT_TRUE(ticked_first);
}

TEST(CryptVerify, HookTimeoutAppliesWhileWaiting) {
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      local ok, matched = pcall(mailgate.crypt_verify, password, user)
      return true  -- a timed-out call fails whatever it returns
    end)
  )",
            nullptr, "300ms");
  const auto slow = setting("$y$", 8);  // about a second: past the 300 ms hook_timeout
  const auto t0 = Clock::now();
  expect_failure(h.auth(slow, "pw"));
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST(CryptVerify, AFullQueueFailsTheHook) {
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      return mailgate.crypt_verify(password, "$6$abcdefgh$xyz")
    end)
  )",
            std::make_unique<CryptPool>(1, 0));  // a queue of none: every check refused
  expect_failure(h.auth("bob", "pw"));
  EXPECT_EQ(h.crypt->refused(), 1u);
}

TEST(CryptVerify, OnlyInsideAHookAndFromItsOwnThread) {
  EXPECT_THROW(Harness("mailgate.crypt_verify('a', '$6$x$y')\n"), ConfigError);
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      local co = coroutine.wrap(function() return mailgate.crypt_verify(password, "$6$x$y") end)
      return co()
    end)
  )");
  expect_failure(h.auth("bob", "pw"));
}

TEST(CryptVerify, CannotMatchMeansFalseAtOnce) {
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      return mailgate.crypt_verify(password, user)
    end)
  )");
  expect_refused(h.auth("", "pw"));
  expect_refused(h.auth("$6$x$y", ""));
  expect_refused(h.auth(std::string("$6$x\0y", 6), "pw"));
  EXPECT_EQ(h.crypt->checks(), 0u);  // none of these reached the pool
}

// ---------------------------------------------------------------------------
// SMTP AUTH to a smarthost: the route result's auth table.

TEST(RouteAuth, CredentialsMakeTheirOwnDestination) {
  LogCapture log;
  Harness h(R"(
    mailgate.on("route", function(msg, domain)
      local routes = {
        ["a.test"] = { smarthost = "[127.0.0.1]:2525", auth = { user = "app@example.com", password = "p:w d" } },
        ["b.test"] = { smarthost = "relay.test:587", tls = "required",
                       auth = { user = "u", password = "x", plaintext = true } },
        ["c.test"] = { smarthost = "relay.test:587", auth = { user = "u" } },
        ["d.test"] = { smarthost = "relay.test:587", auth = { user = "u", password = "" } },
        ["e.test"] = { smarthost = "relay.test:587", auth = { user = "a b", password = "x" } },
        ["f.test"] = { smarthost = "relay.test:587", auth = { user = "u", password = "x", pass = 1 } },
        ["g.test"] = { smarthost = "relay.test:587", auth = "u:x" },
        ["h.test"] = { smarthost = "relay.test:587", auth = { user = "u", password = "x\0y" } },
        ["i.test"] = { smarthost = "relay.test:587", auth = { user = "u", password = "hunter2", plaintext = "yes" } },
        ["j.test"] = { smarthost = "relay.test:587", auth = { user = "u\r\nRCPT", password = "x" } },
      }
      return routes[domain]
    end)
  )");
  Message msg;
  auto route = [&](const char* d) {
    RouteDecision r;
    h.run([&]() -> asio::awaitable<void> { r = co_await h.policy->route(msg, d); });
    return r;
  };
  auto r = route("a.test");
  ASSERT_FALSE(r.failure.error);
  EXPECT_EQ(r.kind, RouteDecision::Kind::Smarthost);
  EXPECT_EQ(r.destination, "app@example.com@[127.0.0.1]:2525");
  ASSERT_TRUE(r.auth);
  EXPECT_EQ(r.auth->user, "app@example.com");
  EXPECT_EQ(r.auth->password, "p:w d");
  EXPECT_FALSE(r.auth->plaintext);
  r = route("b.test");
  EXPECT_EQ(r.destination, "u@[relay.test]:587");
  EXPECT_EQ(r.tls, "required");
  ASSERT_TRUE(r.auth);
  EXPECT_TRUE(r.auth->plaintext);
  for (const char* d :
       {"c.test", "d.test", "e.test", "f.test", "g.test", "h.test", "i.test", "j.test"})
    EXPECT_TRUE(route(d).failure.error) << d;
  EXPECT_EQ(log.text().find("hunter2"), std::string::npos);
}

// ---------------------------------------------------------------------------
// mailgate.file_info.

TEST(FileInfo, SizeAndModificationTimeOfRegularFilesOnly) {
  TempDir files;
  const auto f = files.write("users", "0123456789");
  Harness h(R"(
    mailgate.on("auth", function(conn, mechanism, user, password)
      local info, err = mailgate.file_info(user)
      if not info then return mailgate.reject(535, "nil:" .. err:gsub("^.*: ", "")) end
      return mailgate.reject(535, info.size .. "|" .. tostring(info.mtime > 1600000000) .. "|" ..
        tostring(info.mtime_ns // 1000000000 == info.mtime))
    end)
  )");
  EXPECT_EQ(h.auth(f, "x").reply.text, "10|true|true");
  EXPECT_EQ(h.auth(files.path() + "/missing", "x").reply.text, "nil:No such file or directory");
  EXPECT_EQ(h.auth(files.path(), "x").reply.text, "nil:not a regular file");
}

// ---------------------------------------------------------------------------
// The auth_file plugin.

TEST(AuthFile, ChecksUsersFromTheFileAndReadsItAgainWhenItChanges) {
  TempDir files;
  const auto alice = make_hash("$6$", "alice-pw");
  const auto bob = make_hash("$y$", "bob-pw");
  const auto users = files.write("users", "# users of the gateway\r\n\nalice:" + alice +
                                              "\r\n  bob@example.com:" + bob + "  \n");
  Harness h("mailgate.use(\"auth_file\", { path = \"" + users + "\" })\n");
  EXPECT_TRUE(h.auth("alice", "alice-pw").accepted());
  EXPECT_TRUE(h.auth("bob@example.com", "bob-pw", "LOGIN").accepted());
  expect_refused(h.auth("alice", "bob-pw"));
  expect_refused(h.auth("Alice", "alice-pw"));  // user names are exact
  // An unknown user costs a crypt check all the same (no timing oracle).
  const auto before = h.crypt->checks();
  expect_refused(h.auth("mallory", "alice-pw"));
  EXPECT_EQ(h.crypt->checks(), before + 1);

  // A new password (and a new user): picked up at the next AUTH.
  const auto alice2 = make_hash("$6$", "alice-new");
  files.write("users", "alice:" + alice2 + "\ncarol:" + make_hash("$6$", "carol-pw") + "\n");
  EXPECT_TRUE(h.auth("alice", "alice-new").accepted());
  expect_refused(h.auth("alice", "alice-pw"));
  EXPECT_TRUE(h.auth("carol", "carol-pw").accepted());
  expect_refused(h.auth("bob@example.com", "bob-pw"));

  // A broken or vanished file keeps the users read before, and says so.
  LogCapture log;
  files.write("users", "this line has no hash\n");
  EXPECT_TRUE(h.auth("alice", "alice-new").accepted());
  std::filesystem::remove(users);
  EXPECT_TRUE(h.auth("carol", "carol-pw").accepted());
  const auto text = log.text();
  EXPECT_NE(text.find("users:1: expected 'user:crypt-hash'; keeping the users read before"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("alice-new"), std::string::npos);
  EXPECT_EQ(h.errors(), 0u);
}

TEST(AuthFile, AMissingOrBrokenFileIsAConfigError) {
  TempDir files;
  auto message = [](const std::string& lua) {
    try {
      Harness h(lua);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("mailgate.use(\"auth_file\", { path = \"" + files.path() + "/nope\" })\n")
                .find("auth_file: cannot read"),
            std::string::npos);
  EXPECT_NE(message("mailgate.use(\"auth_file\", {})\n").find("option 'path'"), std::string::npos);
  const auto dup = files.write("dup", "a:$6$x$y\nb:$6$x$y\na:$6$x$z\n");
  EXPECT_NE(message("mailgate.use(\"auth_file\", { path = \"" + dup + "\" })\n")
                .find("dup:3: user 'a' listed twice"),
            std::string::npos);
  const auto bad = files.write("bad", "# ok\n:$6$x$y\n");
  EXPECT_NE(message("mailgate.use(\"auth_file\", { path = \"" + bad + "\" })\n")
                .find("bad:2: expected 'user:crypt-hash'"),
            std::string::npos);
}

TEST(AuthFile, AnEmptyFileRefusesEveryoneAtTheCostOfACheck) {
  TempDir files;
  const auto users = files.write("users", "# nobody yet\n");
  Harness h("mailgate.use(\"auth_file\", { path = \"" + users + "\" })\n");
  expect_refused(h.auth("alice", "pw"));
  EXPECT_EQ(h.crypt->checks(), 1u);
}

}  // namespace
}  // namespace mailgate::policy
