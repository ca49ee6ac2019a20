// Tests for SpoolWriter::async_write from a coroutine with asio::use_awaitable.
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <thread>

#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "temp_dir.hpp"

using namespace mailgate::spool;
using mailgate::spool::testing::key;
using mailgate::spool::testing::TempDir;

namespace {

struct Result {
  bool finished = false;
  std::error_code ec;
  std::thread::id resumed_on;
};

asio::awaitable<void> write_one(SpoolWriter& w, Store& store, std::string key, Result& r) {
  rocksdb::WriteBatch b;
  b.Put(store.meta(), key, "envelope");
  b.Put(store.body(), key, std::string(1100, 'b'));
  try {
    co_await w.async_write(WriteSet(store, std::move(b)), true, asio::use_awaitable);
  } catch (const std::system_error& e) {
    r.ec = e.code();
  }
  r.resumed_on = std::this_thread::get_id();
  r.finished = true;
}

}  // namespace

TEST(AsyncWrite, CoroutineResumesOnItsIoContextAfterTheSync) {
  TempDir tmp;
  std::string err;
  auto store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  SpoolWriter w(*store, 1 << 20, 0);
  w.start();

  asio::io_context ctx(1);
  Result results[4];
  for (int i = 0; i < 4; ++i)
    asio::co_spawn(ctx, write_one(w, *store, key("k", i), results[i]), asio::detached);
  // No work guard: run() must not return while writes are pending (the
  // writes count as outstanding work on the context).
  std::thread::id io_thread;
  std::thread runner([&] {
    io_thread = std::this_thread::get_id();
    ctx.run();
  });
  runner.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(results[i].finished) << i;
    EXPECT_FALSE(results[i].ec) << results[i].ec.message();
    EXPECT_EQ(results[i].resumed_on, io_thread);
    std::string v;
    ASSERT_TRUE(store->db()->Get(rocksdb::ReadOptions(), store->meta(), key("k", i), &v).ok());
    EXPECT_EQ(v, "envelope");
  }
  EXPECT_GE(w.stats().synced_requests.load(), 4u);
  w.stop();
}

TEST(AsyncWrite, FailureSurfacesAsErrorCode) {
  TempDir tmp;
  std::string err;
  auto store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  SpoolWriter w(*store, 1 << 20, 0);
  w.set_error_log([](const std::string&) {});
  w.set_write_fn([](rocksdb::WriteBatch&, bool, std::string& e) {
    e = "injected";
    return false;
  });
  w.start();
  asio::io_context ctx(1);
  Result r;
  asio::co_spawn(ctx, write_one(w, *store, "k", r), asio::detached);
  ctx.run();
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.ec, std::make_error_code(std::errc::io_error));
  EXPECT_EQ(r.resumed_on, std::this_thread::get_id());

  // After stop(): completes at once with operation_canceled, still via the context.
  w.stop();
  Result late;
  ctx.restart();
  asio::co_spawn(ctx, write_one(w, *store, "late", late), asio::detached);
  ctx.run();
  EXPECT_TRUE(late.finished);
  EXPECT_EQ(late.ec, std::make_error_code(std::errc::operation_canceled));
}
