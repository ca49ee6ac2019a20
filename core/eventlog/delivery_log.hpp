// eventlog/delivery_log: the delivery log (DESIGN §9): one JSON object per
// line per event (reception, delivery, transient_failure, bounce, expiration,
// admin_bounce, rejection, discard). Workers append records to their own
// queue (a short mutex held only to push); one logger thread drains every
// queue, writes and flushes. Promises: no record is ever dropped (queues
// grow instead, with a warning past a high-water mark); reopen() (SIGHUP)
// makes the logger close and reopen the path, so logrotate works; a write
// error is reported on stderr and retried, never a crash.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mailgate::eventlog {

struct LogRecord {
  const char* event = "";  // one of the names above
  std::int64_t time_ms = 0;
  std::string id;
  std::string sender;
  std::string recipient;
  std::string destination;
  std::string mx;  // remote host name or address
  int code = 0;    // reply code (0: none)
  std::string enhanced;
  std::string text;
  std::string bounce_class;
  std::uint32_t attempt = 0;
  bool tls = false;
  std::string tls_version, tls_cipher;  // inbound: the client's TLS (reception)
  std::string auth_user;                // inbound: the AUTH identity (every record of the message)
  std::uint64_t size = 0;
  std::vector<std::pair<std::string, std::string>> meta;  // msg:set_meta (tenant, ...)
};

std::string to_json(const LogRecord& r);  // one line, no newline
// Epoch milliseconds as "2026-11-28T17:04:00.000Z" (UTC), as in the log and the API.
std::string iso_time(std::int64_t ms);

class DeliveryLog {
 public:
  // `path` empty: records are counted and discarded (logging disabled).
  DeliveryLog(std::string path, unsigned producers);
  ~DeliveryLog();  // stop()

  void start();
  void stop();    // writes everything queued, then joins
  void reopen();  // thread-safe; async-signal-unsafe (call from the signal loop)

  // Thread-safe; `producer` is the worker index (each has its own queue).
  void write(unsigned producer, LogRecord record);

  std::uint64_t written() const { return written_.load(); }
  std::uint64_t count(const std::string& event) const;

 private:
  struct Queue {
    std::mutex mu;
    std::vector<LogRecord> records;
  };
  void run();
  void open_file();

  std::string path_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, stopping_ = false, reopen_ = false;
  std::atomic<std::uint64_t> written_{0};
  mutable std::mutex counts_mu_;
  std::vector<std::pair<std::string, std::uint64_t>> counts_;
  int fd_ = -1;
  std::thread thread_;
};

}  // namespace mailgate::eventlog
