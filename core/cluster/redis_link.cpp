// cluster/redis_link: see redis_link.hpp. The adapter keeps one Watch per
// hiredis context: hiredis says which directions it wants (add/del hooks);
// a wait is armed per wanted direction and re-armed after each event while
// still wanted, as the libevent adapter's persistent events behave.
#include "cluster/redis_link.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

namespace mailgate::cluster {

std::string_view reply_text(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
             ? std::string_view(r->str, r->len)
             : std::string_view();
}

std::int64_t leading_number(std::string_view s) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < s.size() && i < 18 && s[i] >= '0' && s[i] <= '9'; ++i)
    n = n * 10 + (s[i] - '0');
  return n;
}

std::int64_t reply_number(const redisReply* r) {
  if (r && r->type == REDIS_REPLY_INTEGER) return r->integer;
  return leading_number(reply_text(r));  // a zset score may read "1733371200123" or with ".0"
}

std::string script_sha1(std::string_view script) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(script.data()), script.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

// One call: ends once, by its reply (on_reply) or its deadline (timer).
struct RedisLink::Call {
  Call(asio::io_context& ctx, Callback c) : cb(std::move(c)), timer(ctx) {}
  Callback cb;
  asio::steady_timer timer;
  bool done = false;
};

// The socket of one hiredis context, as hiredis asks for it.
struct RedisLink::Watch {
  Watch(asio::io_context& ctx, int fd, redisAsyncContext* c) : sd(ctx, fd), ac(c) {}
  asio::posix::stream_descriptor sd;
  redisAsyncContext* ac;
  bool alive = true;  // false once hiredis cleaned up (the context is gone)
  bool want_read = false, want_write = false;
  bool read_armed = false, write_armed = false;

  static void arm(const std::shared_ptr<Watch>& w, bool read) {
    bool& armed = read ? w->read_armed : w->write_armed;
    if (armed || !w->alive) return;
    armed = true;
    const auto dir =
        read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write;
    w->sd.async_wait(dir, [w, read](std::error_code ec) {
      (read ? w->read_armed : w->write_armed) = false;
      if (ec == asio::error::operation_aborted || !w->alive) return;
      if (!(read ? w->want_read : w->want_write)) return;
      // May free the context (an error, or a disconnect): cleanup() then
      // clears `alive`, and nothing below touches it.
      if (read)
        redisAsyncHandleRead(w->ac);
      else
        redisAsyncHandleWrite(w->ac);
      if (w->alive && (read ? w->want_read : w->want_write)) arm(w, read);
    });
  }
};

RedisLink::RedisLink(asio::io_context& ctx, std::string host, std::uint16_t port,
                     std::chrono::milliseconds timeout, std::size_t max_in_flight)
    : ctx_(ctx),
      host_(std::move(host)),
      port_(port),
      timeout_(timeout),
      max_in_flight_(max_in_flight) {}

RedisLink::~RedisLink() {
  *alive_ = false;
  reset();
}

void RedisLink::reset() {
  if (!ac_) return;
  auto* ac = ac_;
  ac_ = nullptr;  // no new call goes to a context being freed
  // Fails every call still waiting (on_reply with no reply), then cleans up
  // the watch; deferred by hiredis to the end of its callback when inside one.
  redisAsyncFree(ac);
}

bool RedisLink::ensure_connected(std::string& error) {
  if (ac_) return true;
  redisAsyncContext* ac = redisAsyncConnect(host_.c_str(), port_);
  if (!ac) {
    error = "cannot allocate a Redis context";
    return false;
  }
  if (ac->err) {
    error = ac->errstr;
    redisAsyncFree(ac);
    return false;
  }
  ac->data = this;
  auto* holder = new std::shared_ptr<Watch>(std::make_shared<Watch>(ctx_, ac->c.fd, ac));
  ac->ev.data = holder;
  ac->ev.addRead = [](void* p) {
    auto& w = *static_cast<std::shared_ptr<Watch>*>(p);
    w->want_read = true;
    Watch::arm(w, true);
  };
  ac->ev.delRead = [](void* p) { (*static_cast<std::shared_ptr<Watch>*>(p))->want_read = false; };
  ac->ev.addWrite = [](void* p) {
    auto& w = *static_cast<std::shared_ptr<Watch>*>(p);
    w->want_write = true;
    Watch::arm(w, false);
  };
  ac->ev.delWrite = [](void* p) { (*static_cast<std::shared_ptr<Watch>*>(p))->want_write = false; };
  ac->ev.cleanup = [](void* p) {
    auto* h = static_cast<std::shared_ptr<Watch>*>(p);
    auto& w = *h;
    w->alive = false;
    std::error_code ec;
    w->sd.cancel(ec);
    w->sd.release();  // hiredis owns and closes the fd
    delete h;
  };
  redisAsyncSetConnectCallback(ac, &RedisLink::on_connect);
  redisAsyncSetDisconnectCallback(ac, &RedisLink::on_disconnect);
  ac_ = ac;
  return true;
}

void RedisLink::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  // A failed connect frees the context right after this callback.
  if (status != REDIS_OK && self->ac_ == ac) self->ac_ = nullptr;
}

void RedisLink::on_disconnect(const redisAsyncContext* ac, int) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self->ac_ == ac) self->ac_ = nullptr;
}

void RedisLink::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  std::unique_ptr<std::shared_ptr<Call>> holder(static_cast<std::shared_ptr<Call>*>(privdata));
  auto call = *holder;
  static_cast<RedisLink*>(ac->data)->in_flight_--;
  if (call->done) return;  // its deadline already answered
  call->done = true;
  call->timer.cancel();
  if (reply) {
    call->cb(static_cast<const redisReply*>(reply), {});
    return;
  }
  // No reply: the context is being freed or failed. Answer outside hiredis,
  // so the callback may make new calls.
  asio::post(call->timer.get_executor(), [call, alive = static_cast<RedisLink*>(ac->data)->alive_] {
    if (*alive) call->cb(nullptr, "connection lost");
  });
}

void RedisLink::command(std::vector<std::string> args, Callback cb) {
  std::string error;
  if (in_flight_ >= max_in_flight_) error = "too many Redis calls in flight";
  if (error.empty()) ensure_connected(error);
  if (!error.empty()) {
    asio::post(ctx_, [cb = std::move(cb), error, alive = alive_] {
      if (*alive) cb(nullptr, error);
    });
    return;
  }
  auto call = std::make_shared<Call>(ctx_, std::move(cb));
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* holder = new std::shared_ptr<Call>(call);
  if (redisAsyncCommandArgv(ac_, &RedisLink::on_reply, holder, static_cast<int>(argv.size()),
                            argv.data(), lens.data()) != REDIS_OK) {
    delete holder;
    asio::post(ctx_, [call, alive = alive_] {
      if (*alive) call->cb(nullptr, "the Redis connection is closing");
    });
    return;
  }
  ++in_flight_;
  call->timer.expires_after(timeout_);
  call->timer.async_wait([call](std::error_code ec) {
    if (ec || call->done) return;
    call->done = true;
    call->cb(nullptr, "timeout");
  });
}

void RedisLink::eval(const std::string& script, std::vector<std::string> keys,
                     std::vector<std::string> args, Callback cb) {
  std::vector<std::string> argv{"EVALSHA", script_sha1(script), std::to_string(keys.size())};
  for (auto& k : keys) argv.push_back(std::move(k));
  for (auto& a : args) argv.push_back(std::move(a));
  auto retry = argv;
  retry[0] = "EVAL";
  retry[1] = script;
  command(std::move(argv), [this, retry = std::move(retry), cb = std::move(cb)](
                               const redisReply* r, std::string_view error) mutable {
    const bool noscript = r && r->type == REDIS_REPLY_ERROR &&
                          std::string_view(r->str, r->len).starts_with("NOSCRIPT");
    if (!noscript) {
      cb(r, error);
      return;
    }
    command(std::move(retry), std::move(cb));
  });
}

}  // namespace mailgate::cluster
