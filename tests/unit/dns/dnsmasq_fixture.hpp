// Test helpers for the resolver: a real dnsmasq on 127.0.0.1 serving the
// given records under "test." (everything else under test. is NXDOMAIN,
// names outside it are REFUSED), and a UDP "server" that never answers.
// Dnsmasq picks a port free for UDP and TCP (bind port 0, close, retry with
// another port if dnsmasq still fails to bind), runs in the foreground (-d)
// as our child (killed by the kernel if the test process dies), and is ready
// when it answers a raw DNS query — polled with a deadline, never a fixed
// sleep. The destructor stops it by PID (SIGTERM, then SIGKILL) and reaps it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mailgate::dns::testing {

// A socket bound to 127.0.0.1:port (port 0: any); closed on destruction.
class BoundSocket {
 public:
  BoundSocket(int type, std::uint16_t port) {
    fd_ = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~BoundSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  BoundSocket(const BoundSocket&) = delete;
  BoundSocket& operator=(const BoundSocket&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// A port on 127.0.0.1 that was free for both UDP and TCP a moment ago.
inline std::uint16_t free_port() {
  for (int i = 0; i < 50; ++i) {
    BoundSocket udp(SOCK_DGRAM, 0);
    if (!udp.ok()) continue;
    BoundSocket tcp(SOCK_STREAM, udp.port());
    if (tcp.ok()) return udp.port();
  }
  throw std::runtime_error("no free port on 127.0.0.1");
}

// Receives queries on a UDP port and never answers (a server that times out).
class SilentServer {
 public:
  SilentServer() : sock_(SOCK_DGRAM, 0) {
    if (!sock_.ok()) throw std::runtime_error("cannot bind a UDP socket");
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(sock_.port()); }

 private:
  BoundSocket sock_;
};

// Sends one A query for `name` to 127.0.0.1:port; true if any answer with
// our id arrives within `wait`.
inline bool dns_answers(std::uint16_t port, const std::string& name,
                        std::chrono::milliseconds wait) {
  BoundSocket s(SOCK_DGRAM, 0);
  if (!s.ok()) return false;
  std::string q = {'\x4d', '\x47', '\x01', '\x00', 0, 1, 0, 0, 0, 0, 0, 0};
  std::size_t start = 0;
  while (start <= name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<char>(dot - start));
    q.append(name, start, dot - start);
    start = dot + 1;
  }
  static const char tail[] = {0, 0, 1, 0, 1};  // root label, type A, class IN
  q.append(tail, sizeof tail);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(port);
  if (::sendto(s.fd(), q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0)
    return false;
  pollfd p{s.fd(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) != 1) return false;
  char buf[512];
  auto n = ::recv(s.fd(), buf, sizeof buf, 0);
  return n >= 12 && buf[0] == '\x4d' && buf[1] == '\x47';
}

class Dnsmasq {
 public:
  static constexpr const char* kBinary = "/usr/sbin/dnsmasq";

  // `records`: dnsmasq options such as "--mx-host=a.test,mx.a.test,10".
  // Throws std::runtime_error when dnsmasq cannot be started.
  explicit Dnsmasq(std::vector<std::string> records, int ttl = 60) {
    char tmpl[] = "/tmp/mailgate-dnsmasq-XXXXXX";
    int fd = ::mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    ::close(fd);
    log_path_ = tmpl;
    std::string last_log;
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (start(free_port(), records, ttl)) return;
      last_log = read_log();
    }
    ::unlink(log_path_.c_str());
    throw std::runtime_error("dnsmasq did not start; last log:\n" + last_log);
  }
  ~Dnsmasq() {
    stop();
    ::unlink(log_path_.c_str());
  }
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  std::uint16_t port() const { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  std::string read_log() const {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  bool start(std::uint16_t port, const std::vector<std::string>& records, int ttl) {
    std::vector<std::string> args = {kBinary,
                                     "-d",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--bind-interfaces",
                                     "--listen-address=127.0.0.1",
                                     "--port=" + std::to_string(port),
                                     "--local=/test/",
                                     "--local-ttl=" + std::to_string(ttl),
                                     "--pid-file=",
                                     "--host-record=ready.test,127.0.0.99"};
    args.insert(args.end(), records.begin(), records.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {  // child: async-signal-safe calls only
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int log = ::open(log_path_.c_str(), O_WRONLY | O_TRUNC);
      if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
      }
      ::execv(kBinary, argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    port_ = port;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: e.g. port taken
        pid_ = -1;
        return false;
      }
      if (dns_answers(port_, "ready.test", std::chrono::milliseconds(100))) return true;
    }
    stop();
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

  std::string log_path_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace mailgate::dns::testing
