// spool/spool_reader: see spool_reader.hpp.
#include "spool/spool_reader.hpp"

#include "net/thread_name.hpp"
#include "spool/store.hpp"

namespace mailgate::spool {

SpoolReader::SpoolReader(Store& store, unsigned threads)
    : store_(store), threads_n_(threads ? threads : 1) {}

SpoolReader::~SpoolReader() { stop(); }

void SpoolReader::start() {
  for (unsigned i = 0; i < threads_n_; ++i)
    threads_.emplace_back([this] {
      net::name_this_thread("spool-reader");
      run();
    });
}

void SpoolReader::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  // Anything still queued is answered, so no coroutine waits forever.
  for (auto& t : tasks_) t.done(std::make_error_code(std::errc::operation_canceled), nullptr);
  tasks_.clear();
}

void SpoolReader::submit(const MessageId& id, std::string destination, Completion done) {
  {
    std::lock_guard lk(mu_);
    if (!stopping_) {
      tasks_.push_back({id, std::move(destination), std::move(done), {}});
      cv_.notify_one();
      return;
    }
  }
  done(std::make_error_code(std::errc::operation_canceled), nullptr);
}

void SpoolReader::submit_job(Job job, Completion done) {
  {
    std::lock_guard lk(mu_);
    if (!stopping_) {
      tasks_.push_back({MessageId{}, {}, std::move(done), std::move(job)});
      cv_.notify_one();
      return;
    }
  }
  done(std::make_error_code(std::errc::operation_canceled), nullptr);
}

void SpoolReader::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    if (task.job) {
      task.job(store_);
      task.done({}, nullptr);
      continue;
    }
    auto msg = std::make_shared<LoadedMessage>();
    std::error_code ec;
    switch (store_.read_message(task.id, task.destination, msg->envelope, msg->dest, msg->body,
                                stream_above_.load(), msg->body_complete)) {
      case Store::ReadStatus::Found:
        break;
      case Store::ReadStatus::Absent:
        ec = std::make_error_code(std::errc::no_such_file_or_directory);
        break;
      case Store::ReadStatus::Failed:
        ec = std::make_error_code(std::errc::io_error);
        failed_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    task.done(ec, ec ? nullptr : std::move(msg));
  }
}

bool SpoolReader::read_chunk(const Store& store, const MessageId& id, std::uint32_t chunk,
                             std::string& out) {
  return store.read_body_chunk(id, chunk, out);
}

}  // namespace mailgate::spool
