// Fuzz target: a whole inbound SMTP session, driven by the fuzzer's input as
// the client's byte stream. The real server::Session (dialogue, DATA/BDAT
// reception, limits), the real submission stage and a real RocksDB spool in
// a temporary directory answer it. No network: the session's socket is one
// end of an AF_UNIX socketpair, the fuzzer writes the input into the other
// end and reads the replies from it. Stubbed: spool writes are not fsynced
// (SpoolWriter::set_write_fn), there is no delivery engine (the queue
// callback records what was queued) and no Lua policy.
//
// Deterministic: everything runs on this thread's io_context (the spool
// writer's thread only completes writes the session waits for); the whole
// input is in the socket before the session starts and the write side is
// then shut down, so the session reads the same bytes in the same pieces on
// every run. (Only message ids and the Received header's date vary.) Inputs
// over 64 KiB are skipped: they might not fit in the socket buffer at once.
// MAILGATE_FUZZ_DETERMINISM=1 runs every input twice and checks that the
// replies are identical (ids masked); MAILGATE_FUZZ_SHOW=1 prints each
// input's replies (to read what a reproducer does).
//
// Input: octet 0 selects the listener (its low 2 bits; seeds use '0'..'3'):
//   bit 0: the client may relay (its address is in relay_networks);
//   bit 1: tight limits (3 errors, 3 junk commands, 64-octet lines, 512-octet
//          messages, 1 recipient) instead of the small defaults below.
// The rest is what the client sends.
//
// Invariants checked per input:
//  - the session ends and closes the connection (no hang; 10 s deadline);
//  - everything the server sent parses as well-formed replies (a code on
//    every line), the first being the 220 greeting, none left unfinished;
//    no more replies than the input has LFs plus three (the greeting, the
//    500 for an over-long last line without LF, a closing 421); a 221 or 421
//    is the last reply;
//  - every "250 2.0.0 OK id=<id>" names a message that is in the spool with
//    its envelope (1..max_recipients recipients), its complete body
//    (Envelope::size octets, ending in CRLF) and its queue records, and that
//    was handed to the queue; no other message was stored or queued;
//  - relay control: a client that may not relay got messages queued only
//    for relay_domains, to recipients whose domain normalizes to one of them
//    and whose local part has no routing characters;
//  - once those messages are removed the spool is empty: refused, aborted
//    and abandoned transactions leave no body chunk, envelope or queue
//    record behind;
//  - nothing is logged at error level (e.g. an exception escaping a session).
#include <rocksdb/db.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dns/idna.hpp"
#include "fuzz_check.hpp"
#include "metrics/outcome_counters.hpp"
#include "net/cidr.hpp"
#include "policy/config.hpp"
#include "server/connection_gate.hpp"
#include "server/session.hpp"
#include "smtp/address.hpp"
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

constexpr auto kDeadline = 10s;
constexpr std::size_t kMaxInput = 64 * 1024;
const std::vector<std::string> kRelayDomains = {"example.test", "xn--bcher-kva.test"};

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

// One per process (libFuzzer never returns from main; the temporary spool
// directory is removed by an atexit handler).
struct Harness {
  std::string dir;
  policy::Config cfg;
  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  asio::io_context ctx{1};
  metrics::DestinationLabels labels{{}};
  std::unique_ptr<submit::Submitter> submitter;
  std::unique_ptr<server::WorkerState> worker;
  std::unique_ptr<server::ConnectionGate> gate;
  // What the submission stage handed to the queue, per message id key.
  std::map<std::string, std::vector<spool::QueuedDest>> queued;

  Harness() {
    char tmpl[] = "/tmp/mailgate-session-fuzz-XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl) != nullptr, "mkdtemp");
    dir = tmpl;
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<FailOnErrorSink>()));

    cfg.hostname = "mx.fuzz.test";
    cfg.workers = 1;
    cfg.spool.path = dir + "/spool";
    cfg.spool.min_free_space = 0;
    cfg.spool.body_buffer = 256;  // bodies over 256 octets spill chunks to the spool
    // The peer of an AF_UNIX socket has no IP address: asio reads its
    // endpoint as "::" (checked below), so "::/128" is how a listener lets
    // this client relay.
    const auto relay_net = net::Cidr::parse("::/128");
    FUZZ_CHECK(relay_net.has_value(), "Cidr::parse");
    for (int i = 0; i < 4; ++i) {
      policy::ListenerConfig l;
      l.address = "fuzz:" + std::to_string(i);
      l.relay_networks.clear();
      if (i & 1) l.relay_networks.push_back(*relay_net);
      l.relay_domains = kRelayDomains;
      const bool tight = (i & 2) != 0;
      l.max_message_size = tight ? 512 : 4096;
      l.max_recipients = tight ? 1 : 4;
      l.max_line_length = tight ? 64 : 256;
      l.max_errors = tight ? 3 : 20;
      l.max_junk_commands = tight ? 3 : 30;
      l.command_timeout = 10s;
      l.data_timeout = 10s;
      l.greet_pause = {};  // the whole input is there before the greeting
      l.min_data_rate = 0;
      cfg.listeners.push_back(l);
    }

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

    submit::Submitter::Deps d;
    d.worker = 0;
    d.context = &ctx;
    d.config = &cfg;
    d.writer = writer.get();
    d.store = store.get();
    d.labels = &labels;
    d.queue = [this](const spool::MessageId& id, const std::vector<spool::QueuedDest>& dests,
                     std::uint64_t) {
      FUZZ_CHECK(queued.emplace(std::string(id.key()), dests).second,
                 "message queued twice: " + id.hex());
    };
    submitter =
        std::make_unique<submit::Submitter>(std::move(d), spool::IdGenerator(0, counter_start));

    worker = std::make_unique<server::WorkerState>();
    worker->config = &cfg;
    worker->writer = writer.get();
    worker->store = store.get();
    worker->submitter = submitter.get();
    gate = std::make_unique<server::ConnectionGate>(cfg.listeners);
  }
};

Harness* g_harness = nullptr;

void remove_temp_dir() {
  if (g_harness == nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(g_harness->dir, ec);
}

Harness& harness() {
  if (g_harness == nullptr) {
    g_harness = new Harness();
    std::atexit(remove_temp_dir);
  }
  return *g_harness;
}

struct Conversation {
  std::string received;
  std::string remote_ip_seen;  // what the session's socket reports as its peer
};

using asio::local::stream_protocol;

asio::awaitable<void> read_all(stream_protocol::socket& s, std::string& out) {
  char buf[16384];
  for (;;) {
    std::error_code ec;
    const std::size_t n = co_await s.async_read_some(asio::buffer(buf),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    out.append(buf, n);
    if (ec) co_return;  // EOF, or a reset when the server closed with input unread
  }
}

// The rest of an input that did not fit in the socket buffer at once.
asio::awaitable<void> write_rest(stream_protocol::socket& s, std::string_view rest) {
  std::error_code ec;
  co_await asio::async_write(s, asio::buffer(rest), asio::redirect_error(asio::use_awaitable, ec));
  s.shutdown(stream_protocol::socket::shutdown_send, ec);
}

// One session from connect to close.
Conversation converse(Harness& h, std::size_t listener, std::string_view input) {
  Conversation c;
  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
             std::string("socketpair: ") + std::strerror(errno));
  stream_protocol::socket client(h.ctx);
  client.assign(stream_protocol(), sv[1]);
  asio::ip::tcp::socket server_end(h.ctx);
  server_end.assign(asio::ip::tcp::v6(), sv[0]);
  std::error_code ec;
  c.remote_ip_seen = server_end.remote_endpoint(ec).address().to_string();

  // All of the input before the session runs (see the top of the file).
  client.non_blocking(true);
  std::size_t sent = 0;
  while (sent < input.size()) {
    const std::size_t n = client.write_some(asio::buffer(input.substr(sent)), ec);
    if (ec) break;
    sent += n;
  }
  if (sent == input.size()) client.shutdown(stream_protocol::socket::shutdown_send, ec);

  auto session = std::make_shared<server::Session>(std::move(server_end), *h.worker,
                                                   h.cfg.listeners[listener]);
  session->admit(*h.gate, listener);
  bool ended = false;
  asio::co_spawn(
      h.ctx, [session]() { return session->run(); },
      [&ended](std::exception_ptr e) {
        FUZZ_CHECK(e == nullptr, "an exception escaped Session::run()");
        ended = true;
      });
  session.reset();
  bool read_done = false;
  asio::co_spawn(h.ctx, read_all(client, c.received),
                 [&read_done](std::exception_ptr) { read_done = true; });
  if (sent < input.size()) {
    asio::co_spawn(h.ctx, write_rest(client, input.substr(sent)), asio::detached);
  }
  h.ctx.restart();
  const auto until = std::chrono::steady_clock::now() + kDeadline;
  while (!(ended && read_done)) {
    FUZZ_CHECK(std::chrono::steady_clock::now() < until,
               std::string(ended ? "the connection was not closed" : "the session did not end") +
                   " within 10 s; replies so far: " + show(c.received));
    h.ctx.run_for(100ms);
  }
  // Finish whatever the session left (e.g. its deadline watchdog).
  h.ctx.restart();
  h.ctx.poll();
  return c;
}

std::vector<smtp::Reply> parse_replies(const Conversation& c, std::string_view input) {
  std::vector<smtp::Reply> out;
  smtp::ReplyParser p;
  std::string_view rest = c.received;
  while (!rest.empty()) {
    rest.remove_prefix(p.feed(rest));
    FUZZ_CHECK(!p.error(), "malformed reply from the server in " + show(c.received));
    if (!p.done()) break;
    out.push_back(p.take());
  }
  FUZZ_CHECK(rest.empty(), "unfinished reply at the end: " + show(c.received));
  FUZZ_CHECK(
      !out.empty() && out.front().code == 220 && out.front().text == "mx.fuzz.test ESMTP mailgate",
      "no 220 greeting first: " + show(c.received));
  const auto lfs = static_cast<std::size_t>(std::count(input.begin(), input.end(), '\n'));
  FUZZ_CHECK(out.size() <= lfs + 3, std::to_string(out.size()) + " replies to " +
                                        std::to_string(lfs) + " lines: " + show(c.received));
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    FUZZ_CHECK(out[i].code != 221 && out[i].code != 421,
               "a reply after " + std::to_string(out[i].code) + ": " + show(c.received));
  }
  return out;
}

// The replies with message ids masked (they hold the time).
std::string masked(std::string s) {
  for (std::size_t p = 0; (p = s.find("id=", p)) != std::string::npos; p += 3) {
    for (std::size_t i = p + 3; i < s.size() && i < p + 3 + 32; ++i) s[i] = 'X';
  }
  return s;
}

// Keys of column family `cf` from `from` on. (Ids start with their
// millisecond time, so seeking past the ids of earlier inputs skips their
// deletion tombstones, which would otherwise make every scan slower.)
std::vector<std::string> keys_from(const spool::Store& s, rocksdb::ColumnFamilyHandle* cf,
                                   const std::string& from) {
  std::vector<std::string> keys;
  std::unique_ptr<rocksdb::Iterator> it(s.db()->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(from); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
  FUZZ_CHECK(it->status().ok(), "spool iterator: " + it->status().ToString());
  return keys;
}

std::string describe_keys(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) {
    const auto id = spool::MessageId::from_key(k);
    s += " " + (id ? id->hex() : std::string("?")) + "+" + show(std::string_view(k).substr(16));
  }
  return s;
}

bool relay_domain(std::string_view domain) {
  const std::string d = dns::normalize_domain(domain);
  return std::find(kRelayDomains.begin(), kRelayDomains.end(), d) != kRelayDomains.end();
}

// An acknowledged message: complete in the spool, queued, and within what
// the listener allows.
void check_message(Harness& h, const spool::MessageId& id, const policy::ListenerConfig& l,
                   bool may_relay, const std::string& text) {
  spool::Envelope env;
  FUZZ_CHECK(h.store->read_envelope(id, env), "acknowledged message has no envelope: " + text);
  FUZZ_CHECK(!env.recipients.empty() && env.recipients.size() <= l.max_recipients,
             std::to_string(env.recipients.size()) + " recipients in " + text);
  std::string body;
  FUZZ_CHECK(h.store->read_body(id, env.body_chunks, body),
             "acknowledged message is missing body chunks: " + text);
  FUZZ_CHECK(body.size() == env.size && body.ends_with("\r\n"),
             "stored body (" + std::to_string(body.size()) + " octets) does not match the " +
                 "envelope (" + std::to_string(env.size) + "): " + text);
  FUZZ_CHECK(!h.store->read_dests(id).empty(), "acknowledged message has no queue record: " + text);
  const auto q = h.queued.find(std::string(id.key()));
  FUZZ_CHECK(q != h.queued.end(), "acknowledged message was not queued: " + text);
  if (may_relay) return;
  for (const auto& dest : q->second) {
    FUZZ_CHECK(relay_domain(dest.name),
               "queued for " + show(dest.name) + " from a client that may not relay: " + text);
  }
  for (const auto& r : env.recipients) {
    auto a = smtp::parse_mailbox(r.address, true);
    FUZZ_CHECK(std::holds_alternative<smtp::Address>(a),
               "stored recipient does not parse: " + show(r.address));
    const auto& addr = std::get<smtp::Address>(a);
    FUZZ_CHECK(relay_domain(addr.domain) && !addr.has_routing_chars(),
               "recipient " + show(r.address) + " accepted from a client that may not relay");
  }
}

// Runs one input; returns the replies (for the determinism check).
std::string run_input(Harness& h, std::size_t listener, std::string_view input) {
  const auto& lc = h.cfg.listeners[listener];
  const bool may_relay = !lc.relay_networks.empty();
  h.queued.clear();
  // This input's ids are at least this (one id generator, time-ordered ids).
  const std::string from(spool::MessageId::make(spool::wall_clock_ms(), 0, 0).key());
  const Conversation c = converse(h, listener, input);
  FUZZ_CHECK(c.remote_ip_seen == "::", "the socketpair's peer reads as " + c.remote_ip_seen +
                                           ", not \"::\": relay_networks would not match");
  const auto rs = parse_replies(c, input);

  std::map<std::string, std::string> acked;  // id key -> reply text
  for (const auto& r : rs) {
    if (r.code != 250 || r.text.rfind("OK id=", 0) != 0) continue;
    auto id = spool::MessageId::from_hex(std::string_view(r.text).substr(6));
    FUZZ_CHECK(id.has_value(), "bad id in " + show(r.text));
    FUZZ_CHECK(acked.emplace(std::string(id->key()), r.text).second, "id acknowledged twice");
    check_message(h, *id, lc, may_relay, r.text);
  }
  for (const auto& [key, dests] : h.queued) {
    FUZZ_CHECK(acked.count(key) == 1,
               "queued without a 250: " + spool::MessageId::from_key(key)->hex());
  }

  // What this input put in the spool: only acknowledged messages. Remove
  // them; then nothing may be left. (Earlier inputs were checked the same
  // way, so the spool is empty between inputs.)
  spool::WriteSet ws(*h.store);
  for (const auto& key : keys_from(*h.store, h.store->meta(), from)) {
    const auto id = spool::MessageId::from_key(key);
    FUZZ_CHECK(id && acked.count(key) == 1,
               "message in the spool without a 250:" + describe_keys({key}) +
                   "\n    replies: " + show(c.received));
    spool::Envelope env;
    FUZZ_CHECK(h.store->read_envelope(*id, env), "undecodable envelope " + id->hex());
    ws.remove_message(*id, env.body_chunks);
    for (const auto& [dest, rec] : h.store->read_dests(*id)) ws.remove_dest(*id, dest);
  }
  if (!ws.empty()) {
    auto st = h.store->db()->Write(rocksdb::WriteOptions(), &ws.batch());
    FUZZ_CHECK(st.ok(), "cleanup: " + st.ToString());
  }
  const auto body = keys_from(*h.store, h.store->body(), from);
  FUZZ_CHECK(body.empty(), "body chunks left behind by a transaction:" + describe_keys(body) +
                               "\n    replies: " + show(c.received));
  const auto dests = keys_from(*h.store, h.store->dest(), from);
  FUZZ_CHECK(dests.empty(), "queue records left behind:" + describe_keys(dests));
  return masked(c.received);
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > kMaxInput + 1) return -1;
  auto& h = harness();
  const std::size_t listener = data[0] & 3;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string replies = run_input(h, listener, input);
  static const bool twice = env_flag("MAILGATE_FUZZ_DETERMINISM");
  static const bool print = env_flag("MAILGATE_FUZZ_SHOW");
  if (print) std::fprintf(stderr, "listener %zu replies:\n%s\n", listener, replies.c_str());
  if (twice) {
    const std::string again = run_input(h, listener, input);
    FUZZ_CHECK(again == replies, "the same input gave different replies:\n    " + show(replies) +
                                     "\n    " + show(again));
  }
  return 0;
}
