// delivery/smtp_client: one outbound SMTP connection (a coroutine client).
// Connects with a deadline, reads the greeting, says EHLO (HELO when EHLO is
// refused), then runs transactions: MAIL/RCPT/DATA pipelined when the server
// offers PIPELINING, DSN parameters passed on when it offers DSN, the body
// dot-stuffed with CRLF line ends only. Every read has a deadline (RFC 5321
// §4.5.3.2 values) and every reply a size limit.
// Promises: a transaction result has one reply per recipient; any failure of
// the connection itself shows as usable() == false and temporary (4xx)
// replies for what was not finished, so nothing is counted as delivered that
// the server did not accept with 250 after the final dot.
// STARTTLS (RFC 3207): after EHLO, when the server offers it and the mode is
// not Disabled, the client upgrades the connection (TLS 1.2+, SNI = MX name),
// drops whatever plaintext the server sent after its 220 (command injection
// defence) and says EHLO again. Opportunistic mode (RFC 7435) accepts any
// certificate and only records whether it verified; a failed handshake is
// retried once in plaintext on a new connection. Required and Verify refuse
// to go on without TLS: open() returns 421 4.7.10 when STARTTLS is not
// offered (or refused), so the destination is deferred; Verify also fails
// the handshake unless the certificate chains to a trusted CA and names the
// MX host (tls_client.hpp), and open() returns 421 4.7.5 saying why. Either
// way tls_failure() says which (RFC 8460 result type), for the log.
// Dane (the engine picks it for an MX host with usable, DNSSEC-authentic
// TLSA records, set_dane(); delivery/dane.hpp): like Verify, but the
// certificate is authenticated by the TLSA records (tls_client.hpp) and no
// plaintext retry ever happens; the texts start with "dane: ".
// SMTP AUTH (RFC 4954) to a smarthost, when set_auth() gave credentials:
// after EHLO (after STARTTLS and the second EHLO when TLS is used) the client
// logs in with PLAIN (initial response) or, if only LOGIN is offered, LOGIN.
// It never sends credentials over a connection without TLS unless they say
// `plaintext`. Every way AUTH can fail is a 4xx from open(), so the
// destination is deferred, never bounced: 454 4.7.11 (no TLS to send them
// over), 454 4.7.8 "smarthost authentication failed" (AUTH PLAIN/LOGIN not
// offered, or the server refused them, with its reply). Neither the
// password nor its base64 form is ever logged or put into a reply (a server
// text that echoes it gets it masked).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "delivery/body_source.hpp"
#include "delivery/tls_client.hpp"
#include "dns/answers.hpp"
#include "net/socket_deadline.hpp"
#include "smtp/dot_stuffer.hpp"
#include "smtp/ehlo_capabilities.hpp"
#include "smtp/reply.hpp"
#include "smtp/reply_parser.hpp"
#include "smtp/tls_mode.hpp"
#include "spool/records.hpp"

namespace mailgate::delivery {

struct ClientTimeouts {
  std::chrono::milliseconds connect{30'000};
  std::chrono::milliseconds greeting{300'000};    // RFC 5321 §4.5.3.2.1: 5 min
  std::chrono::milliseconds command{300'000};     // MAIL, RCPT: 5 min
  std::chrono::milliseconds data_init{120'000};   // DATA: 2 min
  std::chrono::milliseconds data_block{180'000};  // each block: 3 min
  std::chrono::milliseconds data_end{600'000};    // final dot: 10 min
};

// The client TLS context of connections made without one (tests): TLS 1.2
// at least, the system's default CA store (make_client_context("")).
std::shared_ptr<asio::ssl::context> client_tls_context();

struct TransactionResult {
  // One reply per recipient asked for, in the same order: 2xx = delivered,
  // 4xx = try again later, 5xx = failed for good.
  std::vector<smtp::Reply> recipients;
};

class SmtpClient {
 public:
  SmtpClient(asio::any_io_executor ex, std::string ehlo_name, ClientTimeouts timeouts,
             smtp::TlsMode tls_mode = smtp::TlsMode::Opportunistic,
             std::shared_ptr<asio::ssl::context> tls_context = nullptr);
  ~SmtpClient();

  // Connect, greeting, EHLO/HELO. Returns the reply that decided: 2xx when the
  // connection is ready; otherwise the greeting/EHLO reply, or a synthesized
  // 4xx ("4.4.1 connection refused" / "4.4.2 timeout") for network errors,
  // "4.7.5" for a failed TLS handshake, "4.7.10" when TLS is required but
  // not offered.
  // `host` is the MX name, for logs and DSNs.
  asio::awaitable<smtp::Reply> open(const asio::ip::tcp::endpoint& ep, std::string host);
  // Before open(): bind the outbound socket to this address (egress_path
  // source_address). A peer of the other address family is not tried
  // (421 4.4.1), so mail never leaves from an address the operator did not pick.
  void set_source_address(const asio::ip::address& a) { source_ = a; }
  // Before open(): log in with these (see the top of this file).
  void set_auth(std::shared_ptr<const spool::RouteAuth> auth) { auth_ = std::move(auth); }
  // Before open(), mode Dane: the usable TLSA records of the MX host (none:
  // every handshake fails, never a weaker one).
  void set_dane(std::vector<dns::TlsaRecord> records) { dane_records_ = std::move(records); }

  // Before open(): `f` sees every reply the server sends (greeting, EHLO,
  // MAIL, RCPT, DATA, end of data, ...) as it is read, with the envelope of
  // the transaction it belongs to (null outside send()). Traffic shaping
  // automation (delivery/shaping_replies.cpp) matches its rules there.
  using ReplyObserver = std::function<void(const smtp::Reply&, const spool::Envelope*)>;
  void set_reply_observer(ReplyObserver f) { observer_ = std::move(f); }

  // One transaction for `rcpts` (indexes into env.recipients). `return_path`
  // replaces env.sender in MAIL FROM when set (VERP, feedback/verp.hpp).
  asio::awaitable<TransactionResult> send(const spool::Envelope& env,
                                          const std::vector<std::uint32_t>& rcpts,
                                          const std::string& body,
                                          std::optional<std::string> return_path = std::nullopt);
  // The same with the body from `body` (delivery/body_source.hpp: in memory
  // or streamed from the spool).
  asio::awaitable<TransactionResult> send(const spool::Envelope& env,
                                          const std::vector<std::uint32_t>& rcpts,
                                          const BodySource& body,
                                          std::optional<std::string> return_path = std::nullopt);
  asio::awaitable<void> quit();

  bool usable() const { return usable_; }
  const smtp::EhloCapabilities& capabilities() const { return caps_; }
  const asio::ip::tcp::endpoint& peer() const { return peer_; }
  const std::string& peer_host() const { return host_; }
  // true once STARTTLS succeeded: everything after it went through TLS.
  bool tls() const { return tls_ != nullptr; }
  // Whether the server's certificate verified (chain and MX host name).
  bool tls_verified() const { return tls_verified_; }
  // Why open() failed for TLS policy (None when it did not).
  TlsFailure tls_failure() const { return tls_failure_; }
  // After a TLS handshake that was not required to verify: what was wrong
  // with the certificate (None: it verified), for reports.
  TlsFailure certificate_failure() const { return certificate_failure_; }
  // true once the server accepted our AUTH (235).
  bool authenticated() const { return authenticated_; }

 private:
  std::optional<asio::ip::address> source_;
  ReplyObserver observer_;
  const spool::Envelope* current_env_ = nullptr;
  // One connection attempt of open(); `starttls`: try STARTTLS if offered.
  asio::awaitable<smtp::Reply> connect_once(bool starttls, bool& handshake_failed);
  asio::awaitable<smtp::Reply> ehlo();
  asio::awaitable<smtp::Reply> start_tls(const smtp::Reply& hello, bool& handshake_failed);
  // The AUTH exchange: 235, or the 4xx open() returns.
  asio::awaitable<smtp::Reply> authenticate();
  void reset_connection();
  // The DATA content (dot-stuffed, without the final dot): false when the
  // connection broke or (`spool_error`) a streamed chunk could not be read.
  asio::awaitable<bool> send_content(const BodySource& body, smtp::DotStuffer& stuffer,
                                     bool& spool_error);
  // `content` dot-stuffed, written in kWriteChunk pieces (false: connection lost).
  asio::awaitable<bool> write_stuffed(std::string_view content, smtp::DotStuffer& stuffer);
  asio::awaitable<smtp::Reply> read_reply(std::chrono::milliseconds timeout);
  asio::awaitable<bool> write(const std::string& data, std::chrono::milliseconds timeout);
  asio::awaitable<smtp::Reply> command(const std::string& line, std::chrono::milliseconds timeout);
  smtp::Reply broken(const char* what) const;
  std::string mail_command(const spool::Envelope& env, const std::string& sender) const;
  // The mode does not allow mail without TLS / needs the certificate verified.
  bool tls_mandatory() const;
  bool tls_authenticated() const;
  std::string rcpt_command(const spool::EnvelopeRecipient& r) const;

  asio::ip::tcp::socket socket_;
  net::SocketDeadline deadline_;
  smtp::TlsMode tls_mode_;
  std::shared_ptr<asio::ssl::context> tls_context_;
  // Set once STARTTLS succeeded; layered on socket_ (declared after it, so
  // destroyed first). The deadline cancels socket_, which aborts its ops.
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  bool tls_verified_ = false;
  TlsFailure tls_failure_ = TlsFailure::None;
  TlsFailure certificate_failure_ = TlsFailure::None;
  std::shared_ptr<const spool::RouteAuth> auth_;
  bool authenticated_ = false;
  std::vector<dns::TlsaRecord> dane_records_;
  std::string ehlo_name_;
  ClientTimeouts timeouts_;
  asio::ip::tcp::endpoint peer_;
  std::string host_;
  smtp::EhloCapabilities caps_;
  smtp::ReplyParser parser_;
  std::string in_;
  std::size_t in_pos_ = 0;
  bool usable_ = false;
};

}  // namespace mailgate::delivery
