// policy/crypt: see crypt.hpp.
#include "policy/crypt.hpp"
#include "net/thread_name.hpp"

#include <crypt.h>

#include <cstring>
#include <memory>

namespace mailgate::policy {
namespace {

// Equal, looking at every octet whatever the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

bool crypt_matches(std::string_view password, std::string_view hash) {
  if (password.empty() || hash.empty() || password.size() >= CRYPT_MAX_PASSPHRASE_SIZE ||
      hash.size() >= CRYPT_OUTPUT_SIZE || password.find('\0') != std::string_view::npos ||
      hash.find('\0') != std::string_view::npos)
    return false;
  // "*" and "!" start no valid setting but are the locked-account markers of
  // shadow files; crypt_rn refuses them too, this just says so.
  if (hash.front() == '*' || hash.front() == '!') return false;
  // crypt_data is ~32 KiB: on the heap, zeroed (as crypt_rn asks) and wiped
  // again after use (it held the password).
  auto data = std::make_unique<crypt_data>();
  const std::string pw(password), setting(hash);
  const char* out = crypt_rn(pw.c_str(), setting.c_str(), data.get(), sizeof(crypt_data));
  const bool ok = out != nullptr && out[0] != '*' && constant_time_equal(out, hash);
  explicit_bzero(data.get(), sizeof(crypt_data));
  return ok;
}

CryptPool::CryptPool(unsigned threads, std::size_t max_queue) : max_queue_(max_queue) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      net::name_this_thread("crypt");
      run();
    });
}

CryptPool::~CryptPool() { stop(); }

bool CryptPool::submit(std::string password, std::string hash,
                       std::chrono::steady_clock::time_point deadline, Done done) {
  return run(
      [this, password = std::move(password), hash = std::move(hash), done = std::move(done)] {
        const bool matched = crypt_matches(password, hash);
        {
          std::lock_guard lock(mu_);
          ++checks_;
        }
        done(matched);
      },
      deadline);
}

bool CryptPool::run(std::function<void()> job, std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    if (queue_.size() >= max_queue_) {
      ++refused_;
      return false;
    }
    queue_.push_back({std::move(job), deadline});
  }
  cv_.notify_one();
  return true;
}

void CryptPool::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  std::deque<Job> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(queue_);
  }
}

std::uint64_t CryptPool::checks() const {
  std::lock_guard lock(mu_);
  return checks_;
}

std::uint64_t CryptPool::refused() const {
  std::lock_guard lock(mu_);
  return refused_;
}

std::uint64_t CryptPool::expired() const {
  std::lock_guard lock(mu_);
  return expired_;
}

void CryptPool::run() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      if (std::chrono::steady_clock::now() > job.deadline) {
        ++expired_;
        continue;  // its caller gave up (hook_timeout): no CPU for it
      }
    }
    job.work();
  }
}

}  // namespace mailgate::policy
