// eventlog/delivery_log: see delivery_log.hpp.
#include "eventlog/delivery_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace mailgate::eventlog {

namespace {
constexpr std::size_t kHighWater = 1'000'000;
}  // namespace

std::string iso_time(std::int64_t ms) {
  const std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

std::string to_json(const LogRecord& r) {
  nlohmann::json j;
  j["event"] = r.event;
  j["time"] = iso_time(r.time_ms);
  j["id"] = r.id;
  j["sender"] = r.sender;
  if (!r.recipient.empty()) j["recipient"] = r.recipient;
  if (!r.destination.empty()) j["destination"] = r.destination;
  if (!r.mx.empty()) j["mx"] = r.mx;
  if (r.code) {
    j["code"] = r.code;
    j["enhanced"] = r.enhanced;
    j["text"] = r.text;
  }
  if (!r.bounce_class.empty()) j["bounce_class"] = r.bounce_class;
  if (r.attempt) j["attempt"] = r.attempt;
  j["tls"] = r.tls;
  if (!r.tls_version.empty()) j["tls_version"] = r.tls_version;
  if (!r.tls_cipher.empty()) j["tls_cipher"] = r.tls_cipher;
  if (!r.tls_error.empty()) j["tls_error"] = r.tls_error;
  if (!r.auth_user.empty()) j["auth"] = r.auth_user;
  if (r.size) j["size"] = r.size;
  if (!r.meta.empty()) {
    auto& m = j["meta"] = nlohmann::json::object();
    for (const auto& [k, v] : r.meta) m[k] = v;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

DeliveryLog::DeliveryLog(std::string path, unsigned producers) : path_(std::move(path)) {
  for (unsigned i = 0; i < std::max(1u, producers); ++i)
    queues_.push_back(std::make_unique<Queue>());
}

DeliveryLog::~DeliveryLog() { stop(); }

namespace {

// A crash (kill -9) can cut the file's last record short. The next record
// then starts on a line of its own, so the cut one stays one bad line and
// the new one is not glued to it (found by tests/faults/test_crash_loop.py).
void end_torn_line(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size == 0) return;
  const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return;
  char last = '\n';
  if (::pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
    if (::write(fd, "\n", 1) != 1)
      std::fprintf(stderr, "mailgate: cannot end the torn last line of %s: %s\n", path.c_str(),
                   std::strerror(errno));
  }
  ::close(rfd);
}

}  // namespace

void DeliveryLog::open_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (path_.empty()) return;
  std::error_code ec;
  auto dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    std::fprintf(stderr, "mailgate: cannot open delivery log %s: %s\n", path_.c_str(),
                 std::strerror(errno));
    return;
  }
  end_torn_line(fd_, path_);
}

void DeliveryLog::start() {
  open_file();
  thread_ = std::thread([this] { run(); });
}

void DeliveryLog::stop() {
  {
    std::lock_guard lk(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void DeliveryLog::reopen() {
  {
    std::lock_guard lk(mu_);
    reopen_ = true;
  }
  cv_.notify_one();
}

void DeliveryLog::write(unsigned producer, LogRecord record) {
  auto& q = *queues_[producer % queues_.size()];
  std::size_t n;
  {
    std::lock_guard lk(q.mu);
    q.records.push_back(std::move(record));
    n = q.records.size();
  }
  if (n == kHighWater) std::fprintf(stderr, "mailgate: delivery log is %zu records behind\n", n);
  if (n == 1) {
    std::lock_guard lk(mu_);
    pending_ = true;
    cv_.notify_one();
  }
}

std::uint64_t DeliveryLog::count(const std::string& event) const {
  std::lock_guard lk(counts_mu_);
  for (const auto& [e, n] : counts_)
    if (e == event) return n;
  return 0;
}

void DeliveryLog::run() {
  std::vector<LogRecord> batch;
  std::string out;
  for (;;) {
    bool stopping, reopen;
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::milliseconds(200),
                   [this] { return pending_ || stopping_ || reopen_; });
      pending_ = false;
      stopping = stopping_;
      reopen = reopen_;
      reopen_ = false;
    }
    if (reopen) open_file();
    out.clear();
    std::size_t records = 0;
    for (auto& q : queues_) {
      {
        std::lock_guard lk(q->mu);
        batch.swap(q->records);
      }
      std::lock_guard lk(counts_mu_);
      for (const auto& r : batch) {
        out += to_json(r);
        out += '\n';
        auto it = std::find_if(counts_.begin(), counts_.end(),
                               [&](const auto& p) { return p.first == r.event; });
        if (it == counts_.end())
          counts_.emplace_back(r.event, 1);
        else
          ++it->second;
      }
      records += batch.size();
      batch.clear();
    }
    std::size_t off = 0;
    while (off < out.size() && fd_ >= 0) {
      ssize_t n = ::write(fd_, out.data() + off, out.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "mailgate: delivery log write failed: %s\n", std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      off += static_cast<std::size_t>(n);
    }
    written_ += records;
    if (stopping) {
      bool empty = true;
      for (auto& q : queues_) {
        std::lock_guard lk(q->mu);
        empty = empty && q->records.empty();
      }
      if (empty) return;
    }
  }
}

}  // namespace mailgate::eventlog
