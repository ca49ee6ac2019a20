// adminclient/http_client: see http_client.hpp.
#include "adminclient/http_client.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace mailgate::adminclient {
namespace {

using Clock = std::chrono::steady_clock;

bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string seconds_text(std::chrono::milliseconds t) {
  const auto ms = t.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// Waits until `fd` is ready for `events`; false on timeout. EINTR restarts
// with the remaining time.
bool wait_ready(int fd, short events, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (n > 0) return true;  // readiness or an error/hangup condition the next call reports
    if (n == 0) return false;
    if (errno != EINTR)
      throw HttpError(HttpError::Kind::Io, std::string("poll: ") + strerror(errno));
  }
}

Fd connect_one(const addrinfo& ai, std::chrono::milliseconds timeout, std::string& error) {
  Fd fd(::socket(ai.ai_family, ai.ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai.ai_protocol));
  if (fd.get() < 0) {
    error = strerror(errno);
    return Fd(-1);
  }
  if (::connect(fd.get(), ai.ai_addr, ai.ai_addrlen) == 0) return fd;
  if (errno != EINPROGRESS) {
    error = strerror(errno);
    return Fd(-1);
  }
  if (!wait_ready(fd.get(), POLLOUT, timeout)) {
    error = "connection timed out after " + seconds_text(timeout);
    return Fd(-1);
  }
  int so_error = 0;
  socklen_t len = sizeof so_error;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) so_error = errno;
  if (so_error != 0) {
    error = strerror(so_error);
    return Fd(-1);
  }
  return fd;
}

Fd connect_to(const Url& url, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags =
      AI_NUMERICSERV;  // no AI_ADDRCONFIG: it hides 127.0.0.1 on a host with only loopback
  if (url.ipv6_literal()) hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const auto port = std::to_string(url.port);
  if (int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    throw HttpError(HttpError::Kind::Resolve,
                    "cannot resolve " + url.host + ": " +
                        (rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc)));
  }
  std::string error = "no address";
  bool timed_out = false;
  for (auto* ai = res; ai; ai = ai->ai_next) {
    Fd fd = connect_one(*ai, timeout, error);
    if (fd.get() >= 0) {
      ::freeaddrinfo(res);
      return fd;
    }
    timed_out = timed_out || error.starts_with("connection timed out");
  }
  ::freeaddrinfo(res);
  for (auto& c : error) c = c == '\n' ? ' ' : c;
  if (!error.empty()) error[0] = static_cast<char>(std::tolower(error[0]));
  throw HttpError(timed_out ? HttpError::Kind::Timeout : HttpError::Kind::Connect, error);
}

// Sends `data`; a reset or closed connection is returned as the error text
// instead of thrown, so that a response the server sent before closing
// (say, a 413) can still be read.
std::string send_all(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(fd, POLLOUT, timeout))
        throw HttpError(HttpError::Kind::Timeout,
                        "sending the request timed out after " + seconds_text(timeout));
      continue;
    }
    const int err = n < 0 ? errno : EPIPE;
    const std::string what = std::string("sending the request: ") + strerror(err);
    if (err == EPIPE || err == ECONNRESET) return what;
    throw HttpError(HttpError::Kind::Io, what);
  }
  return {};
}

}  // namespace

std::string format_request(const Url& url, const HttpRequest& request) {
  if (request.method.empty() || has_control(request.method) ||
      request.method.find(' ') != std::string::npos)
    throw std::invalid_argument("bad HTTP method");
  if (request.target.empty() || request.target.front() != '/' || has_control(request.target) ||
      request.target.find(' ') != std::string::npos)
    throw std::invalid_argument("bad HTTP request target");
  std::string out = request.method + " " + url.base_path + request.target + " HTTP/1.1\r\n";
  out += "Host: " + url.authority() + "\r\n";
  for (const auto& [name, value] : request.headers) {
    if (name.empty() || has_control(name) || has_control(value) ||
        name.find_first_of(" :") != std::string::npos)
      throw std::invalid_argument("bad HTTP header '" + name + "'");
    out += name + ": " + value + "\r\n";
  }
  const bool wants_length = !request.body.empty() || request.method == "POST" ||
                            request.method == "PUT" || request.method == "PATCH" ||
                            request.method == "DELETE";
  if (wants_length) out += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += request.body;
  return out;
}

HttpResponse http_request(const Url& url, const HttpRequest& request, const HttpOptions& options) {
  const std::string wire = format_request(url, request);
  Fd fd = connect_to(url, options.timeout);
  const std::string send_error = send_all(fd.get(), wire, options.timeout);

  ResponseParser parser(options.max_response, request.method == "HEAD");
  std::string chunk(64 * 1024, '\0');
  while (parser.status() == ResponseParser::Status::NeedMore) {
    const ssize_t n = ::recv(fd.get(), chunk.data(), chunk.size(), 0);
    if (n > 0) {
      parser.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    } else if (n == 0) {
      parser.finish();
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_ready(fd.get(), POLLIN, options.timeout))
        throw HttpError(HttpError::Kind::Timeout,
                        "no response within " + seconds_text(options.timeout));
    } else if (!send_error.empty()) {
      throw HttpError(HttpError::Kind::Io, send_error);
    } else {
      throw HttpError(HttpError::Kind::Io, std::string("reading the response: ") + strerror(errno));
    }
  }
  if (parser.status() == ResponseParser::Status::Error) {
    if (!send_error.empty()) throw HttpError(HttpError::Kind::Io, send_error);
    throw HttpError(HttpError::Kind::Protocol, parser.error());
  }
  return std::move(parser.response());
}

}  // namespace mailgate::adminclient
