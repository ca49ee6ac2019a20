// Group-commit throughput of spool::SpoolWriter: K threads each submit one
// message-sized batch (1.1 KB body + 200 B meta) with sync=true and wait for
// its completion, like sessions waiting before their 250. Reports messages/s
// (items_per_second) and messages per fsync (msgs_per_sync).
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "spool/recovery.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"

namespace {

using namespace mailgate::spool;

struct Shared {
  std::string dir;
  std::unique_ptr<Store> store;
  std::unique_ptr<SpoolWriter> writer;
};
Shared* g = nullptr;

void setup() {
  char tmpl[] = "/tmp/mailgate-spool-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  g = new Shared;
  g->dir = tmpl;
  std::string err;
  g->store = Store::open(g->dir, err);
  if (!g->store) {
    std::fprintf(stderr, "%s\n", err.c_str());
    std::abort();
  }
  g->writer = std::make_unique<SpoolWriter>(*g->store, 64u << 20, 0);
  g->writer->start();
}

void teardown() {
  g->writer->stop();
  g->writer.reset();
  g->store.reset();
  std::error_code ec;
  std::filesystem::remove_all(g->dir, ec);
  delete g;
  g = nullptr;
}

void BM_GroupCommitSynced(benchmark::State& state) {
  if (state.thread_index() == 0) setup();
  // (Benchmark starts the timed loop of all threads together, after this.)
  IdGenerator gen(static_cast<std::uint16_t>(state.thread_index()), 1);
  const std::string body(1100, 'b'), meta(200, 'm');
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::error_code result;
  for (auto _ : state) {
    auto id = gen.next();
    rocksdb::WriteBatch b;
    b.Put(g->store->body(), body_key(id, 0), body);
    b.Put(g->store->meta(), id.key(), meta);
    done = false;
    g->writer->submit(WriteSet(*g->store, std::move(b)), true, [&](std::error_code ec) {
      std::lock_guard lk(mu);
      result = ec;
      done = true;
      cv.notify_one();
    });
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return done; });
    if (result) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    const auto& s = g->writer->stats();
    // Counters are summed over threads: only thread 0 sets them.
    state.counters["msgs_per_sync"] =
        s.syncs ? static_cast<double>(s.synced_requests) / static_cast<double>(s.syncs) : 0.0;
    state.counters["max_batch"] = static_cast<double>(s.max_batch);
    state.counters["write_us_per_round"] =
        s.rounds ? static_cast<double>(s.write_ns) / 1e3 / static_cast<double>(s.rounds) : 0.0;
    teardown();
  }
}
BENCHMARK(BM_GroupCommitSynced)
    ->ThreadRange(1, 256)
    ->UseRealTime()
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond);

// CPU cost of the writer itself (submit, replay into the round's batch,
// completion) with the RocksDB write replaced by a no-op: 256 requests per
// iteration from one thread.
void BM_WriterOverheadNoIo(benchmark::State& state) {
  char tmpl[] = "/tmp/mailgate-spool-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  std::string err;
  auto store = Store::open(tmpl, err);
  if (!store) std::abort();
  std::uint64_t written = 0;
  {
    SpoolWriter w(*store, 64u << 20, 0);
    w.set_write_fn([&](rocksdb::WriteBatch& b, bool, std::string&) {
      written += b.GetDataSize();
      return true;
    });
    w.start();
    IdGenerator gen(0, 1);
    const std::string body(1100, 'b'), meta(200, 'm');
    std::mutex mu;
    std::condition_variable cv;
    int pending = 0;
    for (auto _ : state) {
      {
        std::lock_guard lk(mu);
        pending = 256;
      }
      for (int i = 0; i < 256; ++i) {
        auto id = gen.next();
        rocksdb::WriteBatch b;
        b.Put(store->body(), body_key(id, 0), body);
        b.Put(store->meta(), id.key(), meta);
        w.submit(WriteSet(*store, std::move(b)), true, [&](std::error_code) {
          std::lock_guard lk(mu);
          if (--pending == 0) cv.notify_one();
        });
      }
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return pending == 0; });
    }
    state.SetItemsProcessed(state.iterations() * 256);
    const auto& s = w.stats();
    state.counters["combine_ns_per_req"] =
        s.requests ? static_cast<double>(s.combine_ns) / static_cast<double>(s.requests) : 0.0;
    state.counters["reqs_per_round"] =
        s.rounds ? static_cast<double>(s.requests) / static_cast<double>(s.rounds) : 0.0;
    w.stop();
  }
  benchmark::DoNotOptimize(written);
  store.reset();
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}
BENCHMARK(BM_WriterOverheadNoIo)->UseRealTime()->Unit(benchmark::kMicrosecond);

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// Recovery of a spool holding N dest records (N messages, 4 destinations):
// index rebuild speed and the index's memory.
void BM_RecoveryScan(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  char tmpl[] = "/tmp/mailgate-spool-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  std::string err;
  auto store = Store::open(tmpl, err);
  if (!store) std::abort();
  {
    const char* dests[] = {"gmail.com", "outlook.com", "example.org", "[192.0.2.7]:2525"};
    DestRecord rec;
    rec.recipients.push_back({0, RcptState::Pending, ""});
    rec.size = 1300;
    rocksdb::WriteBatch b;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto id = MessageId::make(1700000000000 + i / 100, 0, i);
      rec.next_attempt_ms = static_cast<std::int64_t>(i);
      b.Put(store->dest(), dest_key(id, dests[i % 4]), encode(rec));
      if (b.Count() == 10000) {
        store->db()->Write(rocksdb::WriteOptions(), &b);
        b.Clear();
      }
    }
    store->db()->Write(rocksdb::WriteOptions(), &b);
    store->db()->Flush(rocksdb::FlushOptions(), store->dest());
  }
  double rss_delta = 0, index_bytes = 0, secs = 0;
  for (auto _ : state) {
    auto before = rss_kib();
    Recovery r(*store);
    r.start();
    r.join();
    rss_delta = static_cast<double>(rss_kib() - before) * 1024.0;
    index_bytes = static_cast<double>(r.index().entries.capacity() * sizeof(IndexEntry));
    secs = r.seconds();
    if (r.records() != n) state.SkipWithError("wrong record count");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  state.counters["index_bytes_per_record"] = index_bytes / static_cast<double>(n);
  state.counters["rss_bytes_per_record"] = rss_delta / static_cast<double>(n);
  state.counters["seconds"] = secs;
  store.reset();
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
}
BENCHMARK(BM_RecoveryScan)
    ->Arg(1000000)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
