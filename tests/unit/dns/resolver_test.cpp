// The resolver against a real DNS server (dnsmasq on loopback): MX selection,
// implicit and null MX, NXDOMAIN/NODATA, IDN, caching by TTL, coalescing,
// timeouts, and that a slow query never blocks the io_context.
#include "dns/resolver.hpp"

#include <gtest/gtest.h>
#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <set>

#include "dnsmasq_fixture.hpp"

namespace mailgate::dns {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Dnsmasq;
using testing::SilentServer;

// Runs one call to completion on ctx; fails the test if it takes over `limit`.
template <class T>
std::optional<T> run(asio::io_context& ctx, asio::awaitable<T> call,
                     std::chrono::milliseconds limit = 10s) {
  std::optional<T> out;
  asio::co_spawn(ctx, std::move(call), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  ctx.restart();
  ctx.run_for(limit);
  EXPECT_TRUE(out) << "call did not complete within " << limit.count() << " ms";
  return out;
}

std::vector<std::string> names(const std::vector<MxHost>& hosts) {
  std::vector<std::string> out;
  for (const auto& h : hosts) out.push_back(h.name);
  return out;
}

std::vector<std::string> strings(const std::vector<asio::ip::address>& addrs) {
  std::vector<std::string> out;
  for (const auto& a : addrs) out.push_back(a.to_string());
  return out;
}

class ResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::vector<std::string> records = {
        "--mx-host=multi.test,mx1.multi.test,10",
        "--mx-host=multi.test,mx2.multi.test,20",
        "--mx-host=multi.test,mxa.multi.test,30",
        "--mx-host=multi.test,mxb.multi.test,30",
        "--host-record=mx1.multi.test,127.0.0.1,::1",
        "--host-record=mx2.multi.test,127.0.0.2",
        "--host-record=v6only.test,::2",
        "--host-record=implicit.test,127.0.0.5",
        "--mx-host=null.test,.,0",  // RFC 7505 null MX: MX 0 "."
        "--mx-host=mixed.test,.,0",
        "--mx-host=mixed.test,mx1.multi.test,10",
        "--txt-record=nomail.test,no mail here",
        "--mx-host=xn--bcher-kva.test,mx1.multi.test,10",  // bücher.test
        "--host-record=xn--caf-dma.test,127.0.0.4",        // café.test: implicit MX
    };
    // Too big for a 512-octet UDP answer: truncated, so c-ares retries over TCP.
    for (int i = 1; i <= 30; ++i) {
      records.push_back("--mx-host=big.test,mx-with-a-rather-long-name-" + std::to_string(i) +
                        ".big.test," + std::to_string(i));
    }
    dns_ = std::make_unique<Dnsmasq>(records);
  }
  static void TearDownTestSuite() { dns_.reset(); }

  ResolverOptions options() const {
    ResolverOptions o;
    o.servers = {dns_->server()};
    o.timeout = 2000ms;
    return o;
  }

  static std::unique_ptr<Dnsmasq> dns_;
  asio::io_context ctx_;
};
std::unique_ptr<Dnsmasq> ResolverTest::dns_;

TEST_F(ResolverTest, MxByPreferenceEqualPreferencesShuffled) {
  Resolver r(ctx_, options());
  std::set<std::vector<std::string>> orders;
  for (int i = 0; i < 60; ++i) {
    auto a = run(ctx_, r.mx("multi.test"));
    ASSERT_TRUE(a);
    ASSERT_EQ(a->status, Status::Ok) << a->detail;
    EXPECT_FALSE(a->implicit);
    ASSERT_EQ(a->hosts.size(), 4u);
    EXPECT_EQ(a->hosts[0], (MxHost{"mx1.multi.test", 10}));
    EXPECT_EQ(a->hosts[1], (MxHost{"mx2.multi.test", 20}));
    EXPECT_EQ(a->hosts[2].preference, 30);
    EXPECT_EQ(a->hosts[3].preference, 30);
    orders.insert(names(a->hosts));
  }
  EXPECT_EQ(orders.size(), 2u) << "mxa/mxb should come in both orders (shuffled per call)";
  EXPECT_EQ(r.stats().queries.load(), 1u);  // the other 59 were cache hits
  EXPECT_EQ(r.stats().cache_hits.load(), 59u);
  EXPECT_EQ(r.stats().ok.load(), 60u);
}

TEST_F(ResolverTest, ImplicitMxWhenTheDomainHasOnlyAddresses) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("implicit.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  EXPECT_TRUE(a->implicit);
  EXPECT_EQ(a->hosts, (std::vector<MxHost>{{"implicit.test", 0}}));
  EXPECT_EQ(r.stats().queries.load(), 3u);  // MX (NODATA), A, AAAA
  auto addrs = run(ctx_, r.addresses("implicit.test"));
  ASSERT_TRUE(addrs);
  EXPECT_EQ(strings(addrs->addresses), (std::vector<std::string>{"127.0.0.5"}));
  EXPECT_EQ(r.stats().queries.load(), 3u);  // served from the cache
}

TEST_F(ResolverTest, NullMxIsPermanent) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("null.test"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::NullMx) << a->detail;
  EXPECT_TRUE(a->hosts.empty());
  EXPECT_EQ(failure_reply(a->status).code, 556);
  EXPECT_EQ(failure_reply(a->status).enhanced, "5.1.10");
  EXPECT_EQ(r.stats().nullmx.load(), 1u);
}

TEST_F(ResolverTest, NullTargetAmongRealHostsIsIgnored) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("mixed.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  EXPECT_EQ(a->hosts, (std::vector<MxHost>{{"mx1.multi.test", 10}}));
}

TEST_F(ResolverTest, NxDomainIsPermanentAndCachedNegatively) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("nx.test"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::NxDomain) << a->detail;
  EXPECT_TRUE(is_permanent(a->status));
  EXPECT_EQ(a->ttl, 60u);  // dnsmasq sends no SOA: the fixed negative TTL
  auto again = run(ctx_, r.mx("nx.test"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, Status::NxDomain);
  EXPECT_EQ(r.stats().queries.load(), 1u);
  EXPECT_EQ(r.stats().cache_hits.load(), 1u);
  auto addrs = run(ctx_, r.addresses("nx.test"));
  ASSERT_TRUE(addrs);
  EXPECT_EQ(addrs->status, Status::NxDomain);
  EXPECT_EQ(r.stats().nxdomain.load(), 3u);
}

TEST_F(ResolverTest, NoMxAndNoAddressIsNoData) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("nomail.test"));  // the name exists (TXT) but has no MX, A, AAAA
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::NoData) << a->detail;
  EXPECT_FALSE(a->implicit);
  EXPECT_TRUE(a->hosts.empty());
  auto mxhost = run(ctx_, r.mx("mx2.multi.test"));  // NODATA for MX, A exists: implicit MX
  ASSERT_TRUE(mxhost);
  EXPECT_EQ(mxhost->status, Status::Ok);
  EXPECT_TRUE(mxhost->implicit);
}

TEST_F(ResolverTest, AddressesIpv4FirstThenIpv6) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.addresses("mx1.multi.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  EXPECT_EQ(strings(a->addresses), (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(a->ttl, 60u);
  a = run(ctx_, r.addresses("v6only.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  EXPECT_EQ(strings(a->addresses), (std::vector<std::string>{"::2"}));
  a = run(ctx_, r.addresses("mx2.multi.test"));
  ASSERT_TRUE(a);
  EXPECT_EQ(strings(a->addresses), (std::vector<std::string>{"127.0.0.2"}));
  a = run(ctx_, r.addresses("nomail.test"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::NoData);
}

TEST_F(ResolverTest, IdnDomainsAreResolvedByTheirALabel) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("Bücher.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  EXPECT_EQ(a->hosts, (std::vector<MxHost>{{"mx1.multi.test", 10}}));
  a = run(ctx_, r.mx("café.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  EXPECT_TRUE(a->implicit);
  EXPECT_EQ(a->hosts, (std::vector<MxHost>{{"xn--caf-dma.test", 0}}));
  auto addrs = run(ctx_, r.addresses("café.test"));
  ASSERT_TRUE(addrs);
  EXPECT_EQ(strings(addrs->addresses), (std::vector<std::string>{"127.0.0.4"}));
}

TEST_F(ResolverTest, BadNamesSendNothing) {
  Resolver r(ctx_, options());
  for (const char* bad : {"a..test", "☃.test", "", "[127.0.0.1]"}) {
    auto a = run(ctx_, r.mx(bad));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->status, Status::BadName) << bad;
    EXPECT_FALSE(a->detail.empty());
  }
  auto addrs = run(ctx_, r.addresses("a..test"));
  ASSERT_TRUE(addrs);
  EXPECT_EQ(addrs->status, Status::BadName);
  EXPECT_EQ(r.stats().queries.load(), 0u);
  EXPECT_EQ(r.stats().badname.load(), 5u);
}

TEST_F(ResolverTest, AddressLiteralsAreAnsweredDirectly) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.addresses("192.0.2.7"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok);
  EXPECT_EQ(strings(a->addresses), (std::vector<std::string>{"192.0.2.7"}));
  a = run(ctx_, r.addresses("2001:db8::7"));
  ASSERT_TRUE(a);
  EXPECT_EQ(strings(a->addresses), (std::vector<std::string>{"2001:db8::7"}));
  EXPECT_EQ(r.stats().queries.load(), 0u);
}

TEST_F(ResolverTest, RefusedIsTemporaryAndNotCached) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("outside.example"));  // not under test.: dnsmasq answers REFUSED
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::TempFail) << a->detail;
  EXPECT_EQ(a->ttl, 0u);
  EXPECT_EQ(failure_reply(a->status).code, 451);
  EXPECT_EQ(r.cache_size(), 0u);
}

TEST_F(ResolverTest, ConcurrentIdenticalLookupsShareOneQuery) {
  Resolver r(ctx_, options());
  int done = 0;
  for (int i = 0; i < 10; ++i) {
    asio::co_spawn(ctx_, r.mx("multi.test"), [&](std::exception_ptr e, MxAnswer a) {
      ASSERT_FALSE(e);
      EXPECT_EQ(a.status, Status::Ok);
      EXPECT_EQ(a.hosts.size(), 4u);
      ++done;
    });
  }
  ctx_.run_for(10s);
  EXPECT_EQ(done, 10);
  EXPECT_EQ(r.stats().queries.load(), 1u);
  EXPECT_EQ(r.stats().coalesced.load(), 9u);
}

TEST_F(ResolverTest, TruncatedAnswersAreRetriedOverTcp) {
  Resolver r(ctx_, options());
  auto a = run(ctx_, r.mx("big.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  ASSERT_EQ(a->hosts.size(), 30u);
  for (std::size_t i = 0; i < a->hosts.size(); ++i) {
    EXPECT_EQ(a->hosts[i].preference, i + 1);
    EXPECT_EQ(a->hosts[i].name,
              "mx-with-a-rather-long-name-" + std::to_string(i + 1) + ".big.test");
  }
}

TEST_F(ResolverTest, FallsBackToTheNextServer) {
  SilentServer silent;
  auto o = options();
  o.servers = {silent.server(), dns_->server()};
  o.timeout = 200ms;
  Resolver r(ctx_, o);
  auto a = run(ctx_, r.mx("multi.test"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::Ok) << a->detail;
}

TEST_F(ResolverTest, SlowQueryDoesNotBlockTheIoContext) {
  SilentServer silent;
  auto slow_opts = options();
  slow_opts.servers = {silent.server()};
  slow_opts.timeout = 1500ms;
  slow_opts.tries = 1;
  Resolver slow(ctx_, slow_opts);
  Resolver fast(ctx_, options());

  const auto start = Clock::now();
  std::optional<Clock::duration> slow_done, fast_done;
  bool slow_pending_when_fast_done = false;
  asio::co_spawn(ctx_, slow.mx("multi.test"), [&](std::exception_ptr, MxAnswer a) {
    EXPECT_EQ(a.status, Status::TempFail);
    slow_done = Clock::now() - start;
  });
  asio::co_spawn(ctx_, fast.mx("multi.test"), [&](std::exception_ptr, MxAnswer a) {
    EXPECT_EQ(a.status, Status::Ok);
    fast_done = Clock::now() - start;
    slow_pending_when_fast_done = !slow_done;
  });
  ctx_.run_for(10s);
  ASSERT_TRUE(fast_done);
  ASSERT_TRUE(slow_done);
  EXPECT_TRUE(slow_pending_when_fast_done);
  EXPECT_LT(*fast_done, 200ms);
  EXPECT_GE(*slow_done, 1400ms);
}

class TimeoutTest : public ::testing::Test {
 protected:
  asio::io_context ctx_;
  SilentServer silent_;
};

TEST_F(TimeoutTest, SilentServerIsTempFailWithinTheBudget) {
  ResolverOptions o;
  o.servers = {silent_.server()};
  o.timeout = 300ms;
  o.tries = 1;
  Resolver r(ctx_, o);
  auto start = Clock::now();
  auto a = run(ctx_, r.mx("example.test"));
  auto took = Clock::now() - start;
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::TempFail);
  EXPECT_NE(a->detail.find("timed out"), std::string::npos) << a->detail;
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 800ms);
  EXPECT_EQ(r.stats().tempfail.load(), 1u);
}

TEST_F(TimeoutTest, RetriesDoubleTheTimeout) {
  ResolverOptions o;
  o.servers = {silent_.server()};
  o.timeout = 200ms;
  o.tries = 2;  // 200 ms + 400 ms
  Resolver r(ctx_, o);
  auto start = Clock::now();
  auto a = run(ctx_, r.addresses("example.test"));
  auto took = Clock::now() - start;
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::TempFail);
  EXPECT_GE(took, 580ms);
  EXPECT_LT(took, 1200ms);
}

TEST_F(TimeoutTest, UnreachableServerIsTempFail) {
  std::uint16_t closed_port = testing::free_port();  // nothing listens there
  ResolverOptions o;
  o.servers = {"127.0.0.1:" + std::to_string(closed_port)};
  o.timeout = 2000ms;
  o.tries = 1;
  Resolver r(ctx_, o);
  auto a = run(ctx_, r.mx("example.test"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, Status::TempFail) << a->detail;
}

TEST_F(TimeoutTest, ShutdownCompletesPendingCallsWithTempFail) {
  ResolverOptions o;
  o.servers = {silent_.server()};
  o.timeout = 5000ms;
  Resolver r(ctx_, o);
  std::optional<MxAnswer> mx;
  std::optional<AddressAnswer> addrs;
  asio::co_spawn(ctx_, r.mx("example.test"), [&](std::exception_ptr, MxAnswer a) { mx = a; });
  asio::co_spawn(ctx_, r.addresses("host.test"),
                 [&](std::exception_ptr, AddressAnswer a) { addrs = a; });
  asio::steady_timer t(ctx_, 50ms);
  t.async_wait([&](std::error_code) { r.shutdown(); });
  auto start = Clock::now();
  ctx_.run_for(10s);  // returns once everything completed: nothing left dangling
  EXPECT_TRUE(ctx_.stopped());
  EXPECT_LT(Clock::now() - start, 1s);
  ASSERT_TRUE(mx);
  ASSERT_TRUE(addrs);
  EXPECT_EQ(mx->status, Status::TempFail);
  EXPECT_EQ(addrs->status, Status::TempFail);
  auto later = run(ctx_, r.mx("example.test"));
  ASSERT_TRUE(later);
  EXPECT_EQ(later->status, Status::TempFail);
  r.shutdown();  // idempotent
}

TEST_F(TimeoutTest, DestroyingTheResolverCompletesPendingCalls) {
  ResolverOptions o;
  o.servers = {silent_.server()};
  o.timeout = 5000ms;
  auto r = std::make_unique<Resolver>(ctx_, o);
  std::optional<MxAnswer> mx;
  asio::co_spawn(ctx_, r->mx("example.test"), [&](std::exception_ptr, MxAnswer a) { mx = a; });
  asio::steady_timer t(ctx_, 50ms);
  t.async_wait([&](std::error_code) { r.reset(); });
  ctx_.run_for(10s);
  EXPECT_TRUE(ctx_.stopped());
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->status, Status::TempFail);
}

// The worker-pool teardown order (net/worker_pool.hpp): the io_context is
// stopped with a query in flight, the resolver is destroyed, then the
// context with the coroutine frames still waiting in it.
TEST_F(TimeoutTest, ContextStoppedThenResolverAndContextDestroyed) {
  auto ctx = std::make_unique<asio::io_context>();
  ResolverOptions o;
  o.servers = {silent_.server()};
  o.timeout = 5000ms;
  auto r = std::make_unique<Resolver>(*ctx, o);
  bool completed = false;
  asio::co_spawn(*ctx, r->mx("example.test"),
                 [&](std::exception_ptr, MxAnswer) { completed = true; });
  {
    asio::steady_timer t(*ctx, 50ms);  // an I/O object: must not outlive ctx
    t.async_wait([&](std::error_code) { ctx->stop(); });
    ctx->run();
  }
  EXPECT_FALSE(completed);
  r.reset();
  ctx.reset();  // destroys the suspended coroutine and the resolver state it holds
  EXPECT_FALSE(completed);
}

TEST(ResolverOptionsCheck, BadOptionsThrowAndDefaultsUseResolvConf) {
  asio::io_context ctx;
  ResolverOptions bad;
  bad.servers = {"not-an-ip"};
  EXPECT_THROW(Resolver(ctx, bad), std::invalid_argument);
  bad = {};
  bad.tries = 0;
  EXPECT_THROW(Resolver(ctx, bad), std::invalid_argument);
  EXPECT_NO_THROW(Resolver(ctx, ResolverOptions{}));  // servers from /etc/resolv.conf
}

// --local-ttl=1: answers expire after a second, and a new query is made.
TEST(ResolverTtl, CachedUntilTheTtlExpires) {
  Dnsmasq dns({"--mx-host=short.test,mx.short.test,10"}, 1);
  asio::io_context ctx;
  ResolverOptions o;
  o.servers = {dns.server()};
  o.min_ttl = 0s;
  Resolver r(ctx, o);
  auto a = run(ctx, r.mx("short.test"));
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, Status::Ok) << a->detail;
  EXPECT_EQ(a->ttl, 1u);
  const auto cached_at = Clock::now();
  ASSERT_TRUE(run(ctx, r.mx("short.test")));
  EXPECT_EQ(r.stats().queries.load(), 1u);
  EXPECT_EQ(r.stats().cache_hits.load(), 1u);
  // Poll until the entry expires and a second query goes out.
  while (r.stats().queries.load() == 1 && Clock::now() - cached_at < 5s) {
    asio::steady_timer t(ctx, 50ms);
    t.wait();
    auto again = run(ctx, r.mx("short.test"));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, Status::Ok);
  }
  EXPECT_EQ(r.stats().queries.load(), 2u);
  EXPECT_GE(Clock::now() - cached_at, 900ms);
}

}  // namespace
}  // namespace mailgate::dns
