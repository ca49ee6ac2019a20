// eventlog/delivery_log: the delivery log (DESIGN §9): one JSON object per
// line per event (reception, delivery, transient_failure, bounce, expiration,
// admin_bounce, rejection, discard, async_bounce, complaint). Workers append records to their own
// queue (a short mutex held only to push); one logger thread drains every
// queue, writes and flushes. Promises: while the file can be written no
// record is dropped; while it cannot (disk full, unwritable or unopenable
// path) the logger keeps at most `max_pending` bytes of unwritten lines,
// retries the write (and the open) every 200 ms, and beyond the bound drops
// the oldest lines, counted in dropped() and reported on the process log at
// most every 10 s, never per record; once writes succeed again the lines
// kept are written in order. A worker's queue is a backstop capped at
// max_pending / producers (drops its oldest too), reached only if the
// logger thread itself stalls: memory stays under ~2 × max_pending.
// reopen() (SIGHUP) makes the logger close and reopen the path, so logrotate
// works, also while writes fail. stop() writes what it can within
// kStopBound, then gives up and reports (and counts) what was lost.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
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
  std::string tls_error;  // outbound: why TLS policy refused a connection (RFC 8460 result type)
  std::string auth_user;  // inbound: the AUTH identity (every record of the message)
  std::uint64_t size = 0;
  std::vector<std::pair<std::string, std::string>> meta;  // msg:set_meta (tenant, ...)
  // Inbound feedback (async_bounce, complaint): `id` is the original
  // message's, written as null when the report matched none (id_null);
  // report_id is the consumed report's own id.
  bool id_null = false;
  std::string report_id;
  std::string feedback_type;        // complaint: the ARF Feedback-Type
  std::string original_message_id;  // the Message-ID the report returned
  std::string reporter;             // Reporting-MTA / ARF User-Agent
};

// The record's tenant and campaign (msg:set_tenant / set_campaign, kept in
// its metadata); "" when unset or not a valid name. to_json() writes them as
// top-level "tenant" and "campaign" keys (DESIGN §9).
std::string_view tenant_of(const LogRecord& r);
std::string_view campaign_of(const LogRecord& r);
std::string to_json(const LogRecord& r);  // one line, no newline
// Epoch milliseconds as "2026-11-28T17:04:00.000Z" (UTC), as in the log and the API.
std::string iso_time(std::int64_t ms);

class DeliveryLog {
 public:
  static constexpr std::uint64_t kDefaultMaxPending = 64ull << 20;  // log.max_pending
  static constexpr std::chrono::milliseconds kRetryInterval{200};
  static constexpr std::chrono::seconds kReportInterval{10};  // drop reports, at most this often
  static constexpr std::chrono::seconds kStopBound{3};

  // `path` empty: records are counted and discarded (logging disabled).
  DeliveryLog(std::string path, unsigned producers, std::uint64_t max_pending = kDefaultMaxPending);
  ~DeliveryLog();  // stop()

  void start();
  void stop();    // writes what it can within kStopBound, then joins
  void reopen();  // thread-safe; async-signal-unsafe (call from the signal loop)

  // Thread-safe; `producer` is the worker index (each has its own queue).
  void write(unsigned producer, LogRecord record);

  std::uint64_t written() const { return written_.load(); }  // lines in the file (or discarded)
  std::uint64_t dropped() const { return dropped_.load(); }  // lost to max_pending or to stop
  std::uint64_t pending_bytes() const { return pending_bytes_.load(); }  // held by the logger
  // Lines the logger holds (not those still in the workers' queues): once
  // written() + dropped() + pending_lines() equals every record handed to
  // write(), the workers' queues are empty.
  std::uint64_t pending_lines() const { return pending_lines_.load(); }
  std::uint64_t count(const std::string& event) const;

 private:
  struct Queue {
    std::mutex mu;
    std::deque<LogRecord> records;
    std::uint64_t bytes = 0;  // estimated (record_bytes)
  };
  using Clock = std::chrono::steady_clock;
  void run();
  bool open_file();  // false: reported (rate-limited) and retried
  void take_queued();
  void trim();
  bool write_some();  // false: the write failed (reported, retry_at_ set)
  void fill_chunk();
  void flush();
  void update_pending();
  void note_failure(const std::string& message);
  void note_success();
  void report_drops(bool force);
  void give_up_at_stop();

  std::string path_;
  std::uint64_t max_pending_;
  std::uint64_t queue_cap_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pending_ = false, stopping_ = false, reopen_ = false;
  std::atomic<std::uint64_t> written_{0}, dropped_{0}, pending_bytes_{0}, pending_lines_{0};
  mutable std::mutex counts_mu_;
  std::vector<std::pair<std::string, std::uint64_t>> counts_;
  std::thread thread_;

  // The logger thread's own state.
  int fd_ = -1;
  std::deque<std::string> backlog_;  // serialized lines (with '\n') not yet in chunk_
  std::uint64_t backlog_bytes_ = 0;
  std::string chunk_;  // lines being written; chunk_off_ bytes of it are in the file
  std::size_t chunk_off_ = 0, chunk_lines_ = 0;
  bool failing_ = false;
  std::string last_error_;
  Clock::time_point retry_at_{}, failing_since_{}, last_report_{};
  std::uint64_t dropped_reported_ = 0, dropped_at_failure_ = 0;
};

}  // namespace mailgate::eventlog
