// What a Lua hook call costs on a worker: the round trip of an rcpt_to call
// (new Lua thread, arguments as tables, dispatcher, verdict read back) with
// no handler, with an empty handler, and through the shipped recipient_check
// plugin answering from its cache (the DNS answer came from a real dnsmasq on
// loopback once, before timing).
#include <benchmark/benchmark.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <memory>

#include "../tests/unit/dns/dnsmasq_fixture.hpp"
#include "dns/resolver.hpp"
#include "policy/runtime.hpp"
#include "ratelimit/shared_limiter.hpp"

namespace {

using namespace mailgate;

struct Bench {
  explicit Bench(const std::string& lua, const std::string& dns_server = "127.0.0.1:1") {
    char tmpl[] = "/tmp/mailgate-policy-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/mailgate.lua";
    std::ofstream(path) << "mailgate.listen { address = '127.0.0.1:0' }\n" << lua;
    config = policy::load_config(path);
    dns::ResolverOptions opts;
    opts.servers = {dns_server};
    resolver = std::make_unique<dns::Resolver>(ctx, opts);
    services.limiter = &limiter;
    policy = policy::build_policy(path, 1, config, services, resolver.get(), &stats);
    conn.remote_ip = "192.0.2.10";
    conn.listener = "127.0.0.1:2525";
    conn.helo = "client.example";
    tx.conn = &conn;
    tx.sender = policy::make_address_info("sender@example.org");
    rcpt = policy::make_address_info("rcpt@bench.test");
  }
  ~Bench() {
    resolver->shutdown();
    ctx.restart();
    ctx.run();
    std::filesystem::remove_all(dir);
  }

  // Runs the benchmark loop inside one coroutine on the io_context, as a
  // session would call the hook.
  void run(benchmark::State& state) {
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
          for (auto _ : state) {
            auto v = co_await policy->rcpt_to(tx, rcpt);
            benchmark::DoNotOptimize(v);
          }
        },
        asio::detached);
    ctx.restart();
    ctx.run();
  }

  std::string dir, path;
  policy::Config config;
  asio::io_context ctx;
  std::unique_ptr<dns::Resolver> resolver;
  ratelimit::SharedLimiter limiter;
  policy::Services services;
  policy::HookStats stats;
  policy::PolicyRef policy;
  policy::ConnInfo conn;
  policy::TxInfo tx;
  policy::AddressInfo rcpt;
};

void BM_RcptTo_NoHandler(benchmark::State& state) {
  Bench b("");
  b.run(state);
}
BENCHMARK(BM_RcptTo_NoHandler);

void BM_RcptTo_EmptyHandler(benchmark::State& state) {
  Bench b("mailgate.on('rcpt_to', function(tx, rcpt) end)\n");
  b.run(state);
}
BENCHMARK(BM_RcptTo_EmptyHandler);

void BM_RcptTo_RecipientCheckCached(benchmark::State& state) {
  dns::testing::Dnsmasq dnsmasq(
      {"--mx-host=bench.test,mx.bench.test,10", "--host-record=mx.bench.test,127.0.0.1"});
  Bench b("mailgate.use('recipient_check', { cache_ttl = '10m' })\n", dnsmasq.server());
  // Prime the plugin's cache with one real lookup.
  asio::co_spawn(
      b.ctx,
      [&]() -> asio::awaitable<void> {
        auto v = co_await b.policy->rcpt_to(b.tx, b.rcpt);
        if (v.kind != policy::Verdict::Kind::None) state.SkipWithError("priming lookup failed");
      },
      asio::detached);
  b.ctx.run();
  b.run(state);
}
BENCHMARK(BM_RcptTo_RecipientCheckCached);

}  // namespace

BENCHMARK_MAIN();
