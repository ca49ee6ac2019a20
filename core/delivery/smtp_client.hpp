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
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "net/socket_deadline.hpp"
#include "smtp/ehlo_capabilities.hpp"
#include "smtp/reply.hpp"
#include "smtp/reply_parser.hpp"
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

struct TransactionResult {
  // One reply per recipient asked for, in the same order: 2xx = delivered,
  // 4xx = try again later, 5xx = failed for good.
  std::vector<smtp::Reply> recipients;
};

class SmtpClient {
 public:
  SmtpClient(asio::any_io_executor ex, std::string ehlo_name, ClientTimeouts timeouts);
  ~SmtpClient();

  // Connect, greeting, EHLO/HELO. Returns the reply that decided: 2xx when the
  // connection is ready; otherwise the greeting/EHLO reply, or a synthesized
  // 4xx ("4.4.1 connection refused" / "4.4.2 timeout") for network errors.
  // `host` is the MX name, for logs and DSNs.
  asio::awaitable<smtp::Reply> open(const asio::ip::tcp::endpoint& ep, std::string host);

  // One transaction for `rcpts` (indexes into env.recipients).
  asio::awaitable<TransactionResult> send(const spool::Envelope& env,
                                          const std::vector<std::uint32_t>& rcpts,
                                          const std::string& body);
  asio::awaitable<void> quit();

  bool usable() const { return usable_; }
  const smtp::EhloCapabilities& capabilities() const { return caps_; }
  const asio::ip::tcp::endpoint& peer() const { return peer_; }
  const std::string& peer_host() const { return host_; }

 private:
  asio::awaitable<smtp::Reply> read_reply(std::chrono::milliseconds timeout);
  asio::awaitable<bool> write(const std::string& data, std::chrono::milliseconds timeout);
  asio::awaitable<smtp::Reply> command(const std::string& line, std::chrono::milliseconds timeout);
  smtp::Reply broken(const char* what) const;
  std::string mail_command(const spool::Envelope& env) const;
  std::string rcpt_command(const spool::EnvelopeRecipient& r) const;

  asio::ip::tcp::socket socket_;
  net::SocketDeadline deadline_;
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
