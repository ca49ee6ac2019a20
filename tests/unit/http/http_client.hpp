// Test helper: a minimal HTTP/1.1 client over a raw socket to 127.0.0.1, so
// the tests control every byte sent (bad methods, chunked bodies, missing or
// wrong Authorization headers, several requests on one connection). Every
// read waits with a deadline; a failure is an exception, never a hang.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::http::testing {

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class Connection {
 public:
  explicit Connection(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (fd_ >= 0) ::close(fd_);
      throw std::runtime_error("test client: cannot connect to port " + std::to_string(port));
    }
  }
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("test client: send failed");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Reads one response (head + Content-Length body, or up to EOF without
  // one); `head_only` for the answer to a HEAD request, which has no body.
  Reply read_reply(std::chrono::milliseconds limit = std::chrono::seconds(20),
                   bool head_only = false) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    std::size_t head_end;
    while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) throw std::runtime_error("test client: no complete head: " + buf_);
    Reply r;
    const std::string head = buf_.substr(0, head_end);
    std::size_t pos = head.find("\r\n");
    const std::string status_line = head.substr(0, pos);
    if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
      throw std::runtime_error("test client: bad status line: " + status_line);
    r.status = std::stoi(status_line.substr(9, 3));
    while (pos != std::string::npos && pos < head.size()) {
      const std::size_t next = head.find("\r\n", pos + 2);
      const std::string line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      pos = next;
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    buf_.erase(0, head_end + 4);
    if (head_only) return r;
    if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
      const std::size_t length = std::stoul(it->second);
      while (buf_.size() < length)
        if (!fill(deadline)) throw std::runtime_error("test client: body cut short");
      r.body = buf_.substr(0, length);
      buf_.erase(0, length);
    } else {
      while (fill(deadline)) {
      }
      r.body = std::move(buf_);
      buf_.clear();
    }
    return r;
  }

  // True when the server closed the connection (EOF or reset) before `limit`.
  bool closed_by_peer(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char b[4096];
      const ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n <= 0) return true;
      buf_.append(b, static_cast<std::size_t>(n));
    }
    return false;
  }
  const std::string& unread() const { return buf_; }

 private:
  // Appends what arrives; false on EOF, error or deadline.
  bool fill(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
      if (ready < 0) return false;
      if (ready == 0) continue;
      char b[16384];
      const ssize_t n = ::recv(fd_, b, sizeof b, 0);
      if (n <= 0) return false;
      buf_.append(b, static_cast<std::size_t>(n));
      return true;
    }
  }

  int fd_ = -1;
  std::string buf_;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// "METHOD target HTTP/1.1" with Host, the extra headers, Content-Length when
// there is a body, and Connection: close.
inline std::string format_request(const std::string& method, const std::string& target,
                                  const std::string& body = "", const Headers& headers = {}) {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [k, v] : headers) r += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n";
  return r + body;
}

// One request on a fresh connection.
inline Reply request(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::string& body = "", const Headers& headers = {}) {
  Connection c(port);
  c.send(format_request(method, target, body, headers));
  return c.read_reply();
}

}  // namespace mailgate::http::testing
