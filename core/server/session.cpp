// server/session: the inbound SMTP dialogue (greeting, EHLO/HELO, MAIL, RCPT,
// RSET, NOOP, VRFY, HELP, QUIT), command-line framing, limits and timeouts.
// Message bodies (DATA, BDAT) are in session_data.cpp.
#include "server/session.hpp"
#include "dns/idna.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <cstring>

#include "eventlog/delivery_log.hpp"
#include "net/cidr.hpp"
#include "server/recipient_admission.hpp"
#include "smtp/command.hpp"
#include "spool/spool_writer.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::server {

using namespace std::chrono_literals;
using asio::use_awaitable;

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxPendingReplies = 16 * 1024;
}  // namespace

Session::Session(asio::ip::tcp::socket socket, WorkerState& worker, const ListenerConfig& listener)
    : socket_(std::move(socket)), deadline_(socket_), worker_(worker), listener_(listener) {
  std::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) {
    auto addr = ep.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
      addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    conn_.remote_ip = addr.to_string();
  }
  may_relay_ =
      !conn_.remote_ip.empty() && net::any_contains(listener_.relay_networks, conn_.remote_ip);
  if (!ec) conn_.remote_port = ep.port();
  auto local = socket_.local_endpoint(ec);
  if (!ec) {
    conn_.local_ip = local.address().to_string();
    conn_.local_port = local.port();
  }
  conn_.listener = listener_.address;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
  next_in_worker_ = worker_.sessions;
  if (next_in_worker_) next_in_worker_->prev_in_worker_ = this;
  worker_.sessions = this;
  worker_.stats.sessions_active.fetch_add(1, std::memory_order_relaxed);
}

Session::~Session() {
  if (prev_in_worker_)
    prev_in_worker_->next_in_worker_ = next_in_worker_;
  else
    worker_.sessions = next_in_worker_;
  if (next_in_worker_) next_in_worker_->prev_in_worker_ = prev_in_worker_;
  worker_.stats.sessions_active.fetch_sub(1, std::memory_order_relaxed);
}

void Session::admit(ConnectionGate& gate, std::size_t listener_index) {
  listener_index_ = static_cast<std::uint32_t>(listener_index);
  auto admission = gate.admit(listener_index, conn_.remote_ip);
  refusal_ = admission.refusal;
  ticket_ = std::move(admission.ticket);
  if (refusal_ != ConnectionGate::Refusal::None)
    refusal_reply_ = std::make_unique<smtp::Reply>(std::move(admission.reply));
}

void Session::request_drain() {
  drain_requested_ = true;
  if (idle_wait_) {
    std::error_code ec;
    socket_.cancel(ec);
  }
}

void Session::close() {
  closing_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  deadline_.stop();
}

// Reads what the socket has into in_. Not a coroutine: the 64 KiB buffer is
// on the worker's stack, not in every session's frame, so an idle session
// holds no read buffer at all.
std::error_code Session::read_available() {
  char buf[kReadChunk];
  std::error_code ec;
  std::size_t n = socket_.read_some(asio::buffer(buf), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return {};
  if (!ec) in_.append(buf, n);
  return ec;
}

void Session::count_data(std::size_t before) {
  if (receiving()) txs_->data_bytes += in_.size() - before;
}

std::chrono::milliseconds Session::prepare_read(std::chrono::milliseconds timeout) {
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
    if (in_.capacity() > 4 * kReadChunk) std::string().swap(in_);
  } else if (in_pos_ > kReadChunk) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  // The read's own timeout, shortened by the limits on the whole session,
  // the transaction and the data rate (a slow drip must not outlast them).
  const auto now = std::chrono::steady_clock::now();
  limit_ = Limit::Read;
  auto consider = [&](std::chrono::steady_clock::time_point deadline, Limit which) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left < timeout) {
      timeout = std::max(left, std::chrono::milliseconds(0));
      limit_ = which;
    }
  };
  consider(session_deadline_, Limit::Session);
  if (tx_active()) consider(txs_->deadline, Limit::Transaction);
  if (receiving() && listener_.min_data_rate) {
    // Data must keep coming at min_data_rate on average, after a grace period.
    constexpr auto kGrace = std::chrono::seconds(10);
    consider(txs_->data_start + kGrace +
                 std::chrono::milliseconds(txs_->data_bytes * 1000 / listener_.min_data_rate),
             Limit::DataRate);
  }
  return timeout;
}

Session::ReadResult Session::wait_result(std::error_code ec) const {
  if (deadline_.expired()) return ReadResult::Timeout;
  if (ec == asio::error::operation_aborted && drain_requested_) return ReadResult::Drain;
  return ReadResult::Closed;
}

asio::awaitable<Session::ReadResult> Session::read_more(std::chrono::milliseconds timeout) {
  timeout = prepare_read(timeout);
  if (timeout.count() == 0) co_return ReadResult::Timeout;
  deadline_.set(timeout);
  const std::size_t before = in_.size();
  std::error_code ec;
  if (tls_) {
    // OpenSSL keeps its own buffers, so a TLS read goes straight into in_.
    constexpr std::size_t kTlsRead = 16 * 1024;
    in_.resize(before + kTlsRead);
    // (No structured binding of a co_await result: g++ 12 miscompiles it.)
    const std::pair<std::error_code, std::size_t> got =
        co_await tls_->read_some(in_.data() + before, kTlsRead);
    in_.resize(before + got.second);
    ec = got.first;
    if (!ec && got.second == 0) ec = asio::error::eof;
  }
  while (!ec && in_.size() == before) {
    co_await socket_.async_wait(asio::ip::tcp::socket::wait_read,
                                asio::redirect_error(use_awaitable, ec));
    if (!ec) ec = read_available();
  }
  if (!ec) {
    count_data(before);
    co_return ReadResult::Ok;
  }
  co_return wait_result(ec);
}

void Session::wait_for_command() {
  const auto timeout = prepare_read(listener_.command_timeout);
  if (timeout.count() == 0) {
    resume(ReadResult::Timeout);
    return;
  }
  deadline_.set(timeout);
  arm_command_wait();
}

void Session::arm_command_wait() {
  idle_wait_ = true;
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](std::error_code ec) { self->command_ready(ec); });
}

void Session::command_ready(std::error_code ec) {
  idle_wait_ = false;
  const std::size_t before = in_.size();
  if (!ec) ec = read_available();
  if (ec) {
    resume(wait_result(ec));
    return;
  }
  if (in_.size() == before) {  // woken without data: wait on, same deadline
    if (drain_requested_) {
      resume(ReadResult::Drain);  // (the drain's cancel may have missed this wait)
    } else {
      arm_command_wait();
    }
    return;
  }
  count_data(before);
  // Part of a line: wait on parked, with a fresh deadline, as serve() would
  // after this read (it sends nothing when it finds no complete line).
  if (in_.find('\n', in_pos_) == std::string::npos &&
      in_.size() - in_pos_ <= listener_.max_line_length && !drain_requested_) {
    wait_for_command();
    return;
  }
  resume(ReadResult::Ok);
}

void Session::resume(ReadResult woke) {
  asio::co_spawn(
      socket_.get_executor(), [self = shared_from_this(), woke] { return self->serve(woke); },
      asio::detached);
}

bool Session::write_now() {
  if (tls_ || out_.empty()) return true;
  std::error_code ec;
  const std::size_t n = socket_.write_some(asio::buffer(out_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) return true;
  if (ec) {
    out_.clear();
    return false;
  }
  out_.erase(0, n);
  return true;
}

asio::awaitable<bool> Session::flush() {
  if (out_.empty()) co_return true;
  deadline_.set(listener_.command_timeout);
  std::error_code ec;
  if (tls_) {
    ec = co_await tls_->write(out_);
  } else {
    co_await asio::async_write(socket_, asio::buffer(out_),
                               asio::redirect_error(use_awaitable, ec));
  }
  out_.clear();
  if (out_.capacity() > 64 * 1024) out_.shrink_to_fit();
  co_return !ec;
}

void Session::reply(const smtp::Reply& r) {
  smtp::format_reply(r, out_);
  if (r.code >= 400) worker_.stats.errors.fetch_add(1, std::memory_order_relaxed);
}

void Session::reply(int code, const char* enhanced, std::string_view text) {
  reply(smtp::Reply{code, enhanced, std::string(text)});
}

void Session::count_refusal() {
  auto& st = worker_.stats;
  (refusal_ == ConnectionGate::Refusal::ListenerFull    ? st.refused_listener_full
   : refusal_ == ConnectionGate::Refusal::TooManyFromIp ? st.refused_ip_cap
                                                        : st.refused_ip_rate)
      .fetch_add(1, std::memory_order_relaxed);
}

bool Session::count_error() { return ++errors_ >= listener_.max_errors; }

void Session::timeout_reply(const char* waiting_for) {
  const auto& host = worker_.config->hostname;
  auto& st = worker_.stats;
  switch (limit_) {
    case Limit::Read:
      st.timeouts.fetch_add(1, std::memory_order_relaxed);
      reply(421, "4.4.2",
            fmt::format("{} timeout waiting for {}, closing connection", host, waiting_for));
      break;
    case Limit::Session:
      st.limit_session.fetch_add(1, std::memory_order_relaxed);
      reply(421, "4.4.2", fmt::format("{} session time limit exceeded, closing connection", host));
      break;
    case Limit::Transaction:
      st.limit_transaction.fetch_add(1, std::memory_order_relaxed);
      reply(421, "4.4.2",
            fmt::format("{} transaction time limit exceeded, closing connection", host));
      break;
    case Limit::DataRate:
      st.limit_data_rate.fetch_add(1, std::memory_order_relaxed);
      reply(421, "4.4.2",
            fmt::format("{} data arriving too slowly (under {} bytes/s), closing connection", host,
                        listener_.min_data_rate));
      break;
  }
}

asio::awaitable<bool> Session::greet() {
  const auto banner = fmt::format("{} ESMTP mailgate", worker_.config->hostname);
  if (listener_.greet_pause.count() == 0) {
    reply(220, "", banner);
    co_return true;
  }
  // RFC 5321 §4.3.1 lets a client wait for the whole greeting: one that
  // talks before its last line is not an SMTP client (a spambot, or a
  // pipelining attack), so it gets 554 and the connection is closed.
  out_ += "220-" + banner + "\r\n";
  if (!co_await flush()) co_return false;
  const auto r = co_await read_more(listener_.greet_pause);
  if (r == ReadResult::Ok) {
    worker_.stats.early_talkers.fetch_add(1, std::memory_order_relaxed);
    reply(554, "5.5.1", "protocol error: input before the greeting");
    co_return false;
  }
  if (r != ReadResult::Timeout || limit_ != Limit::Read) co_return false;
  reply(220, "", banner);
  co_return true;
}

void Session::log_event(const char* event, std::string_view recipient, const smtp::Reply* r,
                        std::uint64_t size) {
  if (!worker_.log && !worker_.webhooks) return;
  eventlog::LogRecord rec;
  rec.event = event;
  rec.time_ms = spool::wall_clock_ms();
  if (tx_active()) rec.id = txs_->tx.id.hex();
  if (txs_) rec.sender = txs_->tx.sender.address.str();
  rec.recipient = std::string(recipient.substr(0, 512));
  auto at = recipient.rfind('@');
  if (at != std::string_view::npos)
    rec.destination = dns::normalize_domain(recipient.substr(at + 1));
  if (r) {
    rec.code = r->code;
    rec.enhanced = r->enhanced;
    rec.text = r->text;
  }
  rec.size = size;
  if (txs_) rec.meta.assign(txs_->tx.meta.begin(), txs_->tx.meta.end());
  // A rejection has no commit: its webhook row is at most once (webhooks.hpp).
  if (worker_.webhooks) worker_.webhooks->publish_uncommitted(rec);
  if (worker_.log) worker_.log->write(worker_.index, std::move(rec));
}

void Session::log_rejected_message(const smtp::Reply& reply) {
  if (!txs_) return;
  for (const auto& r : txs_->tx.recipients) log_event("rejection", r.address.str(), &reply);
}

Session::TxState& Session::tx_state() {
  if (!txs_)
    txs_ = std::make_unique<TxState>(*worker_.writer, *worker_.store,
                                     worker_.config->spool.body_buffer);
  return *txs_;
}

void Session::reset_transaction() { txs_.reset(); }

asio::awaitable<void> Session::abort_transaction() {
  if (receiving()) co_await txs_->draft.discard();
  reset_transaction();
}

asio::awaitable<void> Session::run() {
  auto self = shared_from_this();
  bool keep = false;
  bool failed = false;
  try {
    keep = co_await open();
  } catch (const std::exception& e) {
    // A bug must cost one connection, not the worker.
    spdlog::error("session from {} failed: {}", conn_.remote_ip, e.what());
    failed = true;
  }
  if (failed) {
    close();
    co_return;
  }
  const ReadResult first = keep ? ReadResult::Ok : ReadResult::Closed;
  co_await serve(first);
}

asio::awaitable<bool> Session::open() {
  worker_.stats.connections.fetch_add(1, std::memory_order_relaxed);
  deadline_.start(listener_.command_timeout);
  session_deadline_ = std::chrono::steady_clock::now() + listener_.session_timeout;

  // Implicit TLS (port 465 style): the handshake comes before any SMTP. A
  // connection over a cap is closed without one (a handshake is the most
  // expensive thing a client can ask for, and the cap is there to bound cost).
  if (listener_.implicit_tls) {
    if (refusal_ != ConnectionGate::Refusal::None) {
      count_refusal();
      co_return false;
    }
    if (!co_await start_tls()) co_return false;
  }
  if (worker_.draining) {
    reply(421, "",
          fmt::format("{} Service not available, shutting down", worker_.config->hostname));
    co_return false;
  }
  if (refusal_ != ConnectionGate::Refusal::None) {
    // Over a connection cap: answered before anything costs more (no hook).
    count_refusal();
    reply(*refusal_reply_);
    co_return false;
  }
  if (!co_await connect_allowed()) co_return false;
  const bool greeted = co_await greet();
  co_return greeted;
}

void Session::command_wait_ended(ReadResult why) {
  if (why == ReadResult::Timeout) {
    timeout_reply("a command");
  } else if (why == ReadResult::Drain) {
    reply(421, "4.3.2", fmt::format("{} shutting down", worker_.config->hostname));
  }
}

asio::awaitable<void> Session::serve(ReadResult woke) {
  bool park = false;
  try {
    const auto& hostname = worker_.config->hostname;
    bool keep = woke == ReadResult::Ok;
    if (!keep) command_wait_ended(woke);
    while (keep) {
      // Serve every complete command already buffered (pipelining) before reading.
      auto nl = in_.find('\n', in_pos_);
      if (nl == std::string::npos) {
        if (in_.size() - in_pos_ > listener_.max_line_length) {
          // Over-long line: answer once, then discard up to the next LF.
          reply(500, "5.5.2", "line too long");
          bool limit = count_error();
          in_.clear();
          in_pos_ = 0;
          bool found = false;
          while (!found && !limit) {
            if (!co_await flush()) break;
            auto r = co_await read_more(listener_.command_timeout);
            if (r != ReadResult::Ok) break;
            auto p = in_.find('\n');
            if (p != std::string::npos) {
              in_pos_ = p + 1;
              found = true;
            } else {
              in_.clear();
            }
          }
          if (!found || limit) {
            if (limit) reply(421, "4.7.0", "too many errors, closing connection");
            break;
          }
          continue;
        }
        if (drain_requested_) {
          reply(421, "4.3.2", fmt::format("{} shutting down", hostname));
          break;
        }
        // The replies go out before the wait; most often the socket takes
        // them at once, without a coroutine or a reactor operation.
        if (!write_now()) break;
        if (!out_.empty()) {
          const bool flushed = co_await flush();
          if (!flushed) break;
        }
        // Waiting for a command can take minutes, and most sessions of a bulk
        // sender's pool wait: hold no buffer meanwhile (a command's reads and
        // replies cost one small allocation each instead).
        std::string().swap(out_);
        if (in_pos_ == in_.size()) {
          std::string().swap(in_);
          in_pos_ = 0;
        }
        // Between transactions the wait may be long (a bulk sender's idle
        // pool, a client thinking): park. Within a transaction the next
        // command follows at once, and parking would cost a coroutine spawn
        // (a few allocations) per command. TLS: OpenSSL may hold decrypted
        // input the socket no longer shows, so the wait reads through the
        // stream (and a TLS session's frames are small next to OpenSSL's state).
        if (!tls_ && !tx_active()) {
          park = true;  // wait_for_command(), below, once this frame is gone
          break;
        }
        idle_wait_ = true;
        auto r = co_await read_more(listener_.command_timeout);
        idle_wait_ = false;
        if (r == ReadResult::Ok) continue;
        command_wait_ended(r);
        break;
      }
      std::string_view line(in_.data() + in_pos_, nl - in_pos_);
      in_pos_ = nl + 1;
      if (line.empty() || line.back() != '\r') {
        reply(500, "5.5.2", "command lines must end with CRLF");
        if (count_error()) {
          reply(421, "4.7.0", "too many errors, closing connection");
          break;
        }
        continue;
      }
      line.remove_suffix(1);
      if (line.size() + 2 > listener_.max_line_length) {
        reply(500, "5.5.2", "line too long");
        if (count_error()) {
          reply(421, "4.7.0", "too many errors, closing connection");
          break;
        }
        continue;
      }
      // Replies to pipelined commands wait in out_ until the client reads them:
      // past a bound, write before serving more, so a client that sends and
      // never reads is held by TCP flow control instead of growing out_.
      if (out_.size() > kMaxPendingReplies && !co_await flush()) break;
      keep = co_await handle_line(line);
    }
    if (!park) {
      co_await flush();
      // QUIT, a drop, a timeout or a drain in the middle of a BDAT sequence: its
      // chunks must not wait for recovery at the next start.
      co_await abort_transaction();
    }
  } catch (const std::exception& e) {
    // A bug must cost one connection, not the worker.
    spdlog::error("session from {} failed: {}", conn_.remote_ip, e.what());
    park = false;
  }
  if (park) {
    wait_for_command();
  } else {
    close();
  }
}

asio::awaitable<bool> Session::handle_line(std::string_view line) {
  const auto cmd = smtp::parse_command(line);
  using smtp::Verb;
  const std::size_t errors_before = errors_;
  bool junk = false;
  switch (cmd.verb) {
    case Verb::Ehlo:
    case Verb::Helo:
      co_await do_ehlo(cmd.arg, cmd.verb == Verb::Ehlo);
      break;
    case Verb::Mail:
      co_await do_mail(cmd.arg);
      break;
    case Verb::Rcpt:
      co_await do_rcpt(cmd.arg);
      break;
    case Verb::Data:
      if (!cmd.arg.empty()) {
        reply(501, "5.5.4", "DATA takes no arguments");
        ++errors_;
        break;
      }
      if (!co_await do_data()) co_return false;
      break;  // its error replies count toward max_errors like any other
    case Verb::Bdat:
      if (!co_await do_bdat(cmd.arg)) co_return false;
      break;
    case Verb::Rset:
      co_await abort_transaction();
      reply(250, "2.0.0", "OK");
      junk = true;
      break;
    case Verb::Noop:
      reply(250, "2.0.0", "OK");
      junk = true;
      break;
    case Verb::Quit:
      reply(221, "2.0.0", fmt::format("{} closing connection", worker_.config->hostname));
      co_return false;
    case Verb::Vrfy:
      reply(252, "2.5.0", "cannot VRFY user, but will accept message and attempt delivery");
      junk = true;
      break;
    case Verb::Expn:
      reply(502, "5.5.1", "EXPN not available");
      ++errors_;
      junk = true;
      break;
    case Verb::Help:
      reply(214, "2.0.0",
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\n"
            "See RFC 5321 and https://www.rfc-editor.org/rfc/rfc5321");
      junk = true;
      break;
    case Verb::Starttls:
      if (!starttls_allowed(cmd.arg)) break;  // refused (reply queued)
      reply(220, "2.0.0", "Ready to start TLS");
      discard_pipelined_input();
      if (!co_await flush()) co_return false;
      if (!co_await start_tls()) co_return false;
      // RFC 3207 §4.2: back to the state right after the greeting.
      co_await abort_transaction();
      forget_helo();
      break;
    case Verb::Auth:
      if (!co_await do_auth(cmd.arg)) co_return false;
      break;
    case Verb::Unknown: {
      // A web client talking to the SMTP port: drop it (cross-protocol attacks).
      if (smtp::is_http_request_line(line)) {
        reply(421, "4.7.0", "this is an SMTP server; closing connection");
        worker_.stats.sessions_dropped.fetch_add(1, std::memory_order_relaxed);
        co_return false;
      }
      reply(500, "5.5.2", "syntax error, command unrecognized");
      ++errors_;
      break;
    }
  }
  if (errors_ != errors_before && errors_ >= listener_.max_errors) {
    reply(421, "4.7.0", "too many errors, closing connection");
    worker_.stats.sessions_dropped.fetch_add(1, std::memory_order_relaxed);
    co_return false;
  }
  if (junk && ++junk_ > listener_.max_junk_commands) {
    reply(421, "4.7.0", "too many commands without mail, closing connection");
    worker_.stats.sessions_dropped.fetch_add(1, std::memory_order_relaxed);
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> Session::do_ehlo(std::string_view arg, bool esmtp) {
  auto parsed = smtp::parse_helo(arg);
  if (auto* err = std::get_if<smtp::Reply>(&parsed)) {
    // RFC 2034: no enhanced code on EHLO/HELO replies.
    reply(err->code, "", err->text);
    ++errors_;
    co_return;
  }
  // A valid EHLO/HELO aborts a transaction in progress (RFC 5321 §4.1.4), BDAT
  // chunks included; a refused one (501) leaves it as it was.
  co_await abort_transaction();
  // EHLO/HELO takes the newest policy (a reload between sessions' greetings applies).
  if (worker_.policy) policy_ = worker_.policy->current(worker_.index);
  if (has_hook(policy::Event::Helo)) {
    auto name = std::get<std::string>(parsed);
    auto v = co_await policy_->helo(conn_, name);
    if (refused_by(v)) {
      worker_.stats.helo_rejected_policy.fetch_add(1, std::memory_order_relaxed);
      co_return;
    }
  }
  conn_.helo = std::get<std::string>(parsed);
  esmtp_ = esmtp;
  const auto& host = worker_.config->hostname;
  if (!esmtp) {
    reply(250, "", host);
    co_return;
  }
  reply(250, "",
        fmt::format("{} greets {}\nPIPELINING\nSIZE {}\n8BITMIME\nSMTPUTF8\n"
                    "ENHANCEDSTATUSCODES\nCHUNKING\nDSN{}{}",
                    host, conn_.helo, listener_.max_message_size,
                    starttls_offered() ? "\nSTARTTLS" : "",
                    auth_offered() ? "\nAUTH PLAIN LOGIN" : ""));
}

asio::awaitable<void> Session::do_mail(std::string_view arg) {
  if (conn_.helo.empty()) {
    reply(503, "5.5.1", "send EHLO or HELO first");
    ++errors_;
    co_return;
  }
  if (tx_active()) {
    reply(503, "5.5.1", "nested MAIL command");
    ++errors_;
    co_return;
  }
  auto parsed = smtp::parse_mail_from(arg);
  if (auto* err = std::get_if<smtp::Reply>(&parsed)) {
    reply(*err);
    ++errors_;
    co_return;
  }
  auto& mail = std::get<smtp::MailFrom>(parsed);
  const auto& p = mail.params;
  if (!esmtp_ && (p.size || p.body != smtp::BodyType::Unspecified || p.smtputf8 ||
                  p.ret != smtp::Ret::Unspecified || !p.envid.empty() || !p.auth.empty())) {
    reply(555, "5.5.4", "MAIL parameters require EHLO");
    ++errors_;
    co_return;
  }
  if (p.size && *p.size > listener_.max_message_size) {
    reply(552, "5.3.4",
          fmt::format("message size exceeds fixed limit of {} bytes", listener_.max_message_size));
    ++errors_;
    co_return;
  }
  if (listener_.auth == policy::AuthMode::Required && conn_.auth.empty()) {
    reply(530, "5.7.0", "authentication required");
    ++errors_;
    co_return;
  }
  if (worker_.writer->disk_low()) {
    reply(452, "4.3.1", "insufficient system storage, try again later");
    co_return;
  }
  reset_transaction();
  tx().id = worker_.submitter->next_id();
  tx_state().deadline = std::chrono::steady_clock::now() + listener_.transaction_timeout;
  tx().sender = std::move(mail.path);
  tx().params = std::move(mail.params);
  // A new transaction takes the newest policy (reload happens between transactions).
  if (worker_.policy) tx().policy = worker_.policy->current(worker_.index);
  if (has_hook(policy::Event::MailFrom)) {
    auto v = co_await tx().policy->mail_from(tx_info());
    if (refused_by(v)) {
      worker_.stats.senders_rejected_policy.fetch_add(1, std::memory_order_relaxed);
      reset_transaction();
      co_return;
    }
  }
  tx().active = true;
  junk_ = 0;
  reply(250, "2.1.0", "OK");
}

asio::awaitable<void> Session::do_rcpt(std::string_view arg) {
  if (!tx_active()) {
    reply(503, "5.5.1", "need MAIL before RCPT");
    ++errors_;
    co_return;
  }
  auto parsed = smtp::parse_rcpt_to(arg, tx().params.smtputf8);
  if (auto* err = std::get_if<smtp::Reply>(&parsed)) {
    reply(*err);
    log_event("rejection", arg, err);
    worker_.stats.recipients_rejected_syntax.fetch_add(1, std::memory_order_relaxed);
    ++errors_;
    co_return;
  }
  auto& rcpt = std::get<smtp::RcptTo>(parsed);
  if (!esmtp_ && (rcpt.params.notify || !rcpt.params.orcpt.empty())) {
    reply(555, "5.5.4", "RCPT parameters require EHLO");
    ++errors_;
    co_return;
  }
  if (tx().recipients.size() >= listener_.max_recipients) {
    // RFC 5321 §4.5.3.1.10: 452 so the client sends the rest in another transaction.
    const smtp::Reply r{452, "4.5.3", "too many recipients"};
    reply(r);
    log_event("rejection", rcpt.path.address.str(), &r);
    worker_.stats.recipients_rejected_limit.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
  const auto* hook_tx = has_hook(policy::Event::RcptTo) ? &tx_info() : nullptr;
  const auto decision = co_await admit_recipient(tx().policy.get(), hook_tx, rcpt, may_relay_,
                                                 listener_.relay_domains);
  if (decision.kind != RecipientDecision::Kind::Accepted) {
    reply(decision.reply);
    log_event("rejection", rcpt.path.address.str(), &decision.reply);
    if (decision.kind == RecipientDecision::Kind::RefusedByPolicy) {
      worker_.stats.recipients_rejected_policy.fetch_add(1, std::memory_order_relaxed);
      if (!decision.reply.transient()) ++errors_;
    } else {
      worker_.stats.recipients_rejected_relay.fetch_add(1, std::memory_order_relaxed);
      ++errors_;
    }
    co_return;
  }
  tx().recipients.push_back({std::move(rcpt.path.address), std::move(rcpt.params)});
  worker_.stats.recipients_accepted.fetch_add(1, std::memory_order_relaxed);
  reply(250, "2.1.5", "OK");
}

}  // namespace mailgate::server
