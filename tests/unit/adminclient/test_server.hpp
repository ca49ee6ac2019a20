// Test helper: a tiny real HTTP server on 127.0.0.1:0 in a thread. Each
// connection's request (head + Content-Length body) is recorded and answered
// with the raw bytes the handler returns, then closed; a handler returning
// nullopt holds the connection open without answering until the server
// stops (for timeout tests). One connection at a time; stop() joins.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "adminclient/url.hpp"

namespace mailgate::adminclient::testing {

// "HTTP/1.1 STATUS REASON" with Content-Length and Content-Type.
inline std::string http_response(int status, const std::string& body,
                                 const std::string& type = "application/json") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

class TestServer {
 public:
  using Handler = std::function<std::optional<std::string>(const std::string& request)>;

  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(fd_, 16) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("test server: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~TestServer() { stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  std::uint16_t port() const { return port_; }
  Url url() const { return Url{"127.0.0.1", port_, ""}; }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  // Waits up to 50 ms for `fd`; false when nothing is ready.
  static bool ready(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void loop() {
    while (!stop_) {
      if (!ready(fd_)) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }

  void serve(int c) {
    std::string req;
    std::size_t need = std::string::npos;  // total bytes once the head is known
    char buf[4096];
    while (!stop_ && req.size() != need) {
      if (!ready(c)) continue;
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      req.append(buf, static_cast<std::size_t>(n));
      const auto end = req.find("\r\n\r\n");
      if (need == std::string::npos && end != std::string::npos) {
        std::size_t length = 0;
        std::string lower = req.substr(0, end);
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (auto p = lower.find("\r\ncontent-length:"); p != std::string::npos)
          length = std::stoul(lower.substr(p + 17));
        need = end + 4 + length;
      }
    }
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
    }
    auto answer = handler_(req);
    if (!answer) {
      while (!stop_)  // hold the connection, never answer; done when the client closes
        if (ready(c) && ::recv(c, buf, sizeof buf, 0) <= 0) return;
      return;
    }
    std::string_view rest = *answer;
    while (!rest.empty()) {
      const ssize_t n = ::send(c, rest.data(), rest.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  Handler handler_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
};

// The first line of a recorded request ("GET /path HTTP/1.1").
inline std::string request_line(const std::string& request) {
  return request.substr(0, request.find("\r\n"));
}

// The body of a recorded request.
inline std::string request_body(const std::string& request) {
  const auto end = request.find("\r\n\r\n");
  return end == std::string::npos ? "" : request.substr(end + 4);
}

}  // namespace mailgate::adminclient::testing
