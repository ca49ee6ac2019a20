// policy/crypt: password hashes for mailgate.crypt_verify (the auth_file
// plugin's users file): crypt(3) of libxcrypt, which takes SHA-512 ($6$),
// yescrypt ($y$, Debian's default) and whatever else it was built with, and a
// small process-wide thread pool to run it on, because a yescrypt check costs
// tens of milliseconds of CPU and must not stall a worker's event loop.
// Promises:
// - crypt_matches() is thread-safe (crypt_rn with its own crypt_data), false
//   for a malformed or unsupported hash, an empty password, or a NUL in
//   either, and compares the computed hash with the stored one in constant
//   time (for hashes of one length).
// - CryptPool runs at most `threads` checks at once and holds at most
//   `max_queue` waiting ones: submit() refuses more (false) at once, so a
//   flood of AUTH attempts costs bounded CPU and memory. A job still queued
//   when its deadline passed is dropped without running. `done` runs on a
//   pool thread; after stop() (or the destructor) returns no `done` runs any
//   more and queued jobs are dropped (their `done` destroyed, never called).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace mailgate::policy {

bool crypt_matches(std::string_view password, std::string_view hash);

class CryptPool {
 public:
  static constexpr unsigned kThreads = 2;
  static constexpr std::size_t kMaxQueue = 256;

  using Done = std::function<void(bool matched)>;

  explicit CryptPool(unsigned threads = kThreads, std::size_t max_queue = kMaxQueue);
  ~CryptPool();
  CryptPool(const CryptPool&) = delete;
  CryptPool& operator=(const CryptPool&) = delete;

  // false: the queue is full or the pool stopped (`done` is not called).
  bool submit(std::string password, std::string hash,
              std::chrono::steady_clock::time_point deadline, Done done);
  void stop();

  std::uint64_t checks() const;   // crypt(3) runs done
  std::uint64_t refused() const;  // submits refused for a full queue
  std::uint64_t expired() const;  // jobs dropped at their deadline

 private:
  struct Job {
    std::string password, hash;
    std::chrono::steady_clock::time_point deadline;
    Done done;
  };
  void run();

  const std::size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::uint64_t checks_ = 0, refused_ = 0, expired_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace mailgate::policy
