// feedback/sent_sweeper: see sent_sweeper.hpp.
#include "feedback/sent_sweeper.hpp"

#include <algorithm>

#include "net/thread_name.hpp"
#include "spool/sent_index.hpp"
#include "spool/spool_writer.hpp"
#include "spool/write_set.hpp"

namespace mailgate::feedback {

SentSweeper::SentSweeper(spool::Store& store, spool::SpoolWriter& writer,
                         std::chrono::milliseconds retention)
    : store_(store), writer_(writer), retention_(retention) {}

SentSweeper::~SentSweeper() { stop(); }

void SentSweeper::start() {
  thread_ = std::thread([this] {
    net::name_this_thread("sent-sweeper");
    run();
  });
}

void SentSweeper::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::size_t SentSweeper::sweep_once() {
  spool::WriteSet set(store_);
  const auto before = spool::wall_clock_ms() - retention_.count();
  const auto n = spool::sweep_sent(store_, before, kPerPass, set);
  if (n == 0) return 0;
  std::mutex m;
  std::condition_variable done_cv;
  bool done = false;
  writer_.submit(std::move(set), false, [&](std::error_code) {
    std::lock_guard lk(m);
    done = true;
    done_cv.notify_all();
  });
  std::unique_lock lk(m);
  done_cv.wait(lk, [&] { return done; });  // one pass at a time: bounded queue use
  removed_.fetch_add(n);
  return n;
}

void SentSweeper::run() {
  const auto interval = std::clamp<std::chrono::milliseconds>(
      retention_ / 4, std::chrono::milliseconds(1000), std::chrono::milliseconds(60'000));
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, interval, [this] { return stopping_; });
    if (stopping_) break;
    lk.unlock();
    while (sweep_once() == kPerPass) {
      std::lock_guard check(mu_);
      if (stopping_) break;
    }
    lk.lock();
  }
}

}  // namespace mailgate::feedback
