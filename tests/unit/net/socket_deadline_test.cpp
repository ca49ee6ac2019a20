// Unit tests of net/socket_deadline over real loopback sockets: a passed
// deadline cancels exactly its own socket's read, among many sharing the
// context's one timer; an earlier deadline set after a later one still fires
// on time; pushing a deadline later holds the read open; stop() and
// destruction keep the sweep off the socket; a context destroyed with
// deadlines still linked does not touch them afterwards; once the last
// deadline stops, the shared timer holds no work (run() returns at once).
#include "net/socket_deadline.hpp"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <vector>

namespace mailgate::net {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A connected loopback pair; `server` is the side the deadline watches.
struct Pair {
  explicit Pair(asio::io_context& io) : server(io), client(io) {
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    client.connect(acc.local_endpoint());
    acc.accept(server);
  }
  asio::ip::tcp::socket server, client;
};

// Waits for input on `p.server`, noting when and how the wait ended.
struct Reader {
  void start(Pair& p) {
    p.server.async_wait(asio::ip::tcp::socket::wait_read, [this](std::error_code e) {
      ec = e;
      at = Clock::now();
      done = true;
    });
  }
  bool done = false;
  std::error_code ec;
  Clock::time_point at;
};

TEST(SocketDeadline, OnlyTheDueSocketIsCancelledAndEarlierDeadlinesRearm) {
  asio::io_context io;
  std::vector<std::unique_ptr<Pair>> pairs;
  std::vector<std::unique_ptr<SocketDeadline>> deadlines;
  std::vector<Reader> readers(3);
  for (int i = 0; i < 3; ++i) {
    pairs.push_back(std::make_unique<Pair>(io));
    deadlines.push_back(std::make_unique<SocketDeadline>(pairs.back()->server));
  }
  const auto t0 = Clock::now();
  deadlines[0]->start(10s);    // arms the shared timer far away
  deadlines[1]->start(150ms);  // earlier: must re-arm it
  deadlines[2]->start(100ms);
  deadlines[2]->set(30s);  // pushed later: must not fire at 100 ms
  for (int i = 0; i < 3; ++i) readers[i].start(*pairs[i]);
  asio::steady_timer stop_at(io, 600ms);
  stop_at.async_wait([&](std::error_code) { io.stop(); });
  io.run();

  ASSERT_TRUE(readers[1].done);
  EXPECT_EQ(readers[1].ec, asio::error::operation_aborted);
  EXPECT_TRUE(deadlines[1]->expired());
  EXPECT_GE(readers[1].at - t0, 150ms);
  EXPECT_LT(readers[1].at - t0, 500ms);
  EXPECT_FALSE(readers[0].done);
  EXPECT_FALSE(readers[2].done);
  EXPECT_FALSE(deadlines[0]->expired());
  EXPECT_FALSE(deadlines[2]->expired());
  deadlines[1]->set(1s);  // set() clears expired()
  EXPECT_FALSE(deadlines[1]->expired());
}

TEST(SocketDeadline, StoppedOrDestroyedDeadlinesLeaveTheSocketAlone) {
  asio::io_context io;
  Pair a(io), b(io);
  Reader ra, rb;
  {
    SocketDeadline da(a.server);
    da.start(20ms);
  }  // destroyed: unlinked
  SocketDeadline db(b.server);
  db.start(20ms);
  db.stop();
  ra.start(a);
  rb.start(b);
  asio::steady_timer stop_at(io, 200ms);
  stop_at.async_wait([&](std::error_code) { io.stop(); });
  io.run();
  EXPECT_FALSE(ra.done);
  EXPECT_FALSE(rb.done);
  EXPECT_FALSE(db.expired());
  // Restarted after stop(): watched again.
  io.restart();
  db.start(20ms);
  io.run_for(300ms);
  EXPECT_TRUE(rb.done);
  EXPECT_TRUE(db.expired());
}

TEST(SocketDeadline, ContextDestroyedFirstThenTheDeadline) {
  auto io = std::make_unique<asio::io_context>();
  auto pair = std::make_unique<Pair>(*io);
  SocketDeadline d(pair->server);
  d.start(10s);
  pair.reset();  // (the deadline's socket pointer is not used after this)
  io.reset();    // the service unlinks every deadline at shutdown
  d.stop();      // must not touch the destroyed service
  SUCCEED();
}

}  // namespace
}  // namespace mailgate::net

namespace mailgate::net {
namespace {

TEST(SocketDeadline, NoPendingWorkOnceTheLastDeadlineStops) {
  asio::io_context io;
  auto pair = std::make_unique<Pair>(io);
  {
    SocketDeadline deadline(pair->server);
    deadline.start(30s);  // arms the shared timer 30 s away
    deadline.set(20s);
  }  // destroyed: stopped
  const auto t0 = Clock::now();
  io.run();  // nothing left to wait for
  EXPECT_LT(Clock::now() - t0, 5s);
  // A later deadline on the same context still fires.
  io.restart();
  SocketDeadline again(pair->server);
  Reader reader;
  reader.start(*pair);
  again.start(50ms);
  io.run_for(5s);
  EXPECT_TRUE(reader.done);
  EXPECT_EQ(reader.ec, asio::error::operation_aborted);
  EXPECT_TRUE(again.expired());
}

}  // namespace
}  // namespace mailgate::net
