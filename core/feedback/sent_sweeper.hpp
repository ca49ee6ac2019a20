// feedback/sent_sweeper: removes sent-message index entries older than
// feedback.retention (spool/sent_index.hpp), on a thread of its own (its
// reads block), every min(60 s, retention / 4) and at most kPerPass entries
// per write (unsynced: losing a sweep to a crash only delays it).
// Promises: stop() returns promptly (the wait is interruptible); the sweep
// never touches other column families.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace mailgate::spool {
class Store;
class SpoolWriter;
}  // namespace mailgate::spool

namespace mailgate::feedback {

class SentSweeper {
 public:
  static constexpr std::size_t kPerPass = 1000;
  SentSweeper(spool::Store& store, spool::SpoolWriter& writer, std::chrono::milliseconds retention);
  ~SentSweeper();  // stop()
  void start();
  void stop();
  // One pass now (tests): entries removed.
  std::size_t sweep_once();
  std::uint64_t removed() const { return removed_.load(); }

 private:
  void run();
  spool::Store& store_;
  spool::SpoolWriter& writer_;
  std::chrono::milliseconds retention_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> removed_{0};
  std::thread thread_;
};

}  // namespace mailgate::feedback
