// Fuzz target: a whole inbound SMTP session. The input is what a client
// sends: the real server::SmtpServer / Session (one worker), the real
// submission stage and a real RocksDB spool in a temporary directory answer
// it over a loopback TCP connection inside this process. The "stub" is only
// that spool writes are not fsynced (SpoolWriter::set_write_fn), and that
// there is no delivery engine (queued messages are checked, then deleted) and
// no Lua policy. Limits are set small (message size, body buffer, line
// length, recipients) so that short inputs reach spilling and every limit.
// One gateway per process, started on the first input.
//
// Per input: connect, send it all (reading replies meanwhile), half-close,
// read until the server closes, wait for the session to end (deadline 5 s).
// Invariants checked:
//  - the session ends after the client's EOF, and the server closes the
//    connection (no hang, no stuck session);
//  - everything the server sent parses as well-formed replies, the first
//    being the 220 greeting, with nothing left unfinished at a clean EOF;
//  - every "250 2.0.0 OK id=<id>" names a message that is in the spool with
//    its envelope, complete body (Envelope::size octets, ending in CRLF) and
//    at least one queue record; at a clean EOF, nothing else is in the spool
//    (no message committed without its 250);
//  - once those messages are removed, no body chunk, envelope or queue
//    record of this input is left: refused, aborted and abandoned
//    transactions leave nothing behind;
//  - nothing is logged at error level (e.g. "session ... failed": an
//    exception escaped the dialogue).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_check.hpp"
#include "metrics/outcome_counters.hpp"
#include "net/worker_pool.hpp"
#include "policy/config.hpp"
#include "server/smtp_server.hpp"
#include "smtp/reply_parser.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "submit/submitter.hpp"

using namespace mailgate;
using mailgate::fuzz::show;
using namespace std::chrono_literals;

namespace {

constexpr auto kDeadline = 5s;

// Error-level log lines are findings: the gateway logs at that level only
// when something is wrong (an exception escaping a session, a spool error).
class FailOnErrorSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::err) return;
    FUZZ_CHECK(false, "error logged: " + std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}
};

struct Gateway {
  std::string dir;
  policy::Config cfg;
  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  std::unique_ptr<net::WorkerPool> workers;
  metrics::DestinationLabels labels{{}};
  std::unique_ptr<submit::Submitter> submitter;
  std::unique_ptr<server::SmtpServer> smtp;
  sockaddr_in addr{};

  Gateway() {
    char tmpl[] = "/tmp/mailgate-session-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl) != nullptr, "mkdtemp");
    dir = tmpl;
    auto logger = std::make_shared<spdlog::logger>("fuzz", std::make_shared<FailOnErrorSink>());
    spdlog::set_default_logger(logger);

    cfg.hostname = "mx.fuzz.test";
    cfg.workers = 1;
    cfg.spool.path = dir + "/spool";
    cfg.spool.min_free_space = 0;
    cfg.spool.body_buffer = 256;  // bodies over 256 octets spill chunks to the spool
    policy::ListenerConfig l;
    l.address = "127.0.0.1:0";
    l.relay_networks = {};  // loopback may not relay: RCPT to other domains is refused
    l.relay_domains = {"example.test", "xn--bcher-kva.test"};
    l.max_message_size = 4096;
    l.max_recipients = 4;
    l.max_line_length = 256;
    l.max_junk_commands = 30;
    l.command_timeout = 10s;
    l.data_timeout = 10s;
    // The greeting pause (if this tree has it) would answer every input with
    // 554 "input before the greeting": the client here does not wait.
    [](auto& lc) {
      if constexpr (requires { lc.greet_pause; }) lc.greet_pause = {};
    }(l);
    cfg.listeners.push_back(l);

    std::string err;
    store = spool::Store::open(cfg.spool.path, err);
    FUZZ_CHECK(store != nullptr, "spool: " + err);
    const auto counter_start = store->reserve_counter_floor(err);
    FUZZ_CHECK(err.empty(), "counter floor: " + err);
    writer = std::make_unique<spool::SpoolWriter>(*store, cfg.spool.max_queue_bytes, 0);
    writer->set_write_fn([s = store.get()](rocksdb::WriteBatch& b, bool, std::string& e) {
      auto st = s->db()->Write(rocksdb::WriteOptions(), &b);  // not synced: fuzzing speed
      if (!st.ok()) e = st.ToString();
      return st.ok();
    });
    writer->start();
    workers = std::make_unique<net::WorkerPool>(1);

    submit::Submitter::Deps d;
    d.worker = 0;
    d.context = &workers->context(0);
    d.config = &cfg;
    d.writer = writer.get();
    d.store = store.get();
    d.labels = &labels;
    d.queue = [](const spool::MessageId&, const std::vector<spool::QueuedDest>&, std::uint64_t) {};
    submitter =
        std::make_unique<submit::Submitter>(std::move(d), spool::IdGenerator(0, counter_start));

    smtp = std::make_unique<server::SmtpServer>(cfg, *workers, *store, *writer);
    smtp->set_submitters({submitter.get()});
    FUZZ_CHECK(smtp->bind().empty(), "bind");
    workers->start();
    smtp->serve();
    const auto ep = smtp->endpoints().at(0);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(ep.port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  // Never destroyed: the process exits with it running (libFuzzer calls
  // exit()); the temporary directory is removed by an atexit handler.
};

Gateway* g_gateway = nullptr;

void remove_temp_dir() {
  if (g_gateway == nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(g_gateway->dir, ec);
}

Gateway& gateway() {
  if (g_gateway == nullptr) {
    g_gateway = new Gateway();
    std::atexit(remove_temp_dir);
  }
  return *g_gateway;
}

struct Conversation {
  std::string received;
  bool clean_eof = false;  // the server closed with FIN (not a reset)
};

// Sends `input`, half-closes, reads until the server closes the connection.
Conversation converse(const sockaddr_in& addr, std::string_view input) {
  Conversation c;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0, "socket");
  FUZZ_CHECK(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0,
             std::string("connect: ") + std::strerror(errno));
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  std::size_t sent = 0;
  bool write_open = true;
  if (input.empty()) {
    ::shutdown(fd, SHUT_WR);
    write_open = false;
  }
  char buf[16384];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    FUZZ_CHECK(left.count() > 0, "the server did not close the connection within 5 s; got " +
                                     show(c.received));
    pollfd p{fd, static_cast<short>(POLLIN | (write_open ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    if (write_open && (p.revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || sent == input.size()) {
        ::shutdown(fd, SHUT_WR);  // the server closed early (QUIT, 421), or all is sent
        write_open = false;
      }
    }
    if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.received.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0) {
        c.clean_eof = true;
        break;
      } else if (errno != EAGAIN && errno != EINTR) {
        break;  // ECONNRESET: the server closed with our input unread
      }
    }
  }
  ::close(fd);
  return c;
}

// Every reply the server sent; checks they are well formed.
std::vector<smtp::Reply> replies(const Conversation& c) {
  std::vector<smtp::Reply> out;
  smtp::ReplyParser p;
  std::string_view rest = c.received;
  while (!rest.empty()) {
    rest.remove_prefix(p.feed(rest));
    FUZZ_CHECK(!p.error(), "malformed reply from the server in " + show(c.received));
    if (!p.done()) break;
    out.push_back(p.take());
  }
  if (c.clean_eof) FUZZ_CHECK(rest.empty(), "unfinished reply at EOF: " + show(c.received));
  FUZZ_CHECK(!out.empty() && out.front().code == 220 &&
                 out.front().text == "mx.fuzz.test ESMTP mailgate",
             "no 220 greeting first: " + show(c.received));
  return out;
}

// Keys of column family `cf` at or above `from`.
std::vector<std::string> keys_from(const spool::Store& s, rocksdb::ColumnFamilyHandle* cf,
                                   const std::string& from) {
  std::vector<std::string> keys;
  std::unique_ptr<rocksdb::Iterator> it(s.db()->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(from); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
  FUZZ_CHECK(it->status().ok(), "spool iterator: " + it->status().ToString());
  return keys;
}

std::string hexes(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) s += " " + spool::MessageId::from_key(k)->hex() + "+" +
                                  show(std::string_view(k).substr(16));
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& gw = gateway();
  const std::string input(reinterpret_cast<const char*>(data), size);
  // Ids of messages of this input have their millisecond field >= now.
  const std::string from(spool::MessageId::make(spool::wall_clock_ms(), 0, 0).key());

  const Conversation c = converse(gw.addr, input);
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (gw.smtp->active_sessions() > 0) {
    FUZZ_CHECK(std::chrono::steady_clock::now() < until,
               "session still open 5 s after the connection closed");
    std::this_thread::sleep_for(100us);
  }
  const auto rs = replies(c);

  // Acknowledged messages: complete in the spool.
  std::set<std::string> acked;
  for (const auto& r : rs) {
    if (r.code != 250 || r.text.rfind("OK id=", 0) != 0) continue;
    auto id = spool::MessageId::from_hex(std::string_view(r.text).substr(6));
    FUZZ_CHECK(id.has_value(), "bad id in " + show(r.text));
    spool::Envelope env;
    FUZZ_CHECK(gw.store->read_envelope(*id, env), "acknowledged message has no envelope: " + r.text);
    FUZZ_CHECK(!env.recipients.empty(), "acknowledged message without recipients: " + r.text);
    std::string body;
    FUZZ_CHECK(gw.store->read_body(*id, env.body_chunks, body),
               "acknowledged message is missing body chunks: " + r.text);
    FUZZ_CHECK(body.size() == env.size && body.ends_with("\r\n"),
               "stored body (" + std::to_string(body.size()) + " octets) does not match the " +
                   "envelope (" + std::to_string(env.size) + "): " + r.text);
    FUZZ_CHECK(!gw.store->read_dests(*id).empty(), "acknowledged message is not queued: " + r.text);
    acked.insert(std::string(id->key()));
  }

  // Everything this input put in the spool: only acknowledged messages
  // (at a clean EOF every reply was read), then remove them.
  spool::WriteSet ws(*gw.store);
  for (const auto& key : keys_from(*gw.store, gw.store->meta(), from)) {
    if (c.clean_eof) {
      FUZZ_CHECK(acked.count(key) == 1, "message in the spool without a 250: " +
                                            spool::MessageId::from_key(key)->hex());
    }
    const auto id = *spool::MessageId::from_key(key);
    spool::Envelope env;
    FUZZ_CHECK(gw.store->read_envelope(id, env), "undecodable envelope " + id.hex());
    ws.remove_message(id, env.body_chunks);
    for (const auto& [dest, rec] : gw.store->read_dests(id)) ws.remove_dest(id, dest);
  }
  if (!ws.empty()) {
    auto st = gw.store->db()->Write(rocksdb::WriteOptions(), &ws.batch());
    FUZZ_CHECK(st.ok(), "cleanup: " + st.ToString());
  }
  const auto body = keys_from(*gw.store, gw.store->body(), from);
  FUZZ_CHECK(body.empty(), "body chunks left behind by a transaction:" + hexes(body) +
                               "\n    replies: " + show(c.received));
  const auto dests = keys_from(*gw.store, gw.store->dest(), from);
  FUZZ_CHECK(dests.empty(), "queue records left behind:" + hexes(dests));
  return 0;
}
