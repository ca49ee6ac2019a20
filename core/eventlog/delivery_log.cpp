// eventlog/delivery_log: see delivery_log.hpp.
#include "eventlog/delivery_log.hpp"

#include "net/thread_name.hpp"
#include "tenancy/tenancy.hpp"
#include "text/json_string.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace mailgate::eventlog {

namespace {

// What a queued record costs in memory (its strings and the struct): the
// worker queues' backstop cap counts this, the logger counts serialized lines.
std::uint64_t record_bytes(const LogRecord& r) {
  std::uint64_t n = sizeof(LogRecord) + r.id.size() + r.sender.size() + r.recipient.size() +
                    r.report_id.size() + r.feedback_type.size() + r.original_message_id.size() +
                    r.reporter.size() + r.destination.size() + r.mx.size() + r.enhanced.size() +
                    r.text.size() + r.bounce_class.size() + r.tls_version.size() +
                    r.tls_cipher.size() + r.tls_error.size() + r.auth_user.size();
  for (const auto& [k, v] : r.meta) n += k.size() + v.size() + 2 * sizeof(std::string);
  return n;
}

}  // namespace

namespace {

// "2026-11-28T17:04:00.000Z" into buf; returns its length (24).
std::size_t format_iso_time(std::int64_t ms, char (&buf)[40]) {
  const std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ms % 1000));
  return n > 0 ? std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1) : 0;
}

}  // namespace

std::string iso_time(std::int64_t ms) {
  char buf[40];
  return std::string(buf, format_iso_time(ms, buf));
}

namespace {
std::string_view meta_name(const LogRecord& r, std::string_view key) {
  for (const auto& [k, v] : r.meta)
    if (k == key) return tenancy::valid_name(v) ? std::string_view(v) : std::string_view();
  return {};
}

// A JSON object written member by member into one string. The caller adds
// members in ascending key order: the delivery log's lines have always had
// sorted keys (they were dumped from a sorted document tree), and readers
// such as the tests and the README's examples see them in that order.
class JsonLine {
 public:
  explicit JsonLine(std::string& out) : out_(out) { out_.push_back('{'); }
  void string(std::string_view key, std::string_view value) {
    this->key(key);
    text::append_json_string(out_, value);
  }
  void string_if(std::string_view key, std::string_view value) {
    if (!value.empty()) string(key, value);
  }
  void number(std::string_view key, std::uint64_t value) {
    this->key(key);
    char buf[24];
    const int n = std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(value));
    out_.append(buf, static_cast<std::size_t>(n));
  }
  void literal(std::string_view key, std::string_view json) { member(key).append(json); }
  // Writes the key; the caller appends the value (a nested object) to the result.
  std::string& member(std::string_view key) {
    this->key(key);
    return out_;
  }
  void close() { out_.push_back('}'); }

 private:
  void key(std::string_view k) {
    if (!first_) out_.push_back(',');
    first_ = false;
    text::append_json_string(out_, k);
    out_.push_back(':');
  }
  std::string& out_;
  bool first_ = true;
};

// msg:set_meta's pairs as a JSON object: keys sorted, a key set twice keeps
// its last value (as the document tree did).
void append_meta(std::string& out, const std::vector<std::pair<std::string, std::string>>& meta) {
  std::vector<const std::pair<std::string, std::string>*> sorted;
  sorted.reserve(meta.size());
  for (const auto& kv : meta) sorted.push_back(&kv);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto* a, const auto* b) { return a->first < b->first; });
  JsonLine m(out);
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i + 1 < sorted.size() && sorted[i + 1]->first == sorted[i]->first) continue;
    m.string(sorted[i]->first, sorted[i]->second);
  }
  m.close();
}

}  // namespace

std::string_view tenant_of(const LogRecord& r) { return meta_name(r, tenancy::kTenantKey); }
// DESIGN §9: records carry the campaign whenever one is set, with or without
// a tenant (a campaign without a tenant still names the mailing for the
// sender's application; only scheduling and suspensions need the tenant).
std::string_view campaign_of(const LogRecord& r) { return meta_name(r, tenancy::kCampaignKey); }

std::string to_json(const LogRecord& r) {
  std::string out;
  out.reserve(320 + r.text.size() + r.sender.size() + r.recipient.size());
  JsonLine j(out);
  // Members in ascending key order (see JsonLine).
  if (r.attempt) j.number("attempt", r.attempt);
  j.string_if("auth", r.auth_user);
  j.string_if("bounce_class", r.bounce_class);
  const std::string_view campaign = campaign_of(r);
  j.string_if("campaign", campaign);
  if (r.code) j.number("code", static_cast<std::uint64_t>(r.code));
  j.string_if("destination", r.destination);
  if (r.code) j.string("enhanced", r.enhanced);
  j.string("event", r.event);
  j.string_if("feedback_type", r.feedback_type);
  if (r.id_null)
    j.literal("id", "null");
  else
    j.string("id", r.id);
  if (!r.meta.empty()) append_meta(j.member("meta"), r.meta);
  j.string_if("mx", r.mx);
  j.string_if("original_message_id", r.original_message_id);
  j.string_if("recipient", r.recipient);
  j.string_if("report_id", r.report_id);
  j.string_if("reporter", r.reporter);
  j.string("sender", r.sender);
  if (r.size) j.number("size", r.size);
  j.string_if("tenant", tenant_of(r));
  if (r.code) j.string("text", r.text);
  char time[40];
  j.string("time", std::string_view(time, format_iso_time(r.time_ms, time)));
  j.literal("tls", r.tls ? "true" : "false");
  j.string_if("tls_cipher", r.tls_cipher);
  j.string_if("tls_error", r.tls_error);
  j.string_if("tls_version", r.tls_version);
  j.close();
  return out;
}

DeliveryLog::DeliveryLog(std::string path, unsigned producers, std::uint64_t max_pending)
    : path_(std::move(path)),
      max_pending_(max_pending),
      queue_cap_(std::max<std::uint64_t>(max_pending / std::max(1u, producers), 1)) {
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

bool DeliveryLog::open_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (path_.empty()) return true;
  std::error_code ec;
  auto dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ >= 0) {
    end_torn_line(fd_, path_);
    return true;
  }
  note_failure("cannot open delivery log " + path_ + ": " + std::strerror(errno));
  return false;
}

void DeliveryLog::start() {
  open_file();
  thread_ = std::thread([this] {
    net::name_this_thread("delivery-log");
    run();
  });
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
  std::uint64_t dropped = 0;
  {
    std::lock_guard lk(q.mu);
    q.bytes += record_bytes(record);
    q.records.push_back(std::move(record));
    // The backstop: only a stalled logger thread lets a queue grow this far.
    while (q.bytes > queue_cap_ && q.records.size() > 1) {
      q.bytes -= record_bytes(q.records.front());
      q.records.pop_front();
      ++dropped;
    }
    n = q.records.size();
  }
  if (dropped) dropped_ += dropped;
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

// Moves every worker queue's records into the backlog as JSON lines.
void DeliveryLog::take_queued() {
  std::deque<LogRecord> batch;
  for (auto& q : queues_) {
    {
      std::lock_guard lk(q->mu);
      batch.swap(q->records);
      q->bytes = 0;
    }
    std::lock_guard lk(counts_mu_);
    for (auto& r : batch) {
      auto it = std::find_if(counts_.begin(), counts_.end(),
                             [&](const auto& p) { return p.first == r.event; });
      if (it == counts_.end())
        counts_.emplace_back(r.event, 1);
      else
        ++it->second;
      if (path_.empty()) continue;
      auto line = to_json(r);
      line += '\n';
      backlog_bytes_ += line.size();
      backlog_.push_back(std::move(line));
    }
    if (path_.empty()) written_ += batch.size();
    batch.clear();
  }
}

// Drops the oldest lines until what waits fits in max_pending (the chunk in
// progress stays whole: part of it may be in the file already).
void DeliveryLog::trim() {
  const std::uint64_t in_chunk = chunk_.size() - chunk_off_;
  std::uint64_t dropped = 0;
  while (!backlog_.empty() && backlog_bytes_ + in_chunk > max_pending_) {
    backlog_bytes_ -= backlog_.front().size();
    backlog_.pop_front();
    ++dropped;
  }
  dropped_ += dropped;
}

// The next chunk: whole lines from the backlog, up to 1 MiB (or a quarter of
// max_pending) unless a single line is longer.
void DeliveryLog::fill_chunk() {
  const std::uint64_t limit =
      std::min<std::uint64_t>(1 << 20, std::max<std::uint64_t>(max_pending_ / 4, 1));
  chunk_.clear();
  chunk_off_ = chunk_lines_ = 0;
  while (!backlog_.empty() &&
         (chunk_.empty() || chunk_.size() + backlog_.front().size() <= limit)) {
    chunk_ += backlog_.front();
    backlog_bytes_ -= backlog_.front().size();
    backlog_.pop_front();
    ++chunk_lines_;
  }
}

// One write(2) of the chunk (filled first when empty); true when it wrote or
// there was nothing to write.
bool DeliveryLog::write_some() {
  if (chunk_off_ == chunk_.size()) fill_chunk();
  if (chunk_.empty()) return true;
  const ssize_t n = ::write(fd_, chunk_.data() + chunk_off_, chunk_.size() - chunk_off_);
  if (n < 0 && errno == EINTR) return true;
  if (n <= 0) {
    note_failure("delivery log " + path_ +
                 " write failed: " + (n < 0 ? std::strerror(errno) : "nothing written"));
    return false;
  }
  chunk_off_ += static_cast<std::size_t>(n);
  if (chunk_off_ == chunk_.size()) {
    written_ += chunk_lines_;
    chunk_.clear();
    chunk_off_ = chunk_lines_ = 0;
  }
  return true;
}

void DeliveryLog::note_failure(const std::string& message) {
  const auto now = Clock::now();
  retry_at_ = now + kRetryInterval;
  last_error_ = message;
  if (failing_) return;
  failing_ = true;
  failing_since_ = now;
  dropped_at_failure_ = dropped_.load();
  last_report_ = now;
  spdlog::error("{}; keeping up to {} bytes of records in memory (log.max_pending), retrying",
                message, max_pending_);
}

void DeliveryLog::note_success() {
  if (!failing_) return;
  report_drops(true);
  failing_ = false;
  const double secs = std::chrono::duration<double>(Clock::now() - failing_since_).count();
  spdlog::info("delivery log {}: writing again after {:.1f}s; {} records dropped meanwhile", path_,
               secs, dropped_.load() - dropped_at_failure_);
}

// Rate-limited: one line per kReportInterval at most, never one per record.
void DeliveryLog::report_drops(bool force) {
  const auto d = dropped_.load();
  if (d == dropped_reported_) return;
  const auto now = Clock::now();
  if (!force && now - last_report_ < kReportInterval) return;
  spdlog::warn(
      "delivery log {}: {} records dropped (log.max_pending {} bytes reached; {}); {} in all",
      path_, d - dropped_reported_, max_pending_,
      last_error_.empty() ? "logger stalled" : last_error_, d);
  dropped_reported_ = d;
  last_report_ = now;
}

// Writes while it can; a failure sets retry_at_.
void DeliveryLog::flush() {
  if (path_.empty() || (failing_ && Clock::now() < retry_at_)) return;
  if (fd_ < 0 && !open_file()) return;
  while (chunk_off_ < chunk_.size() || !backlog_.empty())
    if (!write_some()) return;
  note_success();
}

void DeliveryLog::give_up_at_stop() {
  const std::uint64_t lines = backlog_.size() + (chunk_off_ < chunk_.size() ? chunk_lines_ : 0);
  if (lines == 0) return;
  const std::uint64_t bytes = backlog_bytes_ + (chunk_.size() - chunk_off_);
  dropped_ += lines;
  dropped_reported_ = dropped_.load();  // reported here
  spdlog::error(
      "delivery log {}: {} records ({} bytes) could not be written within {}s of stop "
      "({}): they are lost",
      path_, lines, bytes, kStopBound.count(), last_error_);
  backlog_.clear();
  backlog_bytes_ = 0;
  chunk_.clear();
  chunk_off_ = chunk_lines_ = 0;
}

void DeliveryLog::update_pending() {
  pending_bytes_ = backlog_bytes_ + (chunk_.size() - chunk_off_);
  pending_lines_ = backlog_.size() + (chunk_off_ < chunk_.size() ? chunk_lines_ : 0);
}

void DeliveryLog::run() {
  for (;;) {
    bool stopping, reopen;
    {
      std::unique_lock lk(mu_);
      cv_.wait_until(lk, failing_ ? retry_at_ : Clock::now() + kRetryInterval,
                     [this] { return pending_ || stopping_ || reopen_; });
      pending_ = false;
      stopping = stopping_;
      reopen = reopen_;
      reopen_ = false;
    }
    if (reopen && open_file()) retry_at_ = Clock::now();  // a new file: try it at once
    take_queued();
    if (failing_) trim();
    flush();
    if (failing_) trim();
    update_pending();
    report_drops(false);
    if (stopping) break;
  }
  // Stopping: what still waits gets kStopBound to reach the file.
  const auto deadline = Clock::now() + kStopBound;
  for (;;) {
    take_queued();
    flush();
    if (failing_) trim();
    if (chunk_off_ == chunk_.size() && backlog_.empty()) break;
    if (Clock::now() >= deadline) {
      give_up_at_stop();
      break;
    }
    std::this_thread::sleep_until(std::min(retry_at_, deadline));
  }
  update_pending();
  report_drops(true);
}

}  // namespace mailgate::eventlog
