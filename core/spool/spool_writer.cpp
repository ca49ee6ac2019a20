// spool/spool_writer: the group-commit writer thread (see spool_writer.hpp).
// Each round takes every admitted request, writes them as ONE WriteBatch
// (a single request's batch is written as is; several are replayed into a
// reused combined batch, since RocksDB 7.8 has no public WriteBatch append),
// synced if any request asked for it, then completes them all; requests that
// arrive meanwhile form the next round.
// Promises: admitted bytes never exceed max_queue_bytes, except that one
// request is always admitted when nothing else is queued or being written (so
// an oversize request cannot deadlock); parked requests are admitted in FIFO
// order; every submitted request is completed exactly once (success,
// io_error for a failed round, invalid_argument for a batch that cannot be
// replayed, operation_canceled after stop()); stop() drains admitted and
// parked requests before joining. Free disk space is checked at start() and
// about once per second.
#include "spool/spool_writer.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>
#include <chrono>
#include <cstdio>
#include <exception>
#include <limits>
#include <vector>

#include "net/thread_name.hpp"
#include "spool/store.hpp"

namespace mailgate::spool {

namespace {

using Status = rocksdb::Status;
using Slice = rocksdb::Slice;

// Replays one request's batch into the combined batch of the round.
class Replay : public rocksdb::WriteBatch::Handler {
 public:
  Replay(const Store& store, rocksdb::WriteBatch& out) : store_(store), out_(out) {}

  Status PutCF(std::uint32_t cf, const Slice& k, const Slice& v) override {
    auto* h = family(cf);
    return h ? out_.Put(h, k, v) : unknown(cf);
  }
  Status DeleteCF(std::uint32_t cf, const Slice& k) override {
    auto* h = family(cf);
    return h ? out_.Delete(h, k) : unknown(cf);
  }
  Status SingleDeleteCF(std::uint32_t cf, const Slice& k) override {
    auto* h = family(cf);
    return h ? out_.SingleDelete(h, k) : unknown(cf);
  }
  Status DeleteRangeCF(std::uint32_t cf, const Slice& b, const Slice& e) override {
    auto* h = family(cf);
    return h ? out_.DeleteRange(h, b, e) : unknown(cf);
  }
  Status MergeCF(std::uint32_t cf, const Slice& k, const Slice& v) override {
    auto* h = family(cf);
    return h ? out_.Merge(h, k, v) : unknown(cf);
  }
  void LogData(const Slice& blob) override { out_.PutLogData(blob); }

 private:
  rocksdb::ColumnFamilyHandle* family(std::uint32_t cf) const { return store_.family_by_id(cf); }
  static Status unknown(std::uint32_t cf) {
    return Status::InvalidArgument("unknown column family id " + std::to_string(cf));
  }
  const Store& store_;
  rocksdb::WriteBatch& out_;
};

std::uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void update_max(std::atomic<std::uint64_t>& m, std::uint64_t v) {
  auto cur = m.load(std::memory_order_relaxed);
  while (v > cur && !m.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

}  // namespace

SpoolWriter::SpoolWriter(Store& store, std::uint64_t max_queue_bytes, std::uint64_t min_free_space)
    : store_(store),
      max_queue_bytes_(max_queue_bytes),
      min_free_space_(min_free_space),
      combined_(std::make_unique<rocksdb::WriteBatch>()) {
  write_fn_ = [this](rocksdb::WriteBatch& batch, bool sync, std::string& err) {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    auto s = store_.db()->Write(wo, &batch);
    if (s.ok()) return true;
    err = s.ToString();
    // A failed WAL write puts RocksDB in a background-error state that fails
    // every later write until resumed; try to clear it so later rounds can
    // succeed once the cause (e.g. a full disk) is gone.
    auto r = store_.db()->Resume();
    if (!r.ok()) err += "; resume: " + r.ToString();
    return false;
  };
  error_log_ = [](const std::string& msg) {
    std::fprintf(stderr, "spool writer: %s\n", msg.c_str());
  };
}

SpoolWriter::~SpoolWriter() { stop(); }

void SpoolWriter::set_write_fn(WriteFn fn) { write_fn_ = std::move(fn); }
void SpoolWriter::set_error_log(ErrorLog log) { error_log_ = std::move(log); }

void SpoolWriter::log_error(const std::string& msg) {
  try {
    if (error_log_) error_log_(msg);
  } catch (...) {
  }
}

void SpoolWriter::start() {
  std::lock_guard lk(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  check_disk();
  thread_ = std::thread([this] {
    net::name_this_thread("spool-writer");
    run();
  });
}

void SpoolWriter::stop() {
  std::deque<Request> orphans;
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    if (!started_) {  // no thread will ever drain them
      orphans.swap(queue_);
      for (auto& r : parked_) orphans.push_back(std::move(r));
      parked_.clear();
      queued_bytes_.store(0, std::memory_order_relaxed);
    }
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& r : orphans) {
    try {
      if (r.done) r.done(std::make_error_code(std::errc::operation_canceled));
    } catch (...) {
    }
  }
}

bool SpoolWriter::fits(std::uint64_t bytes) const {
  auto q = queued_bytes_.load(std::memory_order_relaxed);
  return q == 0 || q + bytes <= max_queue_bytes_;
}

void SpoolWriter::admit_parked() {
  while (!parked_.empty() && fits(parked_.front().bytes)) {
    queued_bytes_.fetch_add(parked_.front().bytes, std::memory_order_relaxed);
    queue_.push_back(std::move(parked_.front()));
    parked_.pop_front();
  }
}

void SpoolWriter::submit(WriteSet&& set, bool sync, Completion done) {
  std::uint64_t bytes = set.bytes();
  bool wake = false;
  {
    std::unique_lock lk(mu_);
    if (stopping_) {
      lk.unlock();
      if (done) done(std::make_error_code(std::errc::operation_canceled));
      return;
    }
    Request r{std::move(set), sync, bytes, std::move(done)};
    // FIFO: nobody overtakes a parked request.
    if (parked_.empty() && fits(bytes)) {
      wake = queue_.empty();
      queued_bytes_.fetch_add(bytes, std::memory_order_relaxed);
      queue_.push_back(std::move(r));
    } else {
      parked_.push_back(std::move(r));
    }
  }
  if (wake) cv_.notify_one();
}

std::uint64_t SpoolWriter::check_disk() {
  struct statvfs st {};
  if (::statvfs(store_.path().c_str(), &st) != 0)  // unknown: keep the last verdict, block nothing
    return std::numeric_limits<std::uint64_t>::max();
  auto avail = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  stats_.free_bytes.store(avail, std::memory_order_relaxed);
  disk_low_.store(min_free_space_ != 0 && avail < min_free_space_, std::memory_order_relaxed);
  return avail;
}

void SpoolWriter::run() {
  using clock = std::chrono::steady_clock;
  constexpr auto kDiskInterval = std::chrono::seconds(1);
  auto next_disk_check = clock::now() + kDiskInterval;
  std::deque<Request> round;
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait_until(lk, next_disk_check, [&] { return !queue_.empty() || stopping_; });
    if (clock::now() >= next_disk_check) {
      lk.unlock();
      check_disk();
      lk.lock();
      next_disk_check = clock::now() + kDiskInterval;
    }
    if (queue_.empty()) {
      // Parked requests are admitted whenever bytes free up and nothing is in
      // flight here, so parked_ should be empty too; be defensive anyway.
      admit_parked();
      if (queue_.empty() && stopping_ && parked_.empty()) return;
      continue;
    }
    round.swap(queue_);
    lk.unlock();
    write_round(round);  // completes every request of the round
    round.clear();
    lk.lock();
  }
}

void SpoolWriter::write_round(std::deque<Request>& round) {
  bool sync = false;
  std::uint64_t round_bytes = 0;
  for (const auto& r : round) {
    sync = sync || r.sync;
    round_bytes += r.bytes;
  }

  // Requests whose batch could not be replayed into the combined batch.
  std::vector<bool> rejected(round.size(), false);
  std::size_t accepted = round.size();
  rocksdb::WriteBatch* batch = &round.front().set.batch();
  if (round.size() > 1) {
    auto c0 = now_ns();
    combined_->Clear();
    Replay replay(store_, *combined_);
    for (std::size_t i = 0; i < round.size(); ++i) {
      combined_->SetSavePoint();
      auto s = round[i].set.batch().Iterate(&replay);
      if (s.ok()) {
        combined_->PopSavePoint();
      } else {
        combined_->RollbackToSavePoint();
        rejected[i] = true;
        --accepted;
        log_error("request rejected: " + s.ToString());
      }
    }
    batch = combined_.get();
    stats_.combine_ns.fetch_add(now_ns() - c0, std::memory_order_relaxed);
  }

  bool ok = true;
  std::string err;
  std::uint64_t written_bytes = 0, synced = 0;
  // Below half of min_free_space nothing is written: RocksDB must never meet
  // a full disk, because a failed WAL write leaves its log writer broken and
  // the next write to it aborts the process in builds with assertions (as
  // Debian's librocksdb 7.8 is). The requests fail (451 4.3.0) instead.
  const auto avail = accepted > 0 && min_free_space_ != 0 ? check_disk() : 0;
  const bool no_room = min_free_space_ != 0 && avail < min_free_space_ / 2 + round_bytes;
  if (accepted > 0) {
    auto t0 = now_ns();
    try {
      if (no_room) {
        ok = false;
        err = "free disk space (" + std::to_string(avail) +
              " bytes) is below half of spool.min_free_space: nothing written";
      } else {
        ok = write_fn_(*batch, sync, err);
      }
    } catch (const std::exception& e) {
      ok = false;
      err = e.what();
    }
    const auto took = now_ns() - t0;
    stats_.write_ns.fetch_add(took, std::memory_order_relaxed);
    stats_.write_seconds.observe(static_cast<double>(took) / 1e9);
    stats_.batch_size.observe(static_cast<double>(accepted));
    stats_.rounds.fetch_add(1, std::memory_order_relaxed);
    stats_.last_write_ok.store(ok, std::memory_order_relaxed);
    if (ok) {
      if (sync) {
        stats_.syncs.fetch_add(1, std::memory_order_relaxed);
        synced = accepted;
      }
      for (std::size_t i = 0; i < round.size(); ++i)
        if (!rejected[i]) written_bytes += round[i].bytes;
    } else {
      stats_.errors.fetch_add(1, std::memory_order_relaxed);
      log_error("write of " + std::to_string(accepted) + " request(s) failed: " + err);
    }
  }
  auto n_rejected = round.size() - accepted;
  if (n_rejected) stats_.errors.fetch_add(n_rejected, std::memory_order_relaxed);
  stats_.bytes.fetch_add(written_bytes, std::memory_order_relaxed);
  stats_.synced_requests.fetch_add(synced, std::memory_order_relaxed);
  update_max(stats_.max_batch, round.size());

  // Free the round's bytes and admit parked requests before completing, so
  // the next round can already be gathered while completions run.
  {
    std::lock_guard lk(mu_);
    queued_bytes_.fetch_sub(round_bytes, std::memory_order_relaxed);
    admit_parked();
  }

  stats_.requests.fetch_add(round.size(), std::memory_order_relaxed);
  for (std::size_t i = 0; i < round.size(); ++i) {
    std::error_code ec;
    if (rejected[i])
      ec = std::make_error_code(std::errc::invalid_argument);
    else if (!ok)
      ec = std::make_error_code(std::errc::io_error);
    try {
      if (round[i].done) round[i].done(ec);
    } catch (const std::exception& e) {
      log_error(std::string("completion threw: ") + e.what());
    } catch (...) {
      log_error("completion threw");
    }
  }
  // Do not keep the buffer of an exceptionally large round around.
  if (combined_->GetDataSize() > (4u << 20)) combined_ = std::make_unique<rocksdb::WriteBatch>();
}

}  // namespace mailgate::spool
