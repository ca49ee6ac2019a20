// Test helper: an in-process fake remote SMTP server on 127.0.0.1 (a port the
// kernel picks). Plain blocking sockets on its own threads (one accepting,
// one per connection), so it never shares an io_context with the code under
// test. It speaks enough SMTP for the delivery client: 220, EHLO/HELO (with
// the extensions a test asks for), MAIL, RCPT (scripted replies per address),
// DATA (dot-unstuffed, recorded), RSET, NOOP, QUIT, and AUTH PLAIN / LOGIN
// against one user when a test gives it (offer it with "AUTH PLAIN LOGIN").
// Promises: every blocking call has a timeout (the stop flag is checked at
// least every 50 ms); the destructor stops and joins every thread; waits
// take a deadline and return false when it passes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "text/base64.hpp"

namespace mailgate::delivery::testing {

class FakeSmtpServer {
 public:
  struct Transaction {
    std::string mail_from;           // the MAIL command's argument line, as sent
    std::vector<std::string> rcpts;  // accepted recipients (addresses without <>)
    std::vector<std::string> refused;
    std::string data;  // unstuffed, CRLF line ends, without the final dot line
    std::string auth;  // the user the session logged in as ("" none)
  };

  // `extensions`: EHLO keywords to offer ("8BITMIME", "DSN", "PIPELINING", ...).
  explicit FakeSmtpServer(std::vector<std::string> extensions = {"8BITMIME"})
      : extensions_(std::move(extensions)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0)
      throw std::runtime_error("bind/listen failed");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FakeSmtpServer() {
    stop_ = true;
    acceptor_.join();
    std::vector<std::thread> sessions;
    {
      std::lock_guard lk(mu_);
      sessions.swap(sessions_);
    }
    for (auto& t : sessions) t.join();
    ::close(listen_fd_);
  }
  FakeSmtpServer(const FakeSmtpServer&) = delete;
  FakeSmtpServer& operator=(const FakeSmtpServer&) = delete;

  std::uint16_t port() const { return port_; }

  // The replies RCPT TO:<address> gets, one per attempt, in order; once they
  // are used up (or for an address without a script): "250 2.1.5 ok".
  void script_rcpt(const std::string& address, std::vector<std::string> replies) {
    std::lock_guard lk(mu_);
    auto& q = scripts_[address];
    for (auto& r : replies) q.push_back(std::move(r));
  }

  // AUTH succeeds for exactly these credentials; otherwise it answers
  // `refusal` (where "{}" is replaced by the base64 line the client sent, to
  // play a server that echoes it).
  void accept_login(std::string user, std::string password,
                    std::string refusal = "535 5.7.8 authentication credentials invalid") {
    std::lock_guard lk(mu_);
    auth_user_ = std::move(user);
    auth_password_ = std::move(password);
    auth_refusal_ = std::move(refusal);
  }

  // Waits until `n` transactions have been completed (DATA accepted).
  bool wait_transactions(std::size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, deadline, [&] { return transactions_.size() >= n; });
  }
  // Waits until `pred(commands so far)` holds.
  bool wait_commands(const std::function<bool(const std::vector<std::string>&)>& pred,
                     std::chrono::milliseconds deadline) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, deadline, [&] { return pred(commands_); });
  }
  std::vector<Transaction> transactions() {
    std::lock_guard lk(mu_);
    return transactions_;
  }
  std::vector<std::string> commands() {  // every command line received, in order
    std::lock_guard lk(mu_);
    return commands_;
  }
  std::size_t connections() {
    std::lock_guard lk(mu_);
    return connections_;
  }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lk(mu_);
      ++connections_;
      sessions_.emplace_back([this, fd] {
        session(fd);
        ::close(fd);
      });
    }
  }

  // One line without its CRLF; false on EOF, error or stop.
  bool read_line(int fd, std::string& buf, std::string& line) {
    for (;;) {
      const auto eol = buf.find("\r\n");
      if (eol != std::string::npos) {
        line = buf.substr(0, eol);
        buf.erase(0, eol + 2);
        return true;
      }
      if (stop_) return false;
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, 50);
      if (r == 0) continue;
      if (r < 0) return false;
      char chunk[4096];
      const auto n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buf.append(chunk, static_cast<std::size_t>(n));
    }
  }

  static void send_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      const auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<std::size_t>(n);
    }
  }

  static std::string upper_verb(const std::string& line) {
    std::string v = line.substr(0, line.find(' '));
    for (auto& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return v;
  }

  static std::string address_of(const std::string& line) {
    const auto open = line.find('<');
    const auto close = line.find('>', open == std::string::npos ? 0 : open);
    if (open == std::string::npos || close == std::string::npos) return {};
    return line.substr(open + 1, close - open - 1);
  }

  std::string rcpt_reply(const std::string& address) {
    std::lock_guard lk(mu_);
    auto it = scripts_.find(address);
    if (it == scripts_.end() || it->second.empty()) return "250 2.1.5 ok";
    auto r = std::move(it->second.front());
    it->second.pop_front();
    return r;
  }

  void note(const std::string& line) {
    std::lock_guard lk(mu_);
    commands_.push_back(line);
    cv_.notify_all();
  }

  // One AUTH exchange; the user logged in as, or "".
  std::string authenticate(int fd, std::string& buf, const std::string& line) {
    std::string rest = line.size() > 5 ? line.substr(5) : "";
    const auto space = rest.find(' ');
    std::string mechanism = upper_verb(rest);
    std::string ir = space == std::string::npos ? "" : rest.substr(space + 1);
    std::string user, password, last;
    std::string reply_line;
    if (mechanism == "PLAIN") {
      if (ir.empty()) {
        send_all(fd, "334 \r\n");
        if (!read_line(fd, buf, ir)) return {};
        note(ir);
      }
      last = ir;
      const auto decoded = text::base64_decode(ir).value_or("");
      const auto nul1 = decoded.find('\0');
      const auto nul2 = nul1 == std::string::npos ? nul1 : decoded.find('\0', nul1 + 1);
      if (nul2 != std::string::npos) {
        user = decoded.substr(nul1 + 1, nul2 - nul1 - 1);
        password = decoded.substr(nul2 + 1);
      }
    } else if (mechanism == "LOGIN") {
      std::string u, p;
      send_all(fd, "334 VXNlcm5hbWU6\r\n");
      if (!read_line(fd, buf, u)) return {};
      note(u);
      send_all(fd, "334 UGFzc3dvcmQ6\r\n");
      if (!read_line(fd, buf, p)) return {};
      note(p);
      last = p;
      user = text::base64_decode(u).value_or("");
      password = text::base64_decode(p).value_or("");
    } else {
      send_all(fd, "504 5.5.4 unrecognized authentication type\r\n");
      return {};
    }
    std::string refusal;
    bool ok = false;
    {
      std::lock_guard lk(mu_);
      ok = !auth_user_.empty() && user == auth_user_ && password == auth_password_;
      refusal = auth_refusal_;
    }
    if (ok) {
      send_all(fd, "235 2.7.0 authentication successful\r\n");
      return user;
    }
    if (const auto at = refusal.find("{}"); at != std::string::npos) refusal.replace(at, 2, last);
    send_all(fd, refusal + "\r\n");
    return {};
  }

  void session(int fd) {
    std::string buf, line;
    send_all(fd, "220 fake.test ESMTP\r\n");
    Transaction tx;
    std::string authed;
    while (read_line(fd, buf, line)) {
      note(line);
      const auto verb = upper_verb(line);
      if (verb == "AUTH") {
        authed = authenticate(fd, buf, line);
        continue;
      }
      if (verb == "EHLO") {
        std::string out = "250";
        out += extensions_.empty() ? " " : "-";
        out += "fake.test\r\n";
        for (std::size_t i = 0; i < extensions_.size(); ++i)
          out += (i + 1 == extensions_.size() ? "250 " : "250-") + extensions_[i] + "\r\n";
        send_all(fd, out);
      } else if (verb == "HELO") {
        send_all(fd, "250 fake.test\r\n");
      } else if (verb == "MAIL") {
        tx = Transaction{};
        tx.mail_from = line.substr(5);
        tx.auth = authed;
        send_all(fd, "250 2.1.0 ok\r\n");
      } else if (verb == "RCPT") {
        const auto address = address_of(line);
        const auto reply = rcpt_reply(address);
        (reply[0] == '2' ? tx.rcpts : tx.refused).push_back(address);
        send_all(fd, reply + "\r\n");
      } else if (verb == "DATA") {
        if (tx.rcpts.empty()) {
          send_all(fd, "554 5.5.1 no valid recipients\r\n");
          continue;
        }
        send_all(fd, "354 go ahead\r\n");
        bool ended = false;
        while (read_line(fd, buf, line)) {
          if (line == ".") {
            ended = true;
            break;
          }
          tx.data += (line.starts_with(".") ? line.substr(1) : line) + "\r\n";
        }
        if (!ended) return;
        {
          std::lock_guard lk(mu_);
          transactions_.push_back(tx);
          cv_.notify_all();
        }
        send_all(fd, "250 2.0.0 queued\r\n");
        tx = Transaction{};
      } else if (verb == "RSET") {
        tx = Transaction{};
        send_all(fd, "250 2.0.0 ok\r\n");
      } else if (verb == "NOOP") {
        send_all(fd, "250 2.0.0 ok\r\n");
      } else if (verb == "QUIT") {
        send_all(fd, "221 2.0.0 bye\r\n");
        return;
      } else {
        send_all(fd, "500 5.5.2 unknown command\r\n");
      }
    }
  }

  std::vector<std::string> extensions_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> sessions_;
  std::map<std::string, std::deque<std::string>> scripts_;
  std::vector<Transaction> transactions_;
  std::vector<std::string> commands_;
  std::size_t connections_ = 0;
  std::string auth_user_, auth_password_, auth_refusal_;
};

}  // namespace mailgate::delivery::testing
