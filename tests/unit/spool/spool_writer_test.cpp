// Tests for spool/spool_writer: group commit, sync accounting, failures,
// backpressure, stop() draining.
#include "spool/spool_writer.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

#include "spool/store.hpp"
#include "temp_dir.hpp"

using namespace mailgate::spool;
using mailgate::spool::testing::key;
using mailgate::spool::testing::TempDir;
using namespace std::chrono_literals;

namespace {

// A latch-like counter of completions with their error codes, in order.
class Completions {
 public:
  SpoolWriter::Completion make(int tag) {
    return [this, tag](std::error_code ec) {
      std::lock_guard lk(mu_);
      order_.push_back(tag);
      codes_.push_back(ec);
      cv_.notify_all();
    };
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return order_.size() >= n; });
  }
  std::size_t count() {
    std::lock_guard lk(mu_);
    return order_.size();
  }
  std::vector<int> order() {
    std::lock_guard lk(mu_);
    return order_;
  }
  std::vector<std::error_code> codes() {
    std::lock_guard lk(mu_);
    return codes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> order_;
  std::vector<std::error_code> codes_;
};

// A gate the write function can block on until the test opens it.
class Gate {
 public:
  void open() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void pass() {
    std::unique_lock lk(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lk, [&] { return open_; });
  }
  bool wait_waiting(int n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, 20s, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

struct Fixture {
  TempDir tmp;
  std::unique_ptr<Store> store;
  Fixture() {
    std::string err;
    store = Store::open(tmp.path(), err);
    if (!store) throw std::runtime_error(err);
  }
  bool real_write(rocksdb::WriteBatch& b, bool sync, std::string& err) {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto s = store->db()->Write(wo, &b);
    if (!s.ok()) err = s.ToString();
    return s.ok();
  }
  std::string get(rocksdb::ColumnFamilyHandle* cf, const std::string& key) {
    std::string v;
    auto s = store->db()->Get(rocksdb::ReadOptions(), cf, key, &v);
    return s.ok() ? v : "<missing>";
  }
  WriteSet message(const std::string& key, std::size_t body = 1100) {
    rocksdb::WriteBatch b;
    b.Put(store->body(), key, std::string(body, 'b'));
    b.Put(store->meta(), key, std::string(200, 'm'));
    return WriteSet(*store, std::move(b));
  }
};

}  // namespace

TEST(SpoolWriter, ConcurrentSubmittersAreGroupCommitted) {
  Fixture f;
  SpoolWriter w(*f.store, 64 << 20, 0);
  // A slow write (like an fsync) so that submitters pile up behind it.
  w.set_write_fn([&](rocksdb::WriteBatch& b, bool sync, std::string& err) {
    std::this_thread::sleep_for(1ms);
    return f.real_write(b, sync, err);
  });
  w.start();
  constexpr int kThreads = 8, kPerThread = 150;
  Completions done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        int tag = t * kPerThread + i;
        w.submit(f.message(key("k", tag)), /*sync=*/tag % 2 == 0, done.make(tag));
        if (i % 10 == 0) std::this_thread::yield();
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(done.wait_for(kThreads * kPerThread));
  for (auto ec : done.codes()) EXPECT_FALSE(ec) << ec.message();
  for (int tag = 0; tag < kThreads * kPerThread; ++tag)
    ASSERT_EQ(f.get(f.store->meta(), key("k", tag)), std::string(200, 'm')) << tag;

  const auto& s = w.stats();
  EXPECT_EQ(s.requests.load(), std::uint64_t{kThreads * kPerThread});
  EXPECT_LT(s.rounds.load(), s.requests.load());
  EXPECT_GT(s.max_batch.load(), 1u);
  EXPECT_LE(s.syncs.load(), s.rounds.load());
  EXPECT_GE(s.syncs.load(), 1u);
  // Every sync=true request was in a synced round (others may have been too).
  EXPECT_GE(s.synced_requests.load(), std::uint64_t{kThreads * kPerThread / 2});
  EXPECT_EQ(s.errors.load(), 0u);
  EXPECT_GT(s.bytes.load(), std::uint64_t{kThreads * kPerThread * 1300});
  EXPECT_GT(s.write_ns.load(), 0u);
  EXPECT_EQ(w.queued_bytes(), 0u);
  w.stop();
}

TEST(SpoolWriter, UnsyncedRequestsNeverSync) {
  Fixture f;
  SpoolWriter w(*f.store, 1 << 20, 0);
  w.start();
  Completions done;
  for (int i = 0; i < 50; ++i) w.submit(f.message(key("u", i)), false, done.make(i));
  ASSERT_TRUE(done.wait_for(50));
  EXPECT_EQ(w.stats().syncs.load(), 0u);
  EXPECT_EQ(w.stats().synced_requests.load(), 0u);
  Completions one;
  w.submit(f.message("s"), true, one.make(0));
  ASSERT_TRUE(one.wait_for(1));
  EXPECT_EQ(w.stats().syncs.load(), 1u);
  EXPECT_EQ(w.stats().synced_requests.load(), 1u);
}

TEST(SpoolWriter, CombinedRoundKeepsOperationOrderAndAllKinds) {
  Fixture f;
  SpoolWriter w(*f.store, 1 << 20, 0);
  Gate gate;
  std::atomic<int> calls{0};
  w.set_write_fn([&](rocksdb::WriteBatch& b, bool sync, std::string& err) {
    if (calls++ == 0) gate.pass();
    return f.real_write(b, sync, err);
  });
  w.start();
  Completions done;
  w.submit(f.message("first"), true, done.make(0));
  ASSERT_TRUE(gate.wait_waiting(1));
  // These three land in one round, replayed into one batch in order.
  rocksdb::WriteBatch a;
  a.Put(f.store->dest(), "x", "1");
  a.Put(f.store->dest(), "r1", "1");
  a.Put(f.store->dest(), "r2", "1");
  a.Put(f.store->suppress(), "s", "1");
  a.Put(f.store->default_cf(), "d", "1");
  rocksdb::WriteBatch b;
  b.Delete(f.store->dest(), "x");
  b.DeleteRange(f.store->dest(), "r", "s");
  b.Put(f.store->dest(), "y", "2");
  b.PutLogData("ignored by readers");
  rocksdb::WriteBatch c;
  c.Put(f.store->dest(), "y", "3");
  c.SingleDelete(f.store->suppress(), "s");
  w.submit(WriteSet(*f.store, std::move(a)), false, done.make(1));
  w.submit(WriteSet(*f.store, std::move(b)), false, done.make(2));
  w.submit(WriteSet(*f.store, std::move(c)), true, done.make(3));
  gate.open();
  ASSERT_TRUE(done.wait_for(4));
  for (auto ec : done.codes()) EXPECT_FALSE(ec);
  EXPECT_EQ(done.order(), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(w.stats().rounds.load(), 2u);
  EXPECT_EQ(w.stats().max_batch.load(), 3u);
  EXPECT_EQ(w.stats().synced_requests.load(), 4u);
  EXPECT_EQ(f.get(f.store->dest(), "x"), "<missing>");
  EXPECT_EQ(f.get(f.store->dest(), "r1"), "<missing>");
  EXPECT_EQ(f.get(f.store->dest(), "r2"), "<missing>");
  EXPECT_EQ(f.get(f.store->dest(), "y"), "3");
  EXPECT_EQ(f.get(f.store->suppress(), "s"), "<missing>");
  EXPECT_EQ(f.get(f.store->default_cf(), "d"), "1");
}

// Below half of min_free_space nothing reaches RocksDB (a WAL write that
// meets a full disk breaks its log writer, and the next write aborts in
// Debian's assert-enabled build): the round fails and readiness says so.
// Found by tests/faults/test_disk_full.py (the gateway died of SIGABRT).
TEST(SpoolWriter, NearlyFullDiskFailsTheRoundWithoutWriting) {
  Fixture f;
  // More than any disk has free: the disk counts as nearly full.
  SpoolWriter w(*f.store, 1 << 20, std::numeric_limits<std::uint64_t>::max() / 4);
  std::vector<std::string> logged;
  w.set_error_log([&](const std::string& m) { logged.push_back(m); });
  std::atomic<int> calls{0};
  w.set_write_fn([&](rocksdb::WriteBatch& b, bool sync, std::string& err) {
    ++calls;
    return f.real_write(b, sync, err);
  });
  w.start();
  EXPECT_TRUE(w.disk_low());
  Completions done;
  w.submit(f.message("m"), true, done.make(0));
  ASSERT_TRUE(done.wait_for(1));
  EXPECT_EQ(done.codes()[0], std::make_error_code(std::errc::io_error));
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(f.get(f.store->meta(), "m"), "<missing>");
  EXPECT_FALSE(w.stats().last_write_ok.load());
  w.stop();
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("below half of spool.min_free_space"), std::string::npos);
}

TEST(SpoolWriter, FailedRoundFailsAllItsRequestsThenRecovers) {
  Fixture f;
  SpoolWriter w(*f.store, 1 << 20, 0);
  std::vector<std::string> logged;
  w.set_error_log([&](const std::string& m) { logged.push_back(m); });
  Gate gate;
  std::atomic<int> calls{0};
  w.set_write_fn([&](rocksdb::WriteBatch& b, bool sync, std::string& err) {
    int n = calls++;
    if (n == 0) gate.pass();
    if (n == 1) {
      err = "injected failure";
      return false;
    }
    return f.real_write(b, sync, err);
  });
  w.start();
  Completions done;
  w.submit(f.message("ok0"), true, done.make(0));
  ASSERT_TRUE(gate.wait_waiting(1));
  for (int i = 1; i <= 5; ++i) w.submit(f.message(key("bad", i)), i == 3, done.make(i));
  gate.open();
  ASSERT_TRUE(done.wait_for(6));
  w.submit(f.message("ok6"), true, done.make(6));
  ASSERT_TRUE(done.wait_for(7));

  auto codes = done.codes();
  auto order = done.order();
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i] == 0 || order[i] == 6)
      EXPECT_FALSE(codes[i]) << order[i];
    else
      EXPECT_EQ(codes[i], std::make_error_code(std::errc::io_error)) << order[i];
  }
  EXPECT_EQ(f.get(f.store->meta(), "ok0"), std::string(200, 'm'));
  EXPECT_EQ(f.get(f.store->meta(), "ok6"), std::string(200, 'm'));
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(f.get(f.store->meta(), key("bad", i)), "<missing>");
  EXPECT_EQ(w.stats().errors.load(), 1u);
  EXPECT_EQ(w.stats().rounds.load(), 3u);
  EXPECT_EQ(w.stats().requests.load(), 7u);
  EXPECT_EQ(w.stats().synced_requests.load(), 2u);
  w.stop();
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("injected failure"), std::string::npos);
}

TEST(SpoolWriter, ThrowingWriteFnIsAFailedRound) {
  Fixture f;
  SpoolWriter w(*f.store, 1 << 20, 0);
  w.set_error_log([](const std::string&) {});
  w.set_write_fn(
      [](rocksdb::WriteBatch&, bool, std::string&) -> bool { throw std::runtime_error("boom"); });
  w.start();
  Completions done;
  w.submit(f.message("a"), true, done.make(0));
  ASSERT_TRUE(done.wait_for(1));
  EXPECT_EQ(done.codes()[0], std::make_error_code(std::errc::io_error));
}

TEST(SpoolWriter, BackpressureParksUntilSpaceFrees) {
  Fixture f;
  auto one = f.message("xx").bytes();  // keys below are 2 bytes too
  const std::uint64_t max = 2 * one;   // room for two requests
  SpoolWriter w(*f.store, max, 0);
  Gate gate;
  std::atomic<int> calls{0};
  w.set_write_fn([&](rocksdb::WriteBatch& b, bool sync, std::string& err) {
    calls++;
    gate.pass();
    return f.real_write(b, sync, err);
  });
  w.start();
  Completions done;
  w.submit(f.message("m0"), true, done.make(0));  // admitted, its write blocks
  ASSERT_TRUE(gate.wait_waiting(1));
  for (int i = 1; i < 8; ++i) w.submit(f.message(key("m", i)), true, done.make(i));
  // m1 fits beside m0; m2.. are parked: nothing completes, admitted bytes bounded.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(done.count(), 0u);
  EXPECT_LE(w.queued_bytes(), max);
  EXPECT_EQ(w.queued_bytes(), 2 * one);
  EXPECT_EQ(calls.load(), 1);
  gate.open();
  ASSERT_TRUE(done.wait_for(8));
  for (auto ec : done.codes()) EXPECT_FALSE(ec);
  // FIFO: parked requests were admitted (and so completed) in order.
  EXPECT_EQ(done.order(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_LE(w.stats().max_batch.load(), 2u);
  EXPECT_EQ(w.queued_bytes(), 0u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(f.get(f.store->meta(), key("m", i)), std::string(200, 'm'));
}

TEST(SpoolWriter, OversizeRequestIsAdmittedAlone) {
  Fixture f;
  SpoolWriter w(*f.store, 100, 0);  // smaller than any message
  w.start();
  Completions done;
  for (int i = 0; i < 5; ++i) w.submit(f.message(key("o", i)), true, done.make(i));
  ASSERT_TRUE(done.wait_for(5));
  for (auto ec : done.codes()) EXPECT_FALSE(ec);
  EXPECT_EQ(w.stats().max_batch.load(), 1u);
  EXPECT_EQ(done.order(), (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(SpoolWriter, StopDrainsAdmittedAndParkedThenRejects) {
  Fixture f;
  auto one = f.message("xx").bytes();  // keys below are 2 bytes too
  SpoolWriter w(*f.store, one, 0);
  Gate gate;
  w.set_write_fn([&](rocksdb::WriteBatch& b, bool sync, std::string& err) {
    gate.pass();
    return f.real_write(b, sync, err);
  });
  w.start();
  Completions done;
  w.submit(f.message("s0"), true, done.make(0));
  ASSERT_TRUE(gate.wait_waiting(1));
  for (int i = 1; i < 6; ++i) w.submit(f.message(key("s", i)), false, done.make(i));
  std::thread stopper([&] { w.stop(); });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(done.count(), 0u);
  gate.open();
  stopper.join();
  ASSERT_EQ(done.count(), 6u);  // all finished by the time stop() returned
  for (auto ec : done.codes()) EXPECT_FALSE(ec);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(f.get(f.store->meta(), key("s", i)), std::string(200, 'm'));

  Completions late;
  w.submit(f.message("late"), true, late.make(0));
  ASSERT_EQ(late.count(), 1u);  // completed at once
  EXPECT_EQ(late.codes()[0], std::make_error_code(std::errc::operation_canceled));
  EXPECT_EQ(f.get(f.store->meta(), "late"), "<missing>");
  w.stop();  // idempotent
}

TEST(SpoolWriter, StopWithoutStartCancelsQueued) {
  Fixture f;
  SpoolWriter w(*f.store, 1 << 20, 0);
  Completions done;
  w.submit(f.message("q"), true, done.make(0));
  w.stop();
  ASSERT_EQ(done.count(), 1u);
  EXPECT_EQ(done.codes()[0], std::make_error_code(std::errc::operation_canceled));
}

TEST(SpoolWriter, DiskLowReflectsFreeSpace) {
  Fixture f;
  SpoolWriter low(*f.store, 1 << 20, UINT64_MAX);
  low.start();
  EXPECT_TRUE(low.disk_low());
  low.stop();
  SpoolWriter fine(*f.store, 1 << 20, 1);
  fine.start();
  EXPECT_FALSE(fine.disk_low());
}
