// dns/channel: c-ares on Asio (see channel.hpp). c-ares calls sock_state()
// whenever it opens a socket, changes interest, or closes one (with 0, 0,
// just before close()). We keep one Socket per fd with at most one read and
// one write wait outstanding; a wait's handler runs ares_process_fd for that
// fd and direction, then re-arms while c-ares still wants it. Every pass
// through c-ares ends with arm_timer(), which sets the timer to
// ares_timeout(); the timer's handler lets ares_process_fd(BAD, BAD) expire
// queries and send retries. Socket objects are shared with their pending
// handlers and flagged closed when c-ares closes the fd, so a handler for an
// fd number that c-ares has since reused never touches the new socket.
// Nothing here throws into c-ares' C frames.
#include "dns/channel.hpp"
#include "dns/wire.hpp"

#include <ares.h>
#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace mailgate::dns {

struct Channel::Socket {
  Socket(asio::io_context& ctx, int fd) : fd(fd), desc(ctx) {}
  ~Socket() {
    if (desc.is_open()) desc.release();
  }
  int fd;
  asio::posix::stream_descriptor desc;
  bool want_read = false;
  bool want_write = false;
  bool reading = false;
  bool writing = false;
  bool closed = false;
};

namespace {

// EDNS0 UDP payload size of our queries (DNS flag day 2020: no fragments).
constexpr int kEdnsUdpSize = 1232;

int library_init() {
  static const int rc = ares_library_init(ARES_LIB_INIT_ALL);
  return rc;
}

}  // namespace

Channel::Channel(asio::io_context& ctx) : ctx_(ctx), timer_(ctx) {}

std::shared_ptr<Channel> Channel::create(asio::io_context& ctx, const ResolverOptions& opts) {
  if (auto err = validate_options(opts); !err.empty()) throw std::invalid_argument(err);
  if (int rc = library_init(); rc != ARES_SUCCESS)
    throw std::runtime_error(fmt::format("c-ares: {}", ares_strerror(rc)));

  std::shared_ptr<Channel> ch(new Channel(ctx));
  ares_options o;
  std::memset(&o, 0, sizeof o);
  o.sock_state_cb = &Channel::sock_state;
  o.sock_state_cb_data = ch.get();
  o.timeout = static_cast<int>(opts.timeout.count());
  o.tries = opts.tries;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  ares_channel channel = nullptr;
  if (int rc = ares_init_options(&channel, &o, mask); rc != ARES_SUCCESS)
    throw std::runtime_error(fmt::format("c-ares init: {}", ares_strerror(rc)));
  ch->channel_ = channel;

  if (!opts.servers.empty()) {
    std::vector<ares_addr_port_node> nodes(opts.servers.size());
    for (std::size_t i = 0; i < opts.servers.size(); ++i) {
      auto server = *parse_server(opts.servers[i]);  // validated above
      auto& n = nodes[i];
      std::memset(&n, 0, sizeof n);
      n.next = i + 1 < nodes.size() ? &nodes[i + 1] : nullptr;
      if (server.ip.is_v4()) {
        n.family = AF_INET;
        auto b = server.ip.to_v4().to_bytes();
        std::memcpy(&n.addr.addr4, b.data(), b.size());
      } else {
        n.family = AF_INET6;
        auto b = server.ip.to_v6().to_bytes();
        std::memcpy(&n.addr.addr6, b.data(), b.size());
      }
      n.udp_port = server.port;
      n.tcp_port = server.port;
    }
    if (int rc = ares_set_servers_ports(channel, nodes.data()); rc != ARES_SUCCESS) {
      ch->shutdown();
      throw std::runtime_error(fmt::format("c-ares servers: {}", ares_strerror(rc)));
    }
  }
  return ch;
}

Channel::~Channel() { shutdown(); }

void Channel::query(const std::string& name, int type, Callback cb) {
  if (!channel_) {
    cb(ARES_EDESTRUCTION, nullptr, 0);
    return;
  }
  // Every query asks for DNSSEC information (AD and EDNS0 DO, see
  // request_dnssec): a validating resolver then says whether its answer is
  // authentic, which DANE needs (RFC 7672 §2.1); others just answer.
  // ares_query cannot set those bits (c-ares 1.18), so the query is built
  // here and sent with ares_send; on_answer maps the rcode as ares_query does.
  unsigned char* buf = nullptr;
  int len = 0;
  const int rc =
      ares_create_query(name.c_str(), 1 /* C_IN */, type, 0, 1 /* RD */, &buf, &len, kEdnsUdpSize);
  if (rc != ARES_SUCCESS) {
    cb(rc, nullptr, 0);
    return;
  }
  request_dnssec(buf, static_cast<std::size_t>(len));
  auto* arg = new Callback(std::move(cb));
  ares_send(channel_, buf, len, &Channel::on_answer, arg);
  ares_free_string(buf);
  arm_timer();
}

void Channel::on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  std::unique_ptr<Callback> cb(static_cast<Callback*>(arg));
  try {
    (*cb)(ares_status_of(status, abuf, alen), abuf, alen);
  } catch (...) {
    // A callback must not unwind through c-ares; the resolver's never throws.
  }
}

void Channel::sock_state(void* data, int fd, int readable, int writable) {
  try {
    static_cast<Channel*>(data)->update_socket(fd, readable != 0, writable != 0);
  } catch (...) {
    // Out of memory: the socket stays unwatched and its query times out.
  }
}

void Channel::update_socket(int fd, bool readable, bool writable) {
  auto it = sockets_.find(fd);
  if (!readable && !writable) {  // c-ares is about to close fd
    if (it != sockets_.end()) {
      it->second->closed = true;
      if (it->second->desc.is_open()) it->second->desc.release();  // cancels its waits
      sockets_.erase(it);
    }
    return;
  }
  if (it == sockets_.end()) {
    auto s = std::make_shared<Socket>(ctx_, fd);
    std::error_code ec;
    s->desc.assign(fd, ec);
    if (ec) return;  // cannot watch it: the query ends by timeout
    it = sockets_.emplace(fd, std::move(s)).first;
  }
  auto s = it->second;
  s->want_read = readable;
  s->want_write = writable;
  if (s->want_read && !s->reading) wait_read(s);
  if (s->want_write && !s->writing) wait_write(s);
}

void Channel::wait_read(const std::shared_ptr<Socket>& s) {
  s->reading = true;
  s->desc.async_wait(asio::posix::stream_descriptor::wait_read,
                     [weak = weak_from_this(), s](std::error_code ec) {
                       s->reading = false;
                       if (ec || s->closed) return;
                       auto self = weak.lock();
                       if (!self || !self->channel_) return;
                       if (s->want_read) ares_process_fd(self->channel_, s->fd, ARES_SOCKET_BAD);
                       if (!s->closed && s->want_read && !s->reading) self->wait_read(s);
                       self->arm_timer();
                     });
}

void Channel::wait_write(const std::shared_ptr<Socket>& s) {
  s->writing = true;
  s->desc.async_wait(asio::posix::stream_descriptor::wait_write,
                     [weak = weak_from_this(), s](std::error_code ec) {
                       s->writing = false;
                       if (ec || s->closed) return;
                       auto self = weak.lock();
                       if (!self || !self->channel_) return;
                       if (s->want_write) ares_process_fd(self->channel_, ARES_SOCKET_BAD, s->fd);
                       if (!s->closed && s->want_write && !s->writing) self->wait_write(s);
                       self->arm_timer();
                     });
}

void Channel::arm_timer() {
  if (!channel_) return;
  timeval tv{};
  if (!ares_timeout(channel_, nullptr, &tv)) {  // no query pending
    timer_.cancel();
    return;
  }
  timer_.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
  timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
    if (ec) return;  // re-armed or cancelled
    auto self = weak.lock();
    if (!self || !self->channel_) return;
    ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    self->arm_timer();
  });
}

void Channel::shutdown() {
  if (!channel_) return;
  // Completes every pending query (ARES_EDESTRUCTION) and reports each socket
  // closed through sock_state(), which releases its descriptor.
  ares_destroy(channel_);
  channel_ = nullptr;
  timer_.cancel();
  for (auto& [fd, s] : sockets_) {
    s->closed = true;
    if (s->desc.is_open()) s->desc.release();
  }
  sockets_.clear();
}

}  // namespace mailgate::dns
