// delivery/smtp_client: see smtp_client.hpp.
#include "delivery/smtp_client.hpp"
#include "smtp/address.hpp"
#include "spool/spool_reader.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <asio/connect.hpp>
#include <asio/ip/address.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "smtp/dot_stuffer.hpp"
#include "smtp/params.hpp"
#include "smtp/sasl.hpp"

namespace mailgate::delivery {

using asio::use_awaitable;

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kWriteChunk = 64 * 1024;

bool needs_utf8(const spool::Envelope& env) {
  if (smtp::has_non_ascii(env.sender)) return true;
  for (const auto& r : env.recipients)
    if (smtp::has_non_ascii(r.address)) return true;
  return false;
}
}  // namespace

std::shared_ptr<asio::ssl::context> client_tls_context() {
  // Built once (thread-safe static); an SSL_CTX may create SSLs on any thread.
  static const std::shared_ptr<asio::ssl::context> ctx = [] {
    std::string error;  // the system store: nothing to fail on
    return make_client_context("", error);
  }();
  return ctx;
}

bool SmtpClient::tls_mandatory() const {
  return tls_mode_ == smtp::TlsMode::Required || tls_mode_ == smtp::TlsMode::Verify ||
         tls_mode_ == smtp::TlsMode::Dane;
}

bool SmtpClient::tls_authenticated() const {
  return tls_mode_ == smtp::TlsMode::Verify || tls_mode_ == smtp::TlsMode::Dane;
}

SmtpClient::SmtpClient(asio::any_io_executor ex, std::string ehlo_name, ClientTimeouts timeouts,
                       smtp::TlsMode tls_mode, std::shared_ptr<asio::ssl::context> tls_context)
    : socket_(ex),
      deadline_(socket_),
      tls_mode_(tls_mode),
      tls_context_(std::move(tls_context)),
      ehlo_name_(std::move(ehlo_name)),
      timeouts_(timeouts) {
  if (!tls_context_ && tls_mode_ != smtp::TlsMode::Disabled) tls_context_ = client_tls_context();
}

SmtpClient::~SmtpClient() {
  deadline_.stop();
  std::error_code ec;
  socket_.close(ec);
}

void SmtpClient::reset_connection() {
  tls_.reset();
  tls_verified_ = false;
  tls_failure_ = TlsFailure::None;
  certificate_failure_ = TlsFailure::None;
  authenticated_ = false;
  std::error_code ec;
  socket_.close(ec);
  in_.clear();
  in_pos_ = 0;
  parser_ = smtp::ReplyParser{};
  caps_ = {};
  usable_ = false;
}

smtp::Reply SmtpClient::broken(const char* what) const {
  return {421, deadline_.expired() ? "4.4.2" : "4.4.1",
          fmt::format("{} with {}", deadline_.expired() ? "timeout" : what,
                      peer_.address().to_string())};
}

asio::awaitable<smtp::Reply> SmtpClient::read_reply(std::chrono::milliseconds timeout) {
  deadline_.set(timeout);
  for (;;) {
    if (in_pos_ < in_.size()) {
      in_pos_ += parser_.feed(std::string_view(in_).substr(in_pos_));
      if (parser_.error()) {
        usable_ = false;
        co_return smtp::Reply{421, "4.5.0", "malformed reply from " + peer_.address().to_string()};
      }
      if (parser_.done()) {
        auto reply = parser_.take();
        if (observer_) observer_(reply, current_env_);
        co_return reply;
      }
    }
    if (in_pos_ == in_.size()) {
      in_.clear();
      in_pos_ = 0;
    }
    const std::size_t old = in_.size();
    in_.resize(old + kReadChunk);
    std::error_code ec;
    const auto buf = asio::buffer(in_.data() + old, kReadChunk);
    std::size_t n = 0;
    if (tls_)
      n = co_await tls_->async_read_some(buf, asio::redirect_error(use_awaitable, ec));
    else
      n = co_await socket_.async_read_some(buf, asio::redirect_error(use_awaitable, ec));
    in_.resize(old + n);
    if (ec) {
      usable_ = false;
      co_return broken("connection lost");
    }
  }
}

asio::awaitable<bool> SmtpClient::write(const std::string& data,
                                        std::chrono::milliseconds timeout) {
  deadline_.set(timeout);
  std::error_code ec;
  if (tls_)
    co_await asio::async_write(*tls_, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
  else
    co_await asio::async_write(socket_, asio::buffer(data),
                               asio::redirect_error(use_awaitable, ec));
  if (ec) usable_ = false;
  co_return !ec;
}

asio::awaitable<smtp::Reply> SmtpClient::command(const std::string& line,
                                                 std::chrono::milliseconds timeout) {
  if (!co_await write(line, timeout)) co_return broken("connection lost");
  // Two statements: g++ 12 miscompiles `co_return co_await` of a class type.
  auto reply = co_await read_reply(timeout);
  co_return reply;
}

asio::awaitable<smtp::Reply> SmtpClient::open(const asio::ip::tcp::endpoint& ep, std::string host) {
  peer_ = ep;
  host_ = std::move(host);
  deadline_.start(timeouts_.connect);
  bool handshake_failed = false;
  auto reply = co_await connect_once(tls_mode_ != smtp::TlsMode::Disabled, handshake_failed);
  if (handshake_failed && tls_mode_ == smtp::TlsMode::Opportunistic) {
    // RFC 7435: broken TLS must not stop mail that plaintext would deliver.
    // The failed session is unusable, so plaintext needs a new connection.
    spdlog::info("{} [{}]: {} {} {}; retrying without TLS", host_, peer_.address().to_string(),
                 reply.code, reply.enhanced, reply.text);
    reset_connection();
    auto plain = co_await connect_once(false, handshake_failed);
    co_return plain;
  }
  co_return reply;
}

asio::awaitable<smtp::Reply> SmtpClient::connect_once(bool starttls, bool& handshake_failed) {
  deadline_.set(timeouts_.connect);
  std::error_code ec;
  if (source_) {
    if (source_->is_v4() != peer_.address().is_v4()) {
      co_return smtp::Reply{
          421, "4.4.1",
          fmt::format("no source address of the family of {}", peer_.address().to_string())};
    }
    socket_.open(peer_.protocol(), ec);
    if (!ec) socket_.bind(asio::ip::tcp::endpoint(*source_, 0), ec);
    if (ec) {
      co_return smtp::Reply{
          421, "4.4.1",
          fmt::format("cannot bind source address {}: {}", source_->to_string(), ec.message())};
    }
  }
  co_await socket_.async_connect(peer_, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return smtp::Reply{421, deadline_.expired() ? "4.4.2" : "4.4.1",
                          fmt::format("cannot connect to {}: {}", peer_.address().to_string(),
                                      deadline_.expired() ? "timeout" : ec.message())};
  }
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  usable_ = true;
  auto greeting = co_await read_reply(timeouts_.greeting);
  if (greeting.code != 220) {
    usable_ = false;
    co_return greeting;
  }
  auto hello = co_await ehlo();
  if (hello.code != 250) co_return hello;
  smtp::Reply ready = hello;
  if (starttls) {
    if (caps_.starttls) {
      ready = co_await start_tls(hello, handshake_failed);
    } else if (tls_mandatory()) {
      usable_ = false;
      tls_failure_ = TlsFailure::StarttlsNotSupported;
      co_return smtp::Reply{
          421, "4.7.10",
          fmt::format("{}TLS required but not offered by {} [{}]",
                      tls_mode_ == smtp::TlsMode::Dane ? "dane: TLSA records published, " : "",
                      host_, peer_.address().to_string())};
    }
  }
  if (ready.code != 250 || !auth_) co_return ready;
  auto login = co_await authenticate();
  if (login.code != 235) co_return login;
  co_return ready;
}

namespace {

// `text` with every occurrence of a secret replaced by "***" (a server that
// echoes what it got must not put credentials into our logs).
std::string masked(std::string text, std::initializer_list<std::string_view> secrets) {
  for (const auto secret : secrets) {
    if (secret.empty()) continue;
    for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
      text.replace(pos, secret.size(), "***");
  }
  return text;
}

}  // namespace

asio::awaitable<smtp::Reply> SmtpClient::authenticate() {
  const std::string where = fmt::format("{} [{}]", host_, peer_.address().to_string());
  if (!tls_ && !auth_->plaintext) {
    co_return smtp::Reply{
        454, "4.7.11",
        fmt::format("smarthost authentication not attempted: no TLS with {}, and the route's auth "
                    "does not allow plaintext",
                    where)};
  }
  const auto mechanism = smtp::pick_client_mechanism(caps_.auth_mechanisms);
  const auto plain = smtp::encode_plain(auth_->user, auth_->password);
  const auto login_user = smtp::encode_login_field(auth_->user);
  const auto login_password = smtp::encode_login_field(auth_->password);
  if (!plain || !login_user || !login_password) {  // the route hook checked them: cannot happen
    co_return smtp::Reply{454, "4.7.8", "smarthost authentication failed: unusable credentials"};
  }
  if (mechanism.empty()) {
    co_return smtp::Reply{454, "4.7.8",
                          fmt::format("smarthost authentication failed: {} offers {}", where,
                                      caps_.auth_mechanisms.empty() ? std::string("no AUTH")
                                                                    : "no AUTH PLAIN or LOGIN")};
  }
  smtp::Reply reply;
  if (mechanism == "PLAIN") {
    // RFC 4954 §4: the initial response saves a round trip.
    reply = co_await command("AUTH PLAIN " + *plain + "\r\n", timeouts_.command);
  } else {
    reply = co_await command("AUTH LOGIN\r\n", timeouts_.command);
    if (reply.code == 334) reply = co_await command(*login_user + "\r\n", timeouts_.command);
    if (reply.code == 334) reply = co_await command(*login_password + "\r\n", timeouts_.command);
  }
  if (reply.code == 334 && usable_) {
    // Yet another challenge: nothing we know how to answer; cancel (501 expected).
    reply = co_await command("*\r\n", timeouts_.command);
    if (reply.code == 235) reply.code = 501;  // never take a cancelled exchange as a login
  }
  if (reply.code == 235) {
    authenticated_ = true;
    co_return reply;
  }
  if (!usable_) co_return reply;  // the connection broke: its 4.4.x reply
  std::string text = reply.text;
  std::replace(text.begin(), text.end(), '\n', ' ');
  text = masked(std::move(text), {auth_->password, *plain, *login_password});
  co_return smtp::Reply{
      454, "4.7.8",
      fmt::format("smarthost authentication failed: {} answered {} {}{}{}", where, reply.code,
                  reply.enhanced, reply.enhanced.empty() ? "" : " ", text)};
}

asio::awaitable<smtp::Reply> SmtpClient::ehlo() {
  auto ehlo = co_await command("EHLO " + ehlo_name_ + "\r\n", timeouts_.command);
  if (ehlo.code == 250) {
    caps_ = smtp::parse_ehlo(ehlo);
    co_return ehlo;
  }
  caps_ = {};
  if (!usable_) co_return ehlo;
  auto helo = co_await command("HELO " + ehlo_name_ + "\r\n", timeouts_.command);
  if (helo.code != 250) usable_ = false;
  co_return helo;
}

asio::awaitable<smtp::Reply> SmtpClient::start_tls(const smtp::Reply& hello,
                                                   bool& handshake_failed) {
  const std::string where = fmt::format("{} [{}]", host_, peer_.address().to_string());
  auto reply = co_await command("STARTTLS\r\n", timeouts_.command);
  if (reply.code != 220) {
    if (reply.code == 421) usable_ = false;
    if (!usable_) co_return reply;
    if (tls_mandatory()) {
      usable_ = false;
      tls_failure_ = TlsFailure::StarttlsNotSupported;
      co_return smtp::Reply{
          421, "4.7.10",
          fmt::format("{}TLS required but STARTTLS refused by {}: {} {}",
                      tls_mode_ == smtp::TlsMode::Dane ? "dane: TLSA records published, " : "",
                      where, reply.code, reply.text)};
    }
    // RFC 3207 §4: after a refused STARTTLS the plaintext session goes on.
    co_return hello;
  }
  // Anything the server sent after its 220 came in plaintext and must not be
  // taken as a reply inside TLS (STARTTLS command injection defence).
  in_.clear();
  in_pos_ = 0;
  parser_ = smtp::ReplyParser{};

  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_context_);
  SSL* ssl = tls_->native_handle();
  const bool dane = tls_mode_ == smtp::TlsMode::Dane;
  if (dane) {
    std::string error;
    if (!prepare_dane_ssl(ssl, host_, dane_records_, error)) {
      tls_.reset();
      usable_ = false;
      handshake_failed = true;
      tls_failure_ = TlsFailure::TlsaInvalid;
      co_return smtp::Reply{421, "4.7.5", fmt::format("{} ({})", error, where)};
    }
  } else {
    prepare_client_ssl(ssl, host_, tls_authenticated());
  }
  deadline_.set(timeouts_.command);
  std::error_code ec;
  co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                 asio::redirect_error(use_awaitable, ec));
  if (ec && dane && SSL_get_verify_result(ssl) != X509_V_OK) {
    const long verify_result = SSL_get_verify_result(ssl);
    tls_.reset();
    usable_ = false;
    handshake_failed = true;
    tls_failure_ = failure_of_dane_verify_result(verify_result);
    const char* why = X509_verify_cert_error_string(verify_result);
    co_return smtp::Reply{
        421, "4.7.5",
        tls_failure_ == TlsFailure::TlsaInvalid
            ? fmt::format("dane: no TLSA record matched the certificate chain of {} ({})", where,
                          why)
            : fmt::format("dane: certificate of {} not accepted: {}", where, why)};
  }
  if (ec) {
    const long verify_result = SSL_get_verify_result(ssl);
    const auto failure =
        tls_authenticated() ? failure_of_verify_result(verify_result) : TlsFailure::None;
    tls_.reset();
    usable_ = false;
    handshake_failed = true;
    tls_failure_ = failure == TlsFailure::None ? TlsFailure::ValidationFailure : failure;
    if (failure != TlsFailure::None) {
      co_return smtp::Reply{421, "4.7.5",
                            fmt::format("TLS certificate of {} not accepted: {}", where,
                                        X509_verify_cert_error_string(verify_result))};
    }
    co_return smtp::Reply{421, "4.7.5",
                          fmt::format("TLS handshake failed with {}: {}", where,
                                      deadline_.expired() ? std::string("timeout") : ec.message())};
  }
  const long verify = SSL_get_verify_result(ssl);
  X509* cert = SSL_get1_peer_certificate(ssl);
  tls_verified_ = cert != nullptr && verify == X509_V_OK;
  certificate_failure_ =
      cert == nullptr ? TlsFailure::CertificateNotTrusted : failure_of_verify_result(verify);
  if (cert) X509_free(cert);
  spdlog::debug("{}: STARTTLS {} {}, certificate {}", where, SSL_get_version(ssl),
                SSL_get_cipher_name(ssl),
                tls_verified_ ? "verified" : X509_verify_cert_error_string(verify));
  // RFC 3207 §4.2: forget what was learnt in plaintext, ask again.
  auto again = co_await ehlo();
  co_return again;
}

std::string SmtpClient::mail_command(const spool::Envelope& env, const std::string& sender) const {
  std::string cmd = "MAIL FROM:<" + sender + ">";
  if (caps_.size) cmd += fmt::format(" SIZE={}", env.size);
  if (env.body_type == static_cast<std::uint8_t>(smtp::BodyType::EightBitMime) &&
      caps_.eightbitmime)
    cmd += " BODY=8BITMIME";
  if (caps_.smtputf8 && (env.smtputf8 || needs_utf8(env))) cmd += " SMTPUTF8";
  if (caps_.dsn) {
    if (env.ret == static_cast<std::uint8_t>(smtp::Ret::Full)) cmd += " RET=FULL";
    if (env.ret == static_cast<std::uint8_t>(smtp::Ret::Hdrs)) cmd += " RET=HDRS";
    if (!env.envid.empty()) cmd += " ENVID=" + smtp::xtext_encode(env.envid);
  }
  return cmd + "\r\n";
}

std::string SmtpClient::rcpt_command(const spool::EnvelopeRecipient& r) const {
  std::string cmd = "RCPT TO:<" + r.address + ">";
  if (caps_.dsn) {
    if (r.notify) cmd += " NOTIFY=" + smtp::notify_text(r.notify);
    if (!r.orcpt.empty()) {
      const auto semi = r.orcpt.find(';');
      if (semi != std::string::npos)
        cmd +=
            " ORCPT=" + r.orcpt.substr(0, semi + 1) + smtp::xtext_encode(r.orcpt.substr(semi + 1));
    }
  }
  return cmd + "\r\n";
}

asio::awaitable<TransactionResult> SmtpClient::send(const spool::Envelope& env,
                                                    const std::vector<std::uint32_t>& rcpts,
                                                    const std::string& body,
                                                    std::optional<std::string> return_path) {
  const BodySource source{&body, nullptr, {}, 0};
  auto result = co_await send(env, rcpts, source, std::move(return_path));
  co_return result;
}

asio::awaitable<bool> SmtpClient::write_stuffed(std::string_view content,
                                                smtp::DotStuffer& stuffer) {
  std::string out;
  for (std::size_t pos = 0; pos < content.size(); pos += kWriteChunk) {
    out.clear();
    stuffer.feed(content.substr(pos, kWriteChunk), out);
    const bool ok = co_await write(out, timeouts_.data_block);
    if (!ok) co_return false;
  }
  co_return true;
}

asio::awaitable<bool> SmtpClient::send_content(const BodySource& body, smtp::DotStuffer& stuffer,
                                               bool& spool_error) {
  if (body.whole) {
    const std::string_view all(*body.whole);
    const bool ok = co_await write_stuffed(all, stuffer);
    co_return ok;
  }
  // Streamed: one chunk in memory at a time (plus its stuffed copy, written
  // in kWriteChunk pieces). The stuffer keeps its line state across chunks.
  auto chunk = std::make_shared<std::string>();
  for (std::uint32_t c = 0; c < body.chunks; ++c) {
    std::error_code ec;
    co_await body.reader->async_read_chunk(body.id, c, chunk,
                                           asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      spool_error = true;
      co_return false;
    }
    const std::string_view got(*chunk);
    const bool ok = co_await write_stuffed(got, stuffer);
    if (!ok) co_return false;
  }
  co_return true;
}

asio::awaitable<TransactionResult> SmtpClient::send(const spool::Envelope& env,
                                                    const std::vector<std::uint32_t>& rcpts,
                                                    const BodySource& body,
                                                    std::optional<std::string> return_path) {
  TransactionResult result;
  struct Current {  // the reply observer sees which message a reply is about
    const spool::Envelope*& env;
    ~Current() { env = nullptr; }
  } current{current_env_};
  current_env_ = &env;
  const std::string& sender = return_path ? *return_path : env.sender;
  auto fail_all = [&](const smtp::Reply& r) {
    result.recipients.assign(rcpts.size(), r);
    return result;
  };
  if (!usable_) co_return fail_all(broken("connection lost"));
  if (needs_utf8(env) && !caps_.smtputf8) {
    co_return fail_all({550, "5.6.7",
                        "the next hop does not support SMTPUTF8, which this "
                        "message's addresses need"});
  }
  if (caps_.size && *caps_.size > 0 && env.size > *caps_.size) {
    co_return fail_all({552, "5.3.4",
                        fmt::format("message of {} bytes exceeds the next hop's "
                                    "limit of {} bytes",
                                    env.size, *caps_.size)});
  }

  std::vector<std::string> rcpt_lines;
  for (auto i : rcpts) rcpt_lines.push_back(rcpt_command(env.recipients[i]));
  smtp::Reply mail, data;
  std::vector<smtp::Reply> rcpt_replies;
  if (caps_.pipelining) {
    std::string batch = mail_command(env, sender);
    for (const auto& l : rcpt_lines) batch += l;
    batch += "DATA\r\n";
    if (!co_await write(batch, timeouts_.command)) co_return fail_all(broken("connection lost"));
    mail = co_await read_reply(timeouts_.command);
    for (std::size_t i = 0; i < rcpt_lines.size() && usable_; ++i) {
      // Its own statement: g++ 12 mishandles a co_await inside a larger expression.
      smtp::Reply reply = co_await read_reply(timeouts_.command);
      rcpt_replies.push_back(std::move(reply));
    }
    if (usable_) data = co_await read_reply(timeouts_.data_init);
  } else {
    mail = co_await command(mail_command(env, sender), timeouts_.command);
    if (mail.code / 100 == 2) {
      for (const auto& l : rcpt_lines) {
        smtp::Reply reply = co_await command(l, timeouts_.command);
        rcpt_replies.push_back(std::move(reply));
        if (!usable_) break;
      }
      bool any = false;
      for (const auto& r : rcpt_replies) any = any || r.code / 100 == 2;
      if (any && usable_) data = co_await command("DATA\r\n", timeouts_.data_init);
    }
  }
  if (!usable_) co_return fail_all(broken("connection lost"));
  if (mail.code / 100 != 2) {
    if (!caps_.pipelining) co_await command("RSET\r\n", timeouts_.command);
    co_return fail_all(mail);
  }
  std::vector<bool> accepted(rcpts.size(), false);
  bool any = false;
  result.recipients.resize(rcpts.size());
  for (std::size_t i = 0; i < rcpts.size(); ++i) {
    result.recipients[i] = rcpt_replies[i];
    accepted[i] = rcpt_replies[i].code / 100 == 2;
    any = any || accepted[i];
  }
  if (!any) {
    if (data.code == 354) {
      // RFC 2920 §3.1: all recipients refused but DATA accepted: send an empty message end.
      co_await command(".\r\n", timeouts_.data_end);
    }
    if (usable_) co_await command("RSET\r\n", timeouts_.command);
    co_return result;
  }
  if (data.code != 354) {
    for (std::size_t i = 0; i < rcpts.size(); ++i)
      if (accepted[i]) result.recipients[i] = data;
    if (usable_) co_await command("RSET\r\n", timeouts_.command);
    co_return result;
  }
  smtp::DotStuffer stuffer;
  bool spool_error = false;
  const bool sent = co_await send_content(body, stuffer, spool_error);
  if (spool_error) {
    // No end-of-data dot: closing the connection mid-DATA makes the peer
    // discard the partial message (RFC 5321 §4.1.1.4); the recipients wait
    // for a retry.
    spdlog::warn(
        "{} [{}]: body of {} unreadable in the spool mid-message; connection closed, "
        "will retry",
        host_, peer_.address().to_string(), body.id.hex());
    reset_connection();
    deadline_.stop();
    for (std::size_t i = 0; i < rcpts.size(); ++i)
      if (accepted[i]) result.recipients[i] = {451, "4.3.0", "local spool read error, will retry"};
    co_return result;
  }
  if (!sent) co_return fail_all(broken("connection lost"));
  std::string out;
  stuffer.finish(out);
  const auto end = co_await command(out, timeouts_.data_end);
  for (std::size_t i = 0; i < rcpts.size(); ++i)
    if (accepted[i]) result.recipients[i] = end;
  co_return result;
}

asio::awaitable<void> SmtpClient::quit() {
  if (usable_) co_await command("QUIT\r\n", std::chrono::seconds(10));
  usable_ = false;
  deadline_.stop();
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace mailgate::delivery
