// dns/resolver: the asynchronous resolver outbound delivery uses (DESIGN §3,
// §7): MX with RFC 5321 §5.1 selection, A and AAAA, on c-ares driven by the
// worker's own io_context — no blocking calls, no resolver threads.
// One Resolver per worker; it is not thread-safe and lives on that worker's
// io_context (call it and co_await it only from that context's thread).
//
// Promises:
// - Names are resolved by their A-label (dns/idna): "bücher.example" queries
//   "xn--bcher-kva.example"; a name that is not a valid domain completes with
//   BadName and sends nothing.
// - Every query carries AD=1 and EDNS0 DO=1; an answer's `authentic` says
//   the (validating) resolver set AD on every DNS answer it is made of. A
//   resolver that does not validate never sets it, so nothing is authentic.
// - txt(): each TXT record as one string (RFC 7208 §3.3 / RFC 8461 §3.1:
//   a record's character-strings are concatenated without separators).
// - mx(): MX records sorted by preference, equal preferences shuffled anew on
//   every call (also for cached answers); a lone "." target is a null MX
//   (RFC 7505) → NullMx (bounce 556 5.1.10), a "." among real hosts is
//   ignored; no MX records (NODATA) → implicit MX: when the domain has A or
//   AAAA records, hosts = {domain, 0} with implicit = true, else NoData.
//   NXDOMAIN → NxDomain; SERVFAIL, REFUSED, timeouts → TempFail.
// - addresses(): A and AAAA queried concurrently; Ok when either has records:
//   IPv4 addresses first, then IPv6, each in the server's order (an AAAA
//   failure does not hide the A records, and vice versa). Otherwise TempFail
//   if either failed temporarily, else NxDomain if either says NXDOMAIN, else
//   NoData. An IP address literal ("192.0.2.1", "::1") is answered as itself.
// - Record sets (name, type) are cached by TTL (see ResolverOptions and
//   dns/wire); an answer's ttl is the seconds its parts stay cached (the
//   smallest of them). Identical lookups in flight share one query.
// - Every call completes: shutdown() (or destroying the Resolver) completes
//   pending calls with TempFail, and later calls complete with TempFail at
//   once. Coroutines suspended in a call may outlive the Resolver object, not
//   its io_context.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "dns/answers.hpp"
#include "dns/resolver_options.hpp"

namespace mailgate::dns {

// Counters of one resolver, written only by its worker; read with relaxed loads.
struct Stats {
  using Counter = std::atomic<std::uint64_t>;
  // Results of mx() and addresses() calls.
  Counter ok{0};
  Counter nxdomain{0};
  Counter nodata{0};
  Counter tempfail{0};
  Counter nullmx{0};
  Counter badname{0};
  // Record-set lookups (one per name and type; an mx() with implicit MX makes three).
  Counter cache_hits{0};
  Counter queries{0};    // sent to c-ares
  Counter coalesced{0};  // joined an identical query already in flight
};

class Resolver {
 public:
  // Throws std::invalid_argument for bad options (see validate_options) and
  // std::runtime_error when c-ares cannot start (unreadable resolv.conf, …).
  Resolver(asio::io_context& ctx, ResolverOptions opts);
  ~Resolver();  // shutdown()
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Parameters are taken by value: the coroutine keeps its own copy.
  asio::awaitable<MxAnswer> mx(std::string domain);
  asio::awaitable<AddressAnswer> addresses(std::string host);
  // TXT records of `name` (e.g. "_mta-sts.example.com"), in the server's
  // order; statuses as for addresses() (not counted in Stats' results).
  asio::awaitable<TxtAnswer> txt(std::string name);
  // TLSA records of `_<port>._tcp.<host>` (RFC 7672 §2.2.2), with whether
  // the resolver vouched for the answer (AD).
  asio::awaitable<TlsaAnswer> tlsa(std::string host, std::uint16_t port);

  const Stats& stats() const;      // any thread (relaxed atomics)
  std::size_t cache_size() const;  // the worker's thread only
  // Cancels every query in flight (their calls complete with TempFail),
  // releases c-ares' descriptors, drops the cache. Idempotent.
  void shutdown();

  class Core;  // implementation, shared with the coroutines in flight

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace mailgate::dns
