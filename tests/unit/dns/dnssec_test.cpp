// The resolver's DNSSEC signals (RFC 7672 §2.1, RFC 6840 §5.7) against a
// small DNS server made for it: every query must carry AD and an EDNS0 OPT
// record with DO, and the server sets AD on its answer only when the query
// asked for it (as a validating resolver does) and it plays a validating
// one. authentic follows the answers' AD; TLSA records are parsed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dns/resolver.hpp"

namespace mailgate::dns {
namespace {

using namespace std::chrono_literals;

// UDP on 127.0.0.1: MX secure.test → mx.secure.test; TLSA
// _25._tcp.mx.secure.test → 3 1 1 <32 octets>; anything else NXDOMAIN.
class DnssecServer {
 public:
  explicit DnssecServer(bool validating) : validating_(validating) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~DnssecServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  int queries() const { return queries_; }
  int flagged() const { return flagged_; }  // queries with AD and DO set

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      unsigned char q[1500];
      sockaddr_in peer{};
      socklen_t plen = sizeof peer;
      const auto n = ::recvfrom(fd_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&peer), &plen);
      if (n < 12) continue;
      ++queries_;
      // Question: name labels from offset 12, then type.
      std::size_t i = 12;
      std::string name;
      while (i < static_cast<std::size_t>(n) && q[i] != 0) {
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<const char*>(q + i + 1), q[i]);
        i += 1 + q[i];
      }
      const std::size_t qend = i + 5;  // root, type, class
      const int type = q[i + 1] << 8 | q[i + 2];
      const bool ad = (q[3] & 0x20) != 0;
      // The OPT record follows the question: root, TYPE 41, ..., flags at +7.
      const bool opt =
          static_cast<std::size_t>(n) >= qend + 11 && q[qend] == 0 && q[qend + 2] == 41;
      const bool dnssec_ok = opt && (q[qend + 7] & 0x80) != 0;
      if (ad && dnssec_ok) ++flagged_;
      std::vector<unsigned char> r(q, q + qend);
      r[2] = 0x81;  // QR, RD
      r[3] = 0x80;  // RA
      if (validating_ && (ad || dnssec_ok)) r[3] |= 0x20;
      r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;  // counts: only the question
      auto answer = [&](int rtype, const std::vector<unsigned char>& rdata) {
        r[7] = 1;
        r.insert(r.end(), {0xC0, 12, static_cast<unsigned char>(rtype >> 8),
                           static_cast<unsigned char>(rtype), 0, 1, 0, 0, 0, 60, 0,
                           static_cast<unsigned char>(rdata.size())});
        r.insert(r.end(), rdata.begin(), rdata.end());
      };
      if (name == "secure.test" && type == 15) {
        std::vector<unsigned char> mx{0,   10,  2,   'm', 'x', 6,   's', 'e', 'c',
                                      'u', 'r', 'e', 4,   't', 'e', 's', 't', 0};
        answer(15, mx);
      } else if (name == "_25._tcp.mx.secure.test" && type == 52) {
        std::vector<unsigned char> tlsa{3, 1, 1};
        for (int k = 0; k < 32; ++k) tlsa.push_back(static_cast<unsigned char>(k));
        answer(52, tlsa);
      } else if (name != "secure.test" && name != "_25._tcp.mx.secure.test") {
        r[3] |= 3;  // NXDOMAIN
      }
      ::sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&peer), plen);
    }
  }

  bool validating_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0}, flagged_{0};
  std::thread thread_;
};

template <class T>
std::optional<T> run(asio::io_context& ctx, asio::awaitable<T> call) {
  std::optional<T> out;
  asio::co_spawn(ctx, std::move(call), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out = std::move(v);
  });
  ctx.restart();
  ctx.run_for(10s);
  EXPECT_TRUE(out) << "call did not complete";
  return out;
}

ResolverOptions options(const DnssecServer& s) {
  ResolverOptions o;
  o.servers = {s.server()};
  o.timeout = 2000ms;
  return o;
}

TEST(Dnssec, QueriesAskForDnssecAndAuthenticAnswersSaySo) {
  DnssecServer server(/*validating=*/true);
  asio::io_context ctx;
  Resolver r(ctx, options(server));
  auto mx = run(ctx, r.mx("secure.test"));
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->status, Status::Ok) << mx->detail;
  EXPECT_TRUE(mx->authentic);
  auto tlsa = run(ctx, r.tlsa("mx.secure.test", 25));
  ASSERT_TRUE(tlsa);
  ASSERT_EQ(tlsa->status, Status::Ok) << tlsa->detail;
  EXPECT_TRUE(tlsa->authentic);
  ASSERT_EQ(tlsa->records.size(), 1u);
  EXPECT_EQ(tlsa->records[0].usage, 3);
  EXPECT_EQ(tlsa->records[0].selector, 1);
  EXPECT_EQ(tlsa->records[0].matching_type, 1);
  EXPECT_EQ(tlsa->records[0].data.size(), 32u);
  // A secure denial of existence is authentic too.
  auto none = run(ctx, r.tlsa("other.test", 25));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, Status::NxDomain);
  EXPECT_TRUE(none->authentic);
  EXPECT_EQ(server.flagged(), server.queries());  // every query carried AD and DO
}

TEST(Dnssec, ANonValidatingResolverMakesNothingAuthentic) {
  DnssecServer server(/*validating=*/false);
  asio::io_context ctx;
  Resolver r(ctx, options(server));
  auto mx = run(ctx, r.mx("secure.test"));
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->status, Status::Ok);
  EXPECT_FALSE(mx->authentic);
  auto tlsa = run(ctx, r.tlsa("mx.secure.test", 25));
  ASSERT_TRUE(tlsa);
  EXPECT_EQ(tlsa->status, Status::Ok);
  EXPECT_FALSE(tlsa->authentic);
}

}  // namespace
}  // namespace mailgate::dns
