// Unit tests of what holds a hook call to policy.hook_timeout and
// policy.memory_limit whatever its code does (policy/sandbox, lua_state,
// lua_patterns): a timeout caught by pcall/xpcall/coroutines still fails the
// call (never an accept); coroutines a hook makes are interrupted; runaway
// patterns stop at the deadline; an allocation past the limit fails the call
// and the next call runs in a fresh state of the same version; and which
// libraries policy code gets (at load time and in hooks alike).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "policy/runtime.hpp"
#include "ratelimit/shared_limiter.hpp"

namespace mailgate::policy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The hook timeout of these tests, and the most any failing call may take on
// a loaded machine (generous: what matters is that it ends).
constexpr auto kTimeout = 300ms;
constexpr auto kLongest = 10s;
// The hook timeout of the memory tests: filling 8MB with small strings takes
// about 300ms under ASan (scripts/asan), so with kTimeout those tests would
// race the timeout instead of testing the memory limit.
constexpr const char* kMemoryTestTimeout = "5s";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mailgate-limits-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& body) const {
    const auto path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << body;
    return path;
  }
  const std::string& path() const { return dir_; }

 private:
  std::string dir_;
};

struct Harness {
  explicit Harness(const std::string& lua, const std::string& policy_keys = "",
                   const std::string& hook_timeout = "300ms") {
    path = tmp.write("mailgate.lua", config_text(lua, policy_keys, hook_timeout));
    config = load_config(path);
    services.limiter = &limiter;
    policy = build_policy(path, 1, config, services, nullptr, &stats);
  }
  static std::string config_text(const std::string& lua, const std::string& policy_keys,
                                 const std::string& hook_timeout = "300ms") {
    return "mailgate.configure { policy = { hook_timeout = \"" + hook_timeout + "\", " +
           policy_keys + " } }\nmailgate.listen { address = \"127.0.0.1:0\" }\n" + lua;
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
  Verdict helo(const std::string& name) {
    Verdict v;
    ConnInfo conn{"192.0.2.1", 4000, "127.0.0.1", 25, "127.0.0.1:25", false, ""};
    run([&]() -> asio::awaitable<void> { v = co_await policy->helo(conn, name); });
    return v;
  }
  std::uint64_t errors(Event e) const { return stats.errors[static_cast<int>(e)].load(); }

  TempDir tmp;
  std::string path;
  Config config;
  asio::io_context ctx;
  ratelimit::SharedLimiter limiter;
  Services services;
  HookStats stats;
  PolicyRef policy;
};

// A verdict that is the hook failure: 451 4.3.0, error set.
void expect_failure(const Verdict& v) {
  EXPECT_TRUE(v.error);
  EXPECT_EQ(v.kind, Verdict::Kind::Tempfail);
  EXPECT_EQ(v.reply.code, 451);
  EXPECT_EQ(v.reply.enhanced, "4.3.0");
}

// Runs `call` and checks that it is the hook failure, reached at the deadline.
template <class F>
void expect_timeout(F&& call) {
  const auto t0 = Clock::now();
  const Verdict v = call();
  const auto took = Clock::now() - t0;
  expect_failure(v);
  EXPECT_GE(took, kTimeout);
  EXPECT_LT(took, kLongest);
}

// --------------------------------------------------------------------------
// Timeouts that the script catches.

TEST(PolicyLimits, PcallAroundABusyLoopThenAcceptIsAFailureNotAnAccept) {
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      local ok, err = pcall(function() while true do end end)
      return mailgate.accept()
    end)
  )");
  expect_timeout([&] { return h.rcpt("a@elsewhere.test"); });
  EXPECT_EQ(h.errors(Event::RcptTo), 1u);
  // The state is fine afterwards: the next call runs (and times out) again.
  expect_timeout([&] { return h.rcpt("b@elsewhere.test"); });
}

TEST(PolicyLimits, ALoopOfPcallsCannotKeepRunning) {
  Harness h(R"(
    mailgate.on("rcpt_to", function()
      while true do pcall(function() while true do end end) end
    end)
  )");
  expect_timeout([&] { return h.rcpt("a@b.test"); });
}

TEST(PolicyLimits, NonStringErrorsAndErrorHandlersCannotSwallowATimeout) {
  const char* hooks[] = {
      // Errors that are tables, caught again and again.
      R"(while true do pcall(error, {}) end)",
      // A handler that spins, then returns accept.
      R"(xpcall(function() while true do end end, function(e) while true do end end)
         return mailgate.accept())",
      // A handler that calls pcall and coroutine.wrap on busy loops.
      R"(xpcall(function() while true do end end, function(e)
           pcall(function() while true do end end)
           coroutine.wrap(function() while true do end end)()
           return e
         end)
         return mailgate.accept())",
      // pcall on the resume of a coroutine that catches everything itself.
      R"(local co = coroutine.create(function()
           while true do pcall(function() while true do end end) end
         end)
         while true do pcall(coroutine.resume, co) end)",
      // A reader function of load that spins (load catches its errors).
      R"(while true do load(function() while true do end end) end)",
      // coroutine.close running a to-be-closed variable's busy __close.
      R"(while true do
           local co = coroutine.create(function()
             local x <close> = setmetatable({}, { __close = function() while true do end end })
             coroutine.yield()
           end)
           coroutine.resume(co)
           coroutine.close(co)
         end)",
  };
  for (const char* body : hooks) {
    Harness h(std::string("mailgate.on(\"rcpt_to\", function()\n") + body + "\nend)\n");
    expect_timeout([&] { return h.rcpt("a@b.test"); });
    EXPECT_EQ(h.errors(Event::RcptTo), 1u) << body;
  }
}

TEST(PolicyLimits, CloseHandlersOfAStoppedCallDoNotRunAfterIt) {
  Harness h(R"(
    closed = 0
    mailgate.on("rcpt_to", function(tx, rcpt)
      if rcpt.user == "count" then return mailgate.reject(550, "closed " .. closed) end
      local x <close> = setmetatable({}, {
        __close = function() closed = closed + 1 while true do end end })
      if rcpt.user == "error" then error("boom") end
      while true do end
    end)
  )");
  expect_timeout([&] { return h.rcpt("spin@b.test"); });
  const auto t0 = Clock::now();
  expect_failure(h.rcpt("error@b.test"));
  EXPECT_LT(Clock::now() - t0, kLongest);
  EXPECT_EQ(h.rcpt("count@b.test").reply.text, "closed 0");
}

TEST(PolicyLimits, BusyLoopsInCoroutinesAreInterrupted) {
  const char* hooks[] = {
      R"(coroutine.wrap(function() while true do end end)())",
      R"(local co = coroutine.create(function() while true do end end)
         coroutine.resume(co)
         return mailgate.accept())",
      // A coroutine made while the config file ran, resumed in a hook.
      R"(coroutine.resume(made_at_load))",
      R"(coroutine.wrap(function() coroutine.wrap(function() while true do end end)() end)())",
  };
  for (const char* body : hooks) {
    Harness h(std::string("made_at_load = coroutine.create(function() while true do end end)\n") +
              "mailgate.on(\"helo\", function(conn, name)\n" + body + "\nend)\n");
    expect_timeout([&] { return h.helo("client.test"); });
  }
}

TEST(PolicyLimits, DnsMxFromACoroutineOfTheHookIsAnErrorNotAHang) {
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      local ok, err = coroutine.resume(coroutine.create(function() mailgate.dns.mx("x.test") end))
      return mailgate.reject(550, tostring(ok) .. " " .. err)
    end)
  )");
  const auto v = h.rcpt("a@b.test");
  EXPECT_FALSE(v.error);
  EXPECT_NE(v.reply.text.find("false"), std::string::npos) << v.reply.text;
  EXPECT_NE(v.reply.text.find("hook's own code"), std::string::npos) << v.reply.text;
}

// --------------------------------------------------------------------------
// Patterns.

TEST(PolicyLimits, CatastrophicPatternsStopAtTheDeadline) {
  const char* hooks[] = {
      R"(string.find(string.rep("a", 200), ".-.-.-.-b"))",
      R"(local ok = pcall(string.match, string.rep("a", 200), ".-.-.-.-b")
         return mailgate.accept())",
      R"(for x in string.gmatch(string.rep("a", 200), "(.-)(.-)(.-)(.-)b") do end)",
      R"(string.gsub(string.rep("a", 200), ".-.-.-.-b", "x"))",
      R"((string.rep("a", 300)):find("a*a*a*a*a*b"))",
  };
  for (const char* body : hooks) {
    Harness h(std::string("mailgate.on(\"rcpt_to\", function()\n") + body + "\nend)\n");
    expect_timeout([&] { return h.rcpt("a@b.test"); });
  }
}

TEST(PolicyLimits, PlainFindStaysFastAndPatternsStillWork) {
  Harness h(R"(
    mailgate.on("rcpt_to", function(tx, rcpt)
      local hay = string.rep("a", 2000000)
      local plain = string.find(hay, string.rep("a", 200000) .. "b", 1, true)
      local user, domain = rcpt.address:match("^([^@]+)@(.+)$")
      return mailgate.reject(550, tostring(plain) .. " " .. user .. " " .. domain)
    end)
  )");
  const auto t0 = Clock::now();
  const auto v = h.rcpt("someone@example.test");
  EXPECT_FALSE(v.error);
  EXPECT_EQ(v.reply.text, "nil someone example.test");
  EXPECT_LT(Clock::now() - t0, kTimeout);
}

// --------------------------------------------------------------------------
// Memory.

constexpr const char* kMemoryHook = R"(
  calls = 0
  mailgate.on("rcpt_to", function(tx, rcpt)
    calls = calls + 1
    if rcpt.user == "blowup" then
      local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1000) end
    elseif rcpt.user == "caught" then
      pcall(function() local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1000) end end)
      return mailgate.accept()
    elseif rcpt.user == "garbage" then
      -- 100MB allocated in all, never more than 1MB of it alive.
      for i = 1, 100 do local s = string.rep(tostring(i), 500000) end
    end
    return mailgate.reject(550, "v1 call " .. calls)
  end)
)";

TEST(PolicyLimits, AllocationPastTheLimitFailsTheCallAndTheNextRunsInAFreshState) {
  Harness h(kMemoryHook, "memory_limit = \"8MB\"", kMemoryTestTimeout);
  EXPECT_EQ(h.rcpt("a@b.test").reply.text, "v1 call 1");
  EXPECT_EQ(h.rcpt("a@b.test").reply.text, "v1 call 2");
  // The file changes on disk: a replacement must still be the version built.
  h.tmp.write("mailgate.lua", Harness::config_text(R"(mailgate.on("rcpt_to", function() return
                                      mailgate.reject(550, "v2") end))",
                                                   "memory_limit = \"8MB\""));
  const auto t0 = Clock::now();
  expect_failure(h.rcpt("blowup@b.test"));
  EXPECT_LT(Clock::now() - t0, kLongest);
  EXPECT_EQ(h.errors(Event::RcptTo), 1u);
  // A fresh state of the same version: its globals start again.
  EXPECT_EQ(h.rcpt("a@b.test").reply.text, "v1 call 1");
  // Caught by pcall, then accept: still the failure.
  expect_failure(h.rcpt("caught@b.test"));
  EXPECT_EQ(h.rcpt("a@b.test").reply.text, "v1 call 1");
  // Garbage the collector can free is no failure.
  const auto v = h.rcpt("garbage@b.test");
  EXPECT_FALSE(v.error) << v.reply.text;
  EXPECT_EQ(v.reply.text, "v1 call 2");
}

TEST(PolicyLimits, AReplacedStateLoadsTheSamePluginText) {
  TempDir tmp;
  const char* plugin = R"(return function(opts)
    mailgate.on("rcpt_to", function(tx, rcpt)
      if rcpt.user == "blowup" then
        local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1000) end
      end
      return mailgate.reject(550, "%s " .. type(opts) .. " " .. tostring(next(opts)))
    end)
  end)";
  auto plugin_text = [&](const char* version) {
    std::string text = plugin;
    text.replace(text.find("%s"), 2, version);
    return text;
  };
  tmp.write("plugins/local_thing.lua", plugin_text("v1"));
  const auto path =
      tmp.write("mailgate.lua", Harness::config_text("mailgate.use(\"local_thing\")",
                                                     "memory_limit = \"8MB\"", kMemoryTestTimeout));
  const auto config = load_config(path);
  ratelimit::SharedLimiter limiter;
  Services s;
  s.limiter = &limiter;
  auto policy = build_policy(path, 1, config, s, nullptr, nullptr);
  asio::io_context ctx;
  auto rcpt = [&](const char* address) {
    Verdict v;
    TxInfo tx;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          v = co_await policy->rcpt_to(tx, make_address_info(address));
        },
        asio::detached);
    ctx.restart();
    ctx.run();
    return v;
  };
  EXPECT_EQ(rcpt("a@b.test").reply.text, "v1 table nil");  // no options: an empty table
  tmp.write("plugins/local_thing.lua", plugin_text("v2"));
  expect_failure(rcpt("blowup@b.test"));
  EXPECT_EQ(rcpt("a@b.test").reply.text, "v1 table nil");
}

TEST(PolicyLimits, AConfigFileThatNeedsMoreThanTheLimitIsAConfigError) {
  TempDir tmp;
  const auto path = tmp.write(
      "mailgate.lua", Harness::config_text("big = {} for i = 1, 1e5 do big[i] = tostring(i) end",
                                           "memory_limit = \"1MB\""));
  const auto config = load_config(path);  // check-config has no limit
  ratelimit::SharedLimiter limiter;
  Services s;
  s.limiter = &limiter;
  try {
    build_policy(path, 1, config, s, nullptr, nullptr);
    FAIL() << "built";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("policy.memory_limit"), std::string::npos) << e.what();
  }
}

// --------------------------------------------------------------------------
// Libraries.

// Checks run at load time (check-config's state and the worker's build) and
// in a hook: the same environment everywhere.
constexpr const char* kLibraryChecks = R"(
  local function check()
    local bad = {}
    local function expect(cond, what) if not cond then bad[#bad + 1] = what end end
    expect(io == nil, "io")
    expect(package == nil and require == nil, "package/require")
    expect(dofile == nil and loadfile == nil, "dofile/loadfile")
    expect(os.execute == nil and os.exit == nil and os.remove == nil and os.rename == nil and
           os.tmpname == nil and os.setlocale == nil, "os extras")
    expect(type(os.time()) == "number" and type(os.clock()) == "number" and
           type(os.date("!%Y")) == "string" and os.difftime(2, 1) == 1 and
           type(os.getenv("PATH")) == "string", "os.time/clock/date/difftime/getenv")
    expect(debug.sethook == nil and debug.getregistry == nil and debug.setmetatable == nil,
           "debug extras")
    expect(type(debug.traceback()) == "string", "debug.traceback")
    expect(load("return 1 + 1")() == 2, "load text")
    local f, err = load(string.dump(function() return 1 end))
    expect(f == nil and err:find("binary chunk", 1, true), "load binary")
    expect(load("return x", "=env", "t", { x = 7 })() == 7, "load env")
    expect(not pcall(setmetatable, {}, { __gc = function() end }), "__gc refused")
    expect(getmetatable(setmetatable({}, { __index = {} })) ~= nil, "setmetatable")
    expect(not pcall(collectgarbage, "stop"), "collectgarbage stop")
    expect(type(collectgarbage("count")) == "number", "collectgarbage count")
    expect(select("#", pcall(error)) == 2, "pcall results")
    expect(coroutine.wrap(function() return 5 end)() == 5, "coroutine.wrap")
    expect(math.floor(2.5) == 2 and utf8.char(72) == "H" and table.concat({ 1, 2 }) == "12",
           "math/utf8/table")
    return table.concat(bad, ", ")
  end
  local at_load = check()
  if at_load ~= "" then error("at load: " .. at_load) end
  mailgate.on("rcpt_to", function()
    return mailgate.reject(550, "in hook: " .. check())
  end)
)";

TEST(PolicyLimits, PolicyCodeGetsTheSandboxedLibrariesAtLoadAndInHooks) {
  Harness h(kLibraryChecks);  // load_config and build_policy ran the load-time checks
  const auto v = h.rcpt("a@b.test");
  EXPECT_FALSE(v.error);
  EXPECT_EQ(v.reply.text, "in hook: ");
}

TEST(PolicyLimits, ReadFileReadsRegularFilesOnly) {
  TempDir files;
  files.write("routes.txt", "partner.test [127.0.0.1]:2525\n");
  const auto fifo = files.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Harness h(R"(
    dir = ")" +
            files.path() +
            R"("
    mailgate.on("rcpt_to", function(tx, rcpt)
      local out = {}
      local function try(...)
        local text, err = mailgate.read_file(...)
        out[#out + 1] = text or ("nil:" .. err:gsub("^.*: ", ""))
      end
      try(dir .. "/routes.txt")
      try(dir .. "/missing.txt")
      try(dir)
      try(dir .. "/fifo")
      try(dir .. "/routes.txt", 5)
      return mailgate.reject(550, table.concat(out, "|"))
    end)
  )");
  const auto v = h.rcpt("a@b.test");
  EXPECT_EQ(v.reply.text,
            "partner.test [127.0.0.1]:2525\n|nil:No such file or directory|nil:not a regular "
            "file|nil:not a regular file|nil:larger than 5 bytes");
}

TEST(PolicyLimits, RoutingTableReadsItsFileWithoutIo) {
  TempDir files;
  const auto routes = files.write("routes.txt", "partner.test [127.0.0.9]:2525 tls=disabled\n");
  Harness h("mailgate.use(\"routing_table\", { file = \"" + routes + "\", check_interval = 0 })\n");
  Message msg;
  RouteDecision r;
  h.run([&]() -> asio::awaitable<void> { r = co_await h.policy->route(msg, "partner.test"); });
  EXPECT_FALSE(r.failure.error);
  EXPECT_EQ(r.kind, RouteDecision::Kind::Smarthost);
  EXPECT_EQ(r.destination, "[127.0.0.9]:2525");
  EXPECT_EQ(r.tls, smtp::TlsMode::Disabled);
  files.write("routes.txt", "partner.test discard\n");
  h.run([&]() -> asio::awaitable<void> { r = co_await h.policy->route(msg, "partner.test"); });
  EXPECT_EQ(r.kind, RouteDecision::Kind::Discard);
}

}  // namespace
}  // namespace mailgate::policy
