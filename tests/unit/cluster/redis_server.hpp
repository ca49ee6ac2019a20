// tests/unit/cluster/redis_server: a real redis-server for the cluster
// tests, on a free loopback port, with no persistence; stopped by its PID
// (SIGKILL, reaped) when the object goes, whatever the test did, and by the
// kernel if the test process dies first. pause()
// and resume() send SIGSTOP/SIGCONT (a stalled server, not a dead one);
// kill() and start() take it down and bring a fresh one up on the same port.
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mailgate::testing {

inline std::uint16_t free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class RedisServer {
 public:
  RedisServer() : port_(free_loopback_port()) { start(); }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  void kill() { stop(); }
  void start() {
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // A test process that crashes (an ASan report aborts it) takes its
      // redis-server with it instead of leaving it running.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int devnull = ::open("/dev/null", O_WRONLY);  // its start-up banner and warnings
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      const auto port = std::to_string(port_);
      ::execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!ping()) {
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("redis-server did not start (is it installed? scripts/setup)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // The same with arguments sent as they are (binary, huge).
  std::string run_args(const std::vector<std::string>& args) {
    timeval tv{2, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    std::string out = "(no connection)";
    if (c && !c->err) {
      std::vector<const char*> argv;
      std::vector<std::size_t> lens;
      for (const auto& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      auto* r = static_cast<redisReply*>(
          redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
      if (r) {
        out = r->str ? std::string(r->str, r->len) : std::to_string(r->integer);
        freeReplyObject(r);
      }
    }
    if (c) redisFree(c);
    return out;
  }

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

  // A blocking command from the test thread (hiredis' sync API).
  std::string run(const char* cmd) {
    timeval tv{2, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    std::string out = "(no connection)";
    if (c && !c->err) {
      auto* r = static_cast<redisReply*>(redisCommand(c, cmd));
      if (r) {
        out = r->str ? std::string(r->str, r->len) : std::to_string(r->integer);
        freeReplyObject(r);
      }
    }
    if (c) redisFree(c);
    return out;
  }

 private:
  bool ping() { return run("PING") == "PONG"; }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace mailgate::testing
