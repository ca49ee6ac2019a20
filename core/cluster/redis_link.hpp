// cluster/redis_link: one asynchronous Redis connection driven by an Asio
// io_context (hiredis 0.14's async API through an adapter: its
// addRead/delRead/addWrite/delWrite/cleanup hooks wait on the socket with a
// posix::stream_descriptor). Used from its io_context's thread only.
// Promises:
// - Never blocks: connecting, writing and reading are all event driven.
// - Every call ends exactly once with a reply or an error, and at most
//   `timeout` after it was made (hiredis 0.14 has no timeouts: a timer per
//   call answers "timeout"; a late reply is then dropped).
// - Bounded: at most `max_in_flight` calls wait for a reply; beyond that a
//   call fails at once ("too many calls in flight"), never queues.
// - Reconnects lazily: a call made while disconnected opens a connection.
//   reset() drops the connection and fails every call still waiting (used
//   when Redis is declared down, so a stalled server holds nothing).
// - eval() runs a Lua script by EVALSHA, sending the script once with EVAL
//   only when the server answers NOSCRIPT (first use, or after a restart).
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;
struct redisReply;

namespace mailgate::cluster {

class RedisLink {
 public:
  // `reply` is valid only during the callback; null when `error` is set
  // (timeout, connection lost, refused). A Redis error reply ("-ERR ...")
  // is a reply of type REDIS_REPLY_ERROR, not an `error`.
  using Callback = std::function<void(const redisReply* reply, std::string_view error)>;

  RedisLink(asio::io_context& ctx, std::string host, std::uint16_t port,
            std::chrono::milliseconds timeout, std::size_t max_in_flight = 4096);
  // Ends the calls still waiting without calling them back: their owners
  // are going away with the link (a failure posted now would run after
  // them). reset() or stop the owner first to have the calls fail.
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void command(std::vector<std::string> args, Callback cb);
  // EVALSHA `script` (its SHA-1 computed here) with KEYS and ARGV.
  void eval(const std::string& script, std::vector<std::string> keys, std::vector<std::string> args,
            Callback cb);
  void reset();

  bool connected() const { return ac_ != nullptr; }
  std::size_t in_flight() const { return in_flight_; }

 private:
  struct Call;
  struct Watch;
  bool ensure_connected(std::string& error);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);

  asio::io_context& ctx_;
  std::string host_;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::size_t max_in_flight_;
  std::size_t in_flight_ = 0;
  redisAsyncContext* ac_ = nullptr;
  // False once the link is destroyed: answers already posted are dropped.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The lowercase hex SHA-1 of a script (the EVALSHA name).
std::string script_sha1(std::string_view script);

// Reading replies (Redis's data is not trusted: any shape is read safely).
// A string or status reply's bytes ("" for any other type or null).
std::string_view reply_text(const redisReply* r);
// The leading decimal digits of `s` ("1733371200123.0" -> 1733371200123;
// 0 if none); at most 18 are read, so no input overflows.
std::int64_t leading_number(std::string_view s);
// An integer reply's value, else leading_number() of its text.
std::int64_t reply_number(const redisReply* r);

}  // namespace mailgate::cluster
