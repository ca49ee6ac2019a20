// spool/spool_reader: loads what a delivery attempt needs (envelope, the
// destination's record, the body) on a small pool of reader threads, so
// RocksDB reads never block a worker and never wait behind a commit.
// Promises: the completion runs on the caller's executor; a message that is
// gone completes with errc::no_such_file_or_directory, one that is there but
// cannot be read (I/O error, undecodable record, missing chunk) with
// errc::io_error (counted): never a crash. A body over stream_above() bytes
// is not loaded whole (LoadedMessage::body_complete false: `body` holds the
// leading chunks with the header section); its sender reads it one chunk at
// a time (async_read_chunk), so a delivery holds a few chunks, not the body.
#pragma once

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
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
#include <vector>

#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace mailgate::spool {

class Store;

struct LoadedMessage {
  Envelope envelope;
  DestRecord dest;
  std::string body;  // the whole body, or (body_complete false) its head
  bool body_complete = true;
};

class SpoolReader {
 public:
  SpoolReader(Store& store, unsigned threads);
  ~SpoolReader();  // stop()
  void start();
  void stop();

  // Loads that found the message but could not read it (errc::io_error),
  // and streamed chunks that could not be read.
  std::uint64_t failed_reads() const { return failed_.load(std::memory_order_relaxed); }

  // Bodies larger than this are streamed (default 4 MiB: above the 2 MB a
  // DSN returns whole, so DSNs never need more than the header section).
  static constexpr std::uint64_t kDefaultStreamAbove = 4u << 20;
  void set_stream_above(std::uint64_t bytes) { stream_above_.store(bytes); }
  std::uint64_t stream_above() const { return stream_above_.load(); }

  // Reads body chunk `chunk` of `id` into `*out` on a reader thread:
  // errc::io_error (counted) when it is missing or unreadable. (`out` is
  // shared: a reader thread may still fill it after the caller is gone.)
  template <class Token>
  auto async_read_chunk(const MessageId& id, std::uint32_t chunk, std::shared_ptr<std::string> out,
                        Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, MessageId mid, std::uint32_t c, std::shared_ptr<std::string> o) {
          auto ex = asio::get_associated_executor(handler);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          auto ok = std::make_shared<bool>(false);
          submit_job([mid, c, o, ok](const Store& s) { *ok = read_chunk(s, mid, c, *o); },
                     [this, h, ex, ok](std::error_code ec, std::shared_ptr<LoadedMessage>) {
                       if (!ec && !*ok) {
                         failed_.fetch_add(1, std::memory_order_relaxed);
                         ec = std::make_error_code(std::errc::io_error);
                       }
                       asio::post(ex, [h, ec]() mutable { (*h)(ec); });
                     });
        },
        token, id, chunk, std::move(out));
  }

  using Completion = std::function<void(std::error_code, std::shared_ptr<LoadedMessage>)>;
  void submit(const MessageId& id, std::string destination, Completion done);

  // Any other blocking spool read (e.g. the sent-message index of inbound
  // feedback): `job` runs on a reader thread; the completion gets no message.
  using Job = std::function<void(const Store&)>;
  void submit_job(Job job, Completion done);
  template <class Token>
  auto async_job(Job job, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler, Job j) {
          auto ex = asio::get_associated_executor(handler);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          submit_job(std::move(j), [h, ex](std::error_code ec, std::shared_ptr<LoadedMessage>) {
            asio::post(ex, [h, ec]() mutable { (*h)(ec); });
          });
        },
        token, std::move(job));
  }

  template <class Token>
  auto async_load(const MessageId& id, std::string destination, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, std::shared_ptr<LoadedMessage>)>(
        [this](auto handler, MessageId mid, std::string dest) {
          auto ex = asio::get_associated_executor(handler);
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          submit(mid, std::move(dest),
                 [h, ex](std::error_code ec, std::shared_ptr<LoadedMessage> m) {
                   asio::post(ex, [h, ec, m]() mutable { (*h)(ec, std::move(m)); });
                 });
        },
        token, id, std::move(destination));
  }

 private:
  struct Task {
    MessageId id;
    std::string destination;
    Completion done;
    Job job;  // set: a submit_job() task
  };
  void run();
  static bool read_chunk(const Store& store, const MessageId& id, std::uint32_t chunk,
                         std::string& out);
  Store& store_;
  std::atomic<std::uint64_t> stream_above_{kDefaultStreamAbove};
  unsigned threads_n_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> failed_{0};
  std::vector<std::thread> threads_;
};

}  // namespace mailgate::spool
