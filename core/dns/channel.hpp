// dns/channel (internal to dns): one c-ares channel driven by an io_context,
// as STACK.md prescribes — no resolver threads, no blocking calls. c-ares
// tells us (ARES_OPT_SOCK_STATE_CB) which sockets it wants watched; each one
// is wrapped in an asio::posix::stream_descriptor whose async_wait feeds
// ares_process_fd, and a steady_timer set from ares_timeout() drives retries
// and timeouts.
// Every query carries RD, AD and an EDNS0 OPT record with DO (1232-octet
// UDP size), so a validating resolver's AD bit reaches the resolver.
// Promises: every query()'s callback runs exactly once — with the answer, or
// with an error status (timeout, ARES_EDESTRUCTION at shutdown) — possibly
// inline inside query() (bad name, no servers); callbacks run on the
// io_context's thread. c-ares owns the descriptors: they are release()d,
// never closed, by Asio. shutdown() completes every pending query, stops the
// timer and releases every descriptor; after it query() fails inline.
// Handlers still queued in the io_context after shutdown() or destruction do
// nothing (they hold weak references).
#pragma once

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "dns/resolver_options.hpp"

struct ares_channeldata;

namespace mailgate::dns {

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  // status is an ARES_* code; abuf/alen the raw answer (abuf may be null).
  using Callback = std::function<void(int status, const unsigned char* abuf, int alen)>;

  // Throws std::invalid_argument for bad options, std::runtime_error when
  // c-ares cannot be initialised (e.g. an unreadable resolv.conf).
  static std::shared_ptr<Channel> create(asio::io_context& ctx, const ResolverOptions& opts);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  void query(const std::string& name, int type, Callback cb);
  void shutdown();
  bool open() const { return channel_ != nullptr; }
  std::size_t watched_sockets() const { return sockets_.size(); }

 private:
  struct Socket;
  explicit Channel(asio::io_context& ctx);
  static void sock_state(void* data, int fd, int readable, int writable);
  static void on_answer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  void update_socket(int fd, bool readable, bool writable);
  void wait_read(const std::shared_ptr<Socket>& s);
  void wait_write(const std::shared_ptr<Socket>& s);
  void arm_timer();

  asio::io_context& ctx_;
  ares_channeldata* channel_ = nullptr;
  asio::steady_timer timer_;
  std::unordered_map<int, std::shared_ptr<Socket>> sockets_;
};

}  // namespace mailgate::dns
