// adminclient/http_client: see http_client.hpp.
#include "adminclient/http_client.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

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

// ---- https

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out.empty() ? "unknown error" : out;
}

// OpenSSL writes to the socket with write(), which raises SIGPIPE when the
// server has closed: held off on this thread for the request (a SIGPIPE it
// caused is consumed, not delivered later).
class SigpipeHeld {
 public:
  SigpipeHeld() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~SigpipeHeld() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const timespec now{0, 0};
      sigtimedwait(&pipe, nullptr, &now);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeHeld(const SigpipeHeld&) = delete;
  SigpipeHeld& operator=(const SigpipeHeld&) = delete;

 private:
  sigset_t old_;
  bool was_pending_ = false;
};

struct SslFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  void operator()(SSL* s) const { SSL_free(s); }
};

// TLS over the connected non-blocking socket: the handshake in the
// constructor, then whole writes and partial reads, each wait bounded.
class TlsChannel {
 public:
  TlsChannel(int fd, const Url& url, const HttpOptions& options)
      : fd_(fd), timeout_(options.timeout) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    if (!ctx_) throw HttpError(HttpError::Kind::Tls, "cannot set up TLS: " + openssl_errors());
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION);
    // The response has a length: a close without close_notify is an end.
    SSL_CTX_set_options(ctx_.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
    if (!options.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx_.get(), options.ca_file.c_str(), nullptr) != 1)
        throw HttpError(HttpError::Kind::Tls,
                        "cannot read the CA file " + options.ca_file + ": " + openssl_errors());
    } else {
      SSL_CTX_set_default_verify_paths(ctx_.get());
    }
    ssl_.reset(SSL_new(ctx_.get()));
    if (!ssl_ || SSL_set_fd(ssl_.get(), fd) != 1)
      throw HttpError(HttpError::Kind::Tls, "cannot set up TLS: " + openssl_errors());
    if (url.ipv6_literal() || inet_literal(url.host)) {
      // An address: the certificate must name it (subjectAltName IP).
      const std::string ip = url.host.substr(0, url.host.find('%'));
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), ip.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_.get(), url.host.c_str());
      SSL_set1_host(ssl_.get(), url.host.c_str());
    }
    try {
      run([this] { return SSL_connect(ssl_.get()); }, "the TLS handshake");
    } catch (const HttpError& e) {
      const long verify = SSL_get_verify_result(ssl_.get());
      if (verify != X509_V_OK)
        throw HttpError(HttpError::Kind::Tls,
                        std::string("the server's certificate is not trusted: ") +
                            X509_verify_cert_error_string(verify));
      if (e.kind() == HttpError::Kind::Timeout) throw;
      throw HttpError(HttpError::Kind::Tls, e.what());
    }
  }

  // "" or why the server stopped reading (see send_all).
  std::string write_all(std::string_view data) {
    while (!data.empty()) {
      int n = 0;
      try {
        n = run([&] { return SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size())); },
                "sending the request");
      } catch (const HttpError& e) {
        if (e.kind() == HttpError::Kind::Io) return e.what();
        throw;
      }
      if (n == 0) return "sending the request: the server closed the connection";
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
  }

  // Bytes read, 0 at the end of the stream.
  std::size_t read_some(char* data, std::size_t size) {
    return static_cast<std::size_t>(
        run([&] { return SSL_read(ssl_.get(), data, static_cast<int>(size)); },
            "reading the response"));
  }

 private:
  static bool inet_literal(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1;
  }

  // One SSL call to completion: its result (> 0), or 0 when the server
  // closed the connection; waits as OpenSSL asks, at most the timeout each.
  template <typename Call>
  int run(Call call, const char* what) {
    while (true) {
      ERR_clear_error();
      errno = 0;
      const int n = call();
      if (n > 0) return n;
      const int error = SSL_get_error(ssl_.get(), n);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (!wait_ready(fd_, error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, timeout_))
          throw HttpError(HttpError::Kind::Timeout,
                          std::string(what) + " timed out after " + seconds_text(timeout_));
        continue;
      }
      if (error == SSL_ERROR_ZERO_RETURN) return 0;
      if (error == SSL_ERROR_SYSCALL && errno == EINTR) continue;
      if (error == SSL_ERROR_SYSCALL) {
        throw HttpError(HttpError::Kind::Io,
                        std::string(what) + ": " +
                            (errno != 0 ? strerror(errno) : "the server closed the connection"));
      }
      throw HttpError(HttpError::Kind::Io, std::string(what) + ": " + openssl_errors());
    }
  }

  int fd_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<SSL_CTX, SslFree> ctx_;
  std::unique_ptr<SSL, SslFree> ssl_;
};

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
  std::optional<SigpipeHeld> sigpipe;
  std::optional<TlsChannel> tls;
  if (url.tls) {
    sigpipe.emplace();
    tls.emplace(fd.get(), url, options);
  }
  const std::string send_error =
      tls ? tls->write_all(wire) : send_all(fd.get(), wire, options.timeout);

  ResponseParser parser(options.max_response, request.method == "HEAD");
  std::string chunk(64 * 1024, '\0');
  while (parser.status() == ResponseParser::Status::NeedMore) {
    if (tls) {
      std::size_t n = 0;
      try {
        n = tls->read_some(chunk.data(), chunk.size());
      } catch (const HttpError& e) {
        if (e.kind() == HttpError::Kind::Io && !send_error.empty())
          throw HttpError(HttpError::Kind::Io, send_error);
        throw;
      }
      if (n > 0) {
        parser.feed(std::string_view(chunk.data(), n));
      } else {
        parser.finish();
      }
      continue;
    }
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
