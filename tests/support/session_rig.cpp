// tests/support/session_rig: see session_rig.hpp.
#include "support/session_rig.hpp"

#include <rocksdb/db.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "smtp/reply_parser.hpp"
#include "spool/message_id.hpp"
#include "spool/write_set.hpp"

namespace mailgate::testing {

using namespace std::chrono_literals;
using asio::local::stream_protocol;

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("session rig: " + what);
}

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

}  // namespace

SessionRig::SessionRig(const std::function<void(settings::GatewayConfig&)>& configure) {
  char tmpl[] = "/tmp/mailgate-session-rig-XXXXXX";
  require(::mkdtemp(tmpl) != nullptr, std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;

  cfg_.hostname = "mx.rig.test";
  cfg_.workers = 1;
  cfg_.spool.path = dir_ + "/spool";
  cfg_.spool.min_free_space = 0;
  configure(cfg_);
  require(!cfg_.listeners.empty(), "no listener configured");

  std::string err;
  store_ = spool::Store::open(cfg_.spool.path, err);
  require(store_ != nullptr, "spool: " + err);
  const auto counter_start = store_->reserve_counter_floor(err);
  require(err.empty(), "counter floor: " + err);
  writer_ = std::make_unique<spool::SpoolWriter>(*store_, cfg_.spool.max_queue_bytes, 0);
  writer_->set_write_fn([s = store_.get()](rocksdb::WriteBatch& b, bool, std::string& e) {
    auto st = s->db()->Write(rocksdb::WriteOptions(), &b);  // not synced: speed
    if (!st.ok()) e = st.ToString();
    return st.ok();
  });
  writer_->start();

  submit::Submitter::Deps d;
  d.worker = 0;
  d.context = ctx_.get();
  d.config = &cfg_;
  d.writer = writer_.get();
  d.store = store_.get();
  d.labels = &labels_;
  d.queue = [this](const spool::MessageId& id, const std::vector<spool::QueuedDest>& dests,
                   std::uint64_t) { queued_[std::string(id.key())] = dests; };
  submitter_ =
      std::make_unique<submit::Submitter>(std::move(d), spool::IdGenerator(0, counter_start));

  worker_ = std::make_unique<server::WorkerState>();
  worker_->config = &cfg_;
  worker_->writer = writer_.get();
  worker_->store = store_.get();
  worker_->submitter = submitter_.get();
  gate_ = std::make_unique<server::ConnectionGate>(cfg_.listeners);
}

SessionRig::~SessionRig() {
  // Pending spool writes complete (cancelled) into the io_context, whose
  // leftovers (a session a deadline left) then go before what they refer to.
  if (writer_) writer_->stop();
  ctx_.reset();
  gate_.reset();
  worker_.reset();
  submitter_.reset();
  writer_.reset();
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

net::Cidr SessionRig::client_network() {
  const auto net = net::Cidr::parse("::/128");
  require(net.has_value(), "Cidr::parse(\"::/128\")");
  return *net;
}

SessionRig::Conversation SessionRig::converse(std::size_t listener, std::string_view input,
                                              std::chrono::milliseconds deadline) {
  require(listener < cfg_.listeners.size(), "no listener " + std::to_string(listener));
  Conversation c;
  int sv[2];
  require(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
          std::string("socketpair: ") + std::strerror(errno));
  stream_protocol::socket client(*ctx_);
  client.assign(stream_protocol(), sv[1]);
  asio::ip::tcp::socket server_end(*ctx_);
  server_end.assign(asio::ip::tcp::v6(), sv[0]);
  std::error_code ec;
  c.remote_ip_seen = server_end.remote_endpoint(ec).address().to_string();

  // All of the input before the session runs (see the top of the header).
  client.non_blocking(true);
  std::size_t sent = 0;
  while (sent < input.size()) {
    const std::size_t n = client.write_some(asio::buffer(input.substr(sent)), ec);
    if (ec) break;
    sent += n;
  }
  if (sent == input.size()) client.shutdown(stream_protocol::socket::shutdown_send, ec);

  auto session =
      std::make_shared<server::Session>(std::move(server_end), *worker_, cfg_.listeners[listener]);
  session->admit(*gate_, listener);
  // run() returns early when the session parks to wait for a command: the
  // session has ended when the object is gone.
  const std::weak_ptr<server::Session> alive = session;
  asio::co_spawn(
      *ctx_, [session]() { return session->run(); },
      [&c](std::exception_ptr e) { c.exception = c.exception || e != nullptr; });
  session.reset();
  asio::co_spawn(*ctx_, read_all(client, c.received),
                 [&c](std::exception_ptr) { c.closed = true; });
  if (sent < input.size()) {
    asio::co_spawn(*ctx_, write_rest(client, input.substr(sent)), asio::detached);
  }
  ctx_->restart();
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!(alive.expired() && c.closed) && std::chrono::steady_clock::now() < until) {
    ctx_->run_for(100ms);
  }
  c.ended = alive.expired();
  if (!(c.ended && c.closed)) {
    // Cancel what still waits on the client socket before it goes away.
    client.close(ec);
    ctx_->restart();
    ctx_->poll();
    return c;
  }
  // Finish whatever the session left (e.g. its deadline watchdog).
  ctx_->restart();
  ctx_->poll();
  return c;
}

std::vector<std::string> SessionRig::keys_from(Family family, const std::string& from) const {
  rocksdb::ColumnFamilyHandle* cf = family == Family::Body   ? store_->body()
                                    : family == Family::Meta ? store_->meta()
                                                             : store_->dest();
  std::vector<std::string> keys;
  std::unique_ptr<rocksdb::Iterator> it(store_->db()->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(from); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
  require(it->status().ok(), "spool iterator: " + it->status().ToString());
  return keys;
}

void SessionRig::remove_messages(const std::vector<std::string>& id_keys) {
  spool::WriteSet ws(*store_);
  for (const auto& key : id_keys) {
    const auto id = spool::MessageId::from_key(key);
    require(id.has_value(), "not a message id key");
    spool::Envelope env;
    require(store_->read_envelope(*id, env), "undecodable envelope " + id->hex());
    ws.remove_message(*id, env.body_chunks);
    for (const auto& dest : store_->read_dests(*id)) ws.remove_dest(*id, dest.first);
  }
  if (ws.empty()) return;
  auto st = store_->db()->Write(rocksdb::WriteOptions(), &ws.batch());
  require(st.ok(), "removing messages: " + st.ToString());
}

ParsedReplies parse_replies(std::string_view received) {
  ParsedReplies out;
  smtp::ReplyParser p;
  while (!received.empty()) {
    received.remove_prefix(p.feed(received));
    if (p.error()) {
      out.error = true;
      break;
    }
    if (!p.done()) break;
    out.replies.push_back(p.take());
  }
  out.rest = std::string(received);
  return out;
}

}  // namespace mailgate::testing
