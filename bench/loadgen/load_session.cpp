// bench/loadgen/load_session: one load-generator session (see the header).
#include "load_session.hpp"

#include <array>
#include <asio/connect.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl/stream.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "net/socket_deadline.hpp"
#include "smtp/ehlo_capabilities.hpp"
#include "smtp/reply_parser.hpp"
#include "text/base64.hpp"

namespace mailgate::loadgen {

using Clock = std::chrono::steady_clock;

std::optional<Dispatcher::Ticket> Dispatcher::claim() {
  if (opts_.duration.count() > 0 && Clock::now() - start_ >= opts_.duration) return std::nullopt;
  const auto n = next_.fetch_add(1);
  if (n >= opts_.messages) return std::nullopt;
  auto due = start_;
  if (opts_.rate > 0)
    due += std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(static_cast<double>(n) / opts_.rate));
  return Ticket{n, due};
}

namespace {

std::uint64_t us_since(Clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

std::string reply_key(const char* phase, const smtp::Reply& r) {
  std::string k = std::string(phase) + " " + std::to_string(r.code);
  if (!r.enhanced.empty()) k += " " + r.enhanced;
  return k;
}

// The body after the per-message header block: filler lines of 76 'x' (never
// a leading dot), so the message is `size` bytes with the header block.
std::string filler(std::uint64_t size) {
  std::string out;
  out.reserve(size + 80);
  const std::string line = std::string(76, 'x') + "\r\n";
  while (out.size() + line.size() <= size) out += line;
  if (out.size() < size)
    out.append(size - out.size() < 3 ? 0 : size - out.size() - 2, 'y') += "\r\n";
  return out;
}

// GCC 12 miscompiles a co_await inside an if condition when the operand
// involves a temporary (a resumed frame that no longer exists: SIGILL), so
// every co_await here is a statement of its own and its operands are named.
constexpr std::string_view kQuit = "QUIT\r\n";
constexpr std::string_view kEmptyData = ".\r\n";

class Session {
 public:
  Session(asio::any_io_executor ex, const LoadOptions& o, asio::ssl::context& tls, LoadStats& stats)
      : sock_(ex), deadline_(sock_), opts_(o), tls_ctx_(tls), stats_(stats) {}
  ~Session() { deadline_.stop(); }

  // Connect, greeting, EHLO, STARTTLS, AUTH; false (error counted) when not ready.
  asio::awaitable<bool> open(const asio::ip::tcp::endpoint& target, unsigned index) {
    reset();
    std::error_code ec;
    sock_.open(target.protocol(), ec);
    if (!ec && !opts_.sources.empty()) {
      const auto& src = opts_.sources[index % opts_.sources.size()];
      sock_.bind(asio::ip::tcp::endpoint(asio::ip::make_address(src, ec), 0), ec);
      if (ec) co_return fail("bind " + src + ": " + ec.message());
    }
    if (ec) co_return fail("socket: " + ec.message());
    const auto t0 = Clock::now();
    deadline_.start(opts_.timeout);
    co_await sock_.async_connect(target, asio::redirect_error(asio::use_awaitable, ec));
    if (ec)
      co_return fail("connect: " + (deadline_.expired() ? std::string("timeout") : ec.message()));
    auto greeting = co_await read_reply();
    if (!greeting) co_return fail("greeting: " + last_error_);
    if (greeting->code != 220) co_return fail(reply_key("greeting", *greeting));
    stats_.connect_banner.record(us_since(t0));
    ++stats_.sessions;
    bool greeted = co_await hello();
    if (!greeted) co_return false;
    if (opts_.starttls) {
      if (!caps_.starttls) co_return fail("STARTTLS not offered");
      auto r = co_await command("STARTTLS\r\n");
      if (!r) co_return fail("STARTTLS: " + last_error_);
      if (r->code != 220) co_return fail(reply_key("STARTTLS", *r));
      in_.clear();  // nothing the server sent in plaintext counts after its 220
      pos_ = 0;
      tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(sock_, tls_ctx_);
      deadline_.set(opts_.timeout);
      co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                     asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return fail("TLS handshake: " + ec.message());
      greeted = co_await hello();
      if (!greeted) co_return false;
    }
    if (!opts_.auth.empty()) {
      const auto colon = opts_.auth.find(':');
      std::string plain;
      plain += '\0';
      plain += opts_.auth.substr(0, colon);
      plain += '\0';
      plain += colon == std::string::npos ? "" : opts_.auth.substr(colon + 1);
      auto r = co_await command("AUTH PLAIN " + text::base64_encode(plain) + "\r\n");
      if (!r) co_return fail("AUTH: " + last_error_);
      if (r->code != 235) co_return fail(reply_key("AUTH", *r));
    }
    open_ = true;
    co_return true;
  }

  // One message; false when the session is no longer usable.
  asio::awaitable<bool> send(std::uint64_t number, std::uint64_t size) {
    const std::string to = recipient(number);
    std::string cmds = "MAIL FROM:<" + opts_.from + ">";
    if (caps_.size) cmds += " SIZE=" + std::to_string(size);
    cmds += "\r\n";
    const std::size_t mail_end = cmds.size();
    for (unsigned i = 0; i < opts_.recipients; ++i)
      cmds += "RCPT TO:<" + (i == 0 ? to : std::to_string(i) + "." + to) + ">\r\n";
    cmds += "DATA\r\n";
    const bool pipelined = opts_.pipelining && caps_.pipelining;

    std::optional<smtp::Reply> failure;
    unsigned accepted = 0;
    bool data_ok = false;
    if (pipelined) {
      const auto t = Clock::now();
      const bool written = co_await write(cmds);
      if (!written) co_return lost("MAIL");
      for (unsigned i = 0; i < opts_.recipients + 2; ++i) {
        auto r = co_await read_reply();
        if (!r) co_return lost(i == 0 ? "MAIL" : "RCPT");
        if (i == 0) stats_.mail.record(us_since(t));
        const bool ok = i == opts_.recipients + 1 ? r->code == 354 : r->positive();
        if (i > 0 && i <= opts_.recipients && ok) ++accepted;
        if (i == opts_.recipients + 1) data_ok = ok;
        if (!ok && !failure) failure = *r;
      }
      if (data_ok && (failure || accepted == 0)) {
        // DATA was accepted although MAIL or every RCPT failed: end it empty.
        const bool ended = co_await write(kEmptyData);
        if (!ended) co_return lost("DATA");
        const auto reply = co_await read_reply();
        if (!reply) co_return lost("DATA");
      }
    } else {
      const auto t = Clock::now();
      auto r = co_await command(cmds.substr(0, mail_end));
      if (!r) co_return lost("MAIL");
      stats_.mail.record(us_since(t));
      if (!r->positive()) failure = *r;
      std::size_t pos = mail_end;
      for (unsigned i = 0; !failure && i < opts_.recipients; ++i) {
        const auto end = cmds.find("\r\n", pos) + 2;
        r = co_await command(cmds.substr(pos, end - pos));
        if (!r) co_return lost("RCPT");
        if (r->positive())
          ++accepted;
        else if (accepted == 0 && i + 1 == opts_.recipients)
          failure = *r;
        pos = end;
      }
      if (!failure) {
        r = co_await command("DATA\r\n");
        if (!r) co_return lost("DATA");
        data_ok = r->code == 354;
        if (!data_ok) failure = *r;
      }
    }
    if (failure || !data_ok) {
      ++stats_.failed;
      stats_.error(reply_key("transaction", failure ? *failure : smtp::Reply{}));
      auto r = co_await command("RSET\r\n");
      co_return r && r->positive();
    }
    const std::string headers =
        "From: <" + opts_.from + ">\r\nTo: <" + to + ">\r\nSubject: loadgen " +
        std::to_string(number) + "\r\nMessage-ID: <" + std::to_string(number) +
        ".loadgen@example.org>\r\nX-Loadgen: " + std::to_string(number) + "\r\n\r\n";
    const std::string& body = filler_for(size > headers.size() ? size - headers.size() : 0);
    static constexpr std::string_view kEnd = ".\r\n";
    const bool written = co_await write_buffers(asio::buffer(headers), asio::buffer(body),
                                                asio::buffer(kEnd.data(), kEnd.size()));
    if (!written) co_return lost("body");
    const auto t = Clock::now();
    auto r = co_await read_reply();
    if (!r) co_return lost("end of data");
    stats_.end_of_data.record(us_since(t));
    if (r->positive()) {
      ++stats_.accepted;
      stats_.bytes += headers.size() + body.size();
    } else {
      ++stats_.failed;
      stats_.error(reply_key("end of data", *r));
    }
    co_return true;
  }

  asio::awaitable<void> quit() {
    if (open_) {
      const bool written = co_await write(kQuit);
      if (written) {
        const auto reply = co_await read_reply();
        (void)reply;
      }
    }
    close();
  }

  bool is_open() const { return open_; }
  void close() {
    std::error_code ec;
    sock_.close(ec);
    open_ = false;
  }

 private:
  void reset() {
    close();
    tls_.reset();
    in_.clear();
    pos_ = 0;
    parser_.reset();
  }
  bool fail(const std::string& what) {
    stats_.error(what);
    close();
    return false;
  }
  // The connection broke in the middle of a message: the message failed.
  bool lost(const char* phase) {
    ++stats_.failed;
    stats_.error(std::string(phase) + ": " + last_error_);
    close();
    return false;
  }
  std::string recipient(std::uint64_t number) const {
    std::string to = opts_.to;
    const auto at = to.find("{n}");
    if (at != std::string::npos) to.replace(at, 3, std::to_string(number));
    return to;
  }
  const std::string& filler_for(std::uint64_t size) {
    auto it = fillers_.find(size);
    if (it == fillers_.end()) it = fillers_.emplace(size, filler(size)).first;
    return it->second;
  }

  asio::awaitable<bool> hello() {
    auto r = co_await command("EHLO " + opts_.ehlo + "\r\n");
    if (!r) co_return fail("EHLO: " + last_error_);
    if (r->code != 250) co_return fail(reply_key("EHLO", *r));
    caps_ = smtp::parse_ehlo(*r);
    co_return true;
  }

  asio::awaitable<bool> write(std::string_view data) {
    const bool ok = co_await write_buffers(asio::buffer(data.data(), data.size()));
    co_return ok;
  }
  // Up to three buffers in one gathering write (taken by value: nothing the
  // caller's temporaries hold is referenced across the suspension).
  asio::awaitable<bool> write_buffers(asio::const_buffer a, asio::const_buffer b = {},
                                      asio::const_buffer c = {}) {
    const std::array<asio::const_buffer, 3> parts{a, b, c};
    deadline_.set(opts_.timeout);
    std::error_code ec;
    if (tls_)
      co_await asio::async_write(*tls_, parts, asio::redirect_error(asio::use_awaitable, ec));
    else
      co_await asio::async_write(sock_, parts, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) last_error_ = deadline_.expired() ? "timeout" : ec.message();
    co_return !ec;
  }

  asio::awaitable<std::optional<smtp::Reply>> command(std::string line) {
    const bool written = co_await write(line);
    if (!written) co_return std::nullopt;
    auto reply = co_await read_reply();
    co_return reply;
  }

  asio::awaitable<std::optional<smtp::Reply>> read_reply() {
    deadline_.set(opts_.timeout);
    for (;;) {
      if (pos_ < in_.size()) {
        pos_ += parser_.feed(std::string_view(in_).substr(pos_));
        if (parser_.done()) co_return parser_.take();
        if (parser_.error()) {
          last_error_ = "malformed reply";
          co_return std::nullopt;
        }
      }
      in_.clear();
      pos_ = 0;
      std::error_code ec;
      std::size_t n = 0;
      if (tls_)
        n = co_await tls_->async_read_some(asio::buffer(buf_),
                                           asio::redirect_error(asio::use_awaitable, ec));
      else
        n = co_await sock_.async_read_some(asio::buffer(buf_),
                                           asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        last_error_ = deadline_.expired() ? "timeout" : ec.message();
        co_return std::nullopt;
      }
      in_.assign(buf_.data(), n);
    }
  }

  asio::ip::tcp::socket sock_;
  net::SocketDeadline deadline_;
  const LoadOptions& opts_;
  asio::ssl::context& tls_ctx_;
  LoadStats& stats_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  smtp::EhloCapabilities caps_;
  smtp::ReplyParser parser_;
  std::array<char, 16384> buf_{};
  std::string in_;
  std::size_t pos_ = 0;
  std::string last_error_;
  bool open_ = false;
  std::map<std::uint64_t, std::string> fillers_;
};

}  // namespace

void LoadStats::merge(const LoadStats& o) {
  connect_banner.merge(o.connect_banner);
  mail.merge(o.mail);
  end_of_data.merge(o.end_of_data);
  start_lag.merge(o.start_lag);
  accepted += o.accepted;
  failed += o.failed;
  sessions += o.sessions;
  idle_held += o.idle_held;
  bytes += o.bytes;
  for (const auto& [k, v] : o.errors) errors[k] += v;
}

asio::awaitable<void> run_session(const LoadOptions& opts, Dispatcher& dispatcher,
                                  asio::ssl::context& tls, asio::ip::tcp::endpoint target,
                                  unsigned index, LoadStats& stats,
                                  std::chrono::steady_clock::time_point hold_until) {
  auto ex = co_await asio::this_coro::executor;
  Session s(ex, opts, tls, stats);
  asio::steady_timer timer(ex);
  if (opts.idle > 0) {
    const bool opened = co_await s.open(target, index);
    if (!opened) co_return;
    timer.expires_at(hold_until);
    std::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (s.is_open()) ++stats.idle_held;
    co_await s.quit();
    co_return;
  }
  unsigned on_connection = 0;
  std::uint64_t draw = index * 2654435761u;
  for (;;) {
    const auto ticket = dispatcher.claim();
    if (!ticket) break;
    if (opts.rate > 0) {
      if (ticket->due > Clock::now()) {
        timer.expires_at(ticket->due);
        std::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      stats.start_lag.record(us_since(ticket->due));
    }
    bool ready = s.is_open();
    if (!ready) {
      on_connection = 0;
      ready = co_await s.open(target, index);
      if (!ready) ++stats.failed;  // the message this session claimed
    }
    if (!ready) continue;
    draw = draw * 6364136223846793005ull + 1442695040888963407ull;
    const auto size = opts.sizes.pick((draw >> 33) % opts.sizes.total_weight());
    const bool usable = co_await s.send(ticket->number, size);
    if (usable && opts.per_connection > 0 && ++on_connection >= opts.per_connection)
      co_await s.quit();
  }
  co_await s.quit();
}

}  // namespace mailgate::loadgen
