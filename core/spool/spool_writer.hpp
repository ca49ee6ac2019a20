// spool/spool_writer: the group-commit writer. One thread drains a queue of
// write requests and writes them as one RocksDB WriteBatch per round, synced
// (WAL fdatasync) when any request in the round asked for durability. Each
// request's completion runs on the executor of the coroutine that submitted
// it, only after its round is written (and synced when asked).
// Promises: the admitted queue is bounded in bytes; a request that does not
// fit waits (its submitter stays suspended: backpressure) until space frees;
// a failed write completes every request of that round with an error (the
// session answers 451 4.3.0), never a crash. Disk space is watched here too:
// below min_free_space MAIL is refused (disk_low), and a round that would
// leave less than half of it free is not written at all (it fails, 451).
#pragma once

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "metrics/histogram.hpp"
#include "spool/write_set.hpp"

namespace rocksdb {
class WriteBatch;
}

namespace mailgate::spool {

class Store;

struct WriterStats {
  std::atomic<std::uint64_t> rounds{0};    // WriteBatches written (failed ones too)
  std::atomic<std::uint64_t> syncs{0};     // rounds written with sync=true
  std::atomic<std::uint64_t> requests{0};  // requests completed
  std::atomic<std::uint64_t> synced_requests{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> errors{0};      // failed rounds + rejected requests
  std::atomic<std::uint64_t> write_ns{0};    // total time inside DB::Write
  std::atomic<std::uint64_t> max_batch{0};   // most requests in one round
  std::atomic<std::uint64_t> combine_ns{0};  // total time merging rounds into one batch
  std::atomic<std::uint64_t> free_bytes{0};  // free disk space at the last check
  std::atomic<bool> last_write_ok{true};     // the last round was written (readiness)
  metrics::Histogram write_seconds{metrics::spool_write_buckets()};  // one DB::Write (+ sync)
  metrics::Histogram batch_size{metrics::batch_size_buckets()};      // requests per round
};

class SpoolWriter {
 public:
  using Completion = std::function<void(std::error_code)>;  // runs on the writer thread
  // The actual write; replaceable in tests to inject failures.
  using WriteFn = std::function<bool(rocksdb::WriteBatch&, bool sync, std::string& err)>;
  // Where write errors are reported (default: one line on stderr).
  using ErrorLog = std::function<void(const std::string&)>;

  SpoolWriter(Store& store, std::uint64_t max_queue_bytes, std::uint64_t min_free_space);
  ~SpoolWriter();  // stop()

  void start();
  // Writes everything already submitted, then joins the thread. Later submits
  // complete with an error.
  void stop();

  void set_write_fn(WriteFn fn);     // before start()
  void set_error_log(ErrorLog log);  // before start()

  // Thread-safe. `done` is called on the writer thread (after stop(): at
  // once, on the calling thread, with std::errc::operation_canceled). Rounds
  // of several requests are replayed into one batch: a request whose set
  // holds anything but Put/Delete/SingleDelete/DeleteRange/Merge/LogData on
  // this store's column families completes with std::errc::invalid_argument.
  void submit(WriteSet&& set, bool sync, Completion done);

  // Asio-style: completes with void(std::error_code) on the caller's executor.
  // The pending write counts as outstanding work on that executor (so its
  // io_context::run() does not return while the write is in flight).
  template <class Token>
  auto async_write(WriteSet set, bool sync, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, WriteSet b, bool s) {
          auto work = asio::make_work_guard(asio::get_associated_executor(handler));
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          submit(std::move(b), s, [h, work](std::error_code ec) mutable {
            asio::post(work.get_executor(), [h, ec]() mutable { (*h)(ec); });
            work.reset();
          });
        },
        token, std::move(set), sync);
  }

  // true while free disk space is below min_free_space (checked about once a
  // second, and before every write).
  bool disk_low() const { return disk_low_.load(std::memory_order_relaxed); }
  const WriterStats& stats() const { return stats_; }
  std::uint64_t min_free_space() const { return min_free_space_; }
  std::uint64_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }

 private:
  struct Request {
    WriteSet set;
    bool sync;
    std::uint64_t bytes;
    Completion done;
  };
  void run();
  std::uint64_t check_disk();            // the free bytes (on error: the max, unknown)
  bool fits(std::uint64_t bytes) const;  // mu_ held
  void admit_parked();                   // mu_ held
  void write_round(std::deque<Request>& round);
  void log_error(const std::string& msg);

  Store& store_;
  std::uint64_t max_queue_bytes_;
  std::uint64_t min_free_space_;
  WriteFn write_fn_;
  ErrorLog error_log_;
  std::unique_ptr<rocksdb::WriteBatch> combined_;  // reused by the writer thread
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;   // admitted
  std::deque<Request> parked_;  // waiting for space
  std::atomic<std::uint64_t> queued_bytes_{0};
  bool stopping_ = false;
  bool started_ = false;
  std::atomic<bool> disk_low_{false};
  WriterStats stats_;
  std::thread thread_;
};

}  // namespace mailgate::spool
