// Tests of cluster/redis_link against a real redis-server (started per test
// on a free port, stopped by PID): replies, EVALSHA with the NOSCRIPT
// fallback, the per-call deadline on a stalled server (SIGSTOP), the bound on
// calls in flight, reset() failing waiting calls, a destroyed link calling
// none back, a refused connection.
#include "cluster/redis_link.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "unit/cluster/redis_server.hpp"
#include "unit/cluster/run_until.hpp"

namespace mailgate::cluster {
namespace {

using namespace std::chrono_literals;

struct Answer {
  bool done = false;
  std::string value;  // the reply's text/integer, or "error: ..."
};

RedisLink::Callback into(Answer& a) {
  return [&a](const redisReply* r, std::string_view error) {
    a.done = true;
    if (!error.empty())
      a.value = "error: " + std::string(error);
    else if (r->type == REDIS_REPLY_INTEGER)
      a.value = std::to_string(r->integer);
    else
      a.value = r->str ? std::string(r->str, r->len) : "(nil)";
  };
}

// Runs `ctx` until every answer is in (or 5 s pass).
void run_until(asio::io_context& ctx, const std::vector<Answer*>& answers) {
  testing::run_until(ctx, [&] {
    for (auto* a : answers)
      if (!a->done) return false;
    return true;
  });
}

TEST(RedisReply, ReadsAnyShapeSafely) {
  EXPECT_EQ(leading_number("1733371200123"), 1733371200123);
  EXPECT_EQ(leading_number("1733371200123.0"), 1733371200123);  // a zset score
  EXPECT_EQ(leading_number(""), 0);
  EXPECT_EQ(leading_number("x12"), 0);
  // A hostile or corrupted value cannot overflow: 18 digits at most are read.
  EXPECT_EQ(leading_number("99999999999999999999999999"), 999'999'999'999'999'999);
  EXPECT_EQ(reply_text(nullptr), "");
  redisReply integer{};
  integer.type = REDIS_REPLY_INTEGER;
  integer.integer = 42;
  EXPECT_EQ(reply_number(&integer), 42);
  EXPECT_EQ(reply_text(&integer), "");
  char digits[] = "17.5";
  redisReply str{};
  str.type = REDIS_REPLY_STRING;
  str.str = digits;
  str.len = 4;
  EXPECT_EQ(reply_text(&str), "17.5");
  EXPECT_EQ(reply_number(&str), 17);
}

TEST(RedisLink, CommandsAndScriptsGetTheirReplies) {
  testing::RedisServer redis;
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", redis.port(), 1000ms);
  Answer set, get, script;
  link.command({"SET", "k", "v\r\n with CRLF"}, into(set));
  link.command({"GET", "k"}, into(get));
  link.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", {"n"}, {"41"}, into(script));
  run_until(ctx, {&set, &get, &script});
  EXPECT_EQ(set.value, "OK");
  EXPECT_EQ(get.value, "v\r\n with CRLF");
  EXPECT_EQ(script.value, "41");
  EXPECT_TRUE(link.connected());
  EXPECT_EQ(link.in_flight(), 0u);

  // The script cache emptied (as by a Redis restart): EVALSHA's NOSCRIPT
  // makes the link send the script again.
  Answer flushed, again;
  link.command({"SCRIPT", "FLUSH"}, into(flushed));
  run_until(ctx, {&flushed});
  link.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", {"n"}, {"1"}, into(again));
  run_until(ctx, {&again});
  EXPECT_EQ(again.value, "42");
}

TEST(RedisLink, AStalledServerCostsTheDeadlineNotAHang) {
  testing::RedisServer redis;
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", redis.port(), 50ms, 4);
  Answer warm;
  link.command({"PING"}, into(warm));
  run_until(ctx, {&warm});
  ASSERT_EQ(warm.value, "PONG");

  redis.pause();
  std::vector<Answer> answers(5);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& a : answers) link.command({"PING"}, into(a));
  run_until(ctx, {&answers[0], &answers[1], &answers[2], &answers[3], &answers[4]});
  const auto took = std::chrono::steady_clock::now() - t0;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(answers[i].value, "error: timeout") << i;
  // The fifth is over the bound of 4 calls waiting: refused at once.
  EXPECT_EQ(answers[4].value, "error: too many Redis calls in flight");
  EXPECT_LT(took, 1s);
  EXPECT_EQ(link.in_flight(), 4u);  // their replies may still come

  // reset() lets go of them; after SIGCONT the link connects again.
  link.reset();
  EXPECT_EQ(link.in_flight(), 0u);
  redis.resume();
  Answer after;
  link.command({"PING"}, into(after));
  run_until(ctx, {&after});
  EXPECT_EQ(after.value, "PONG");
}

TEST(RedisLink, ResetFailsTheCallsStillWaiting) {
  testing::RedisServer redis;
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", redis.port(), 5000ms);
  Answer warm;
  link.command({"PING"}, into(warm));
  run_until(ctx, {&warm});
  redis.pause();
  Answer waiting;
  link.command({"PING"}, into(waiting));
  ctx.restart();
  ctx.run_for(20ms);
  EXPECT_FALSE(waiting.done);
  link.reset();
  run_until(ctx, {&waiting});
  EXPECT_EQ(waiting.value, "error: connection lost");
  redis.resume();
}

TEST(RedisLink, NobodyListeningIsAnErrorNotAHang) {
  asio::io_context ctx;
  RedisLink link(ctx, "127.0.0.1", testing::free_loopback_port(), 200ms);
  Answer a;
  link.command({"PING"}, into(a));
  run_until(ctx, {&a});
  ASSERT_TRUE(a.done);
  EXPECT_TRUE(a.value.starts_with("error: ")) << a.value;
  EXPECT_FALSE(link.connected());
}

// A link is destroyed with its owner (Cluster, the tables, the leases):
// a failure posted then would run after them, so none is (reset() is how
// an owner that stays has its calls fail, tested above).
TEST(RedisLink, DestroyedWithCallsWaitingCallsNoneBack) {
  testing::RedisServer redis;
  asio::io_context ctx;
  Answer waiting;
  {
    RedisLink link(ctx, "127.0.0.1", redis.port(), 5000ms);
    Answer warm;
    link.command({"PING"}, into(warm));
    run_until(ctx, {&warm});
    redis.pause();
    link.command({"PING"}, into(waiting));
    ctx.restart();
    ctx.run_for(10ms);
  }
  ctx.restart();
  ctx.run_for(200ms);
  EXPECT_FALSE(waiting.done) << waiting.value;
  redis.resume();
}

}  // namespace
}  // namespace mailgate::cluster
