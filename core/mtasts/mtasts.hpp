// mtasts/mtasts: MTA-STS policy discovery for outbound delivery (RFC 8461
// §3, §5): the `_mta-sts.<domain>` TXT record through the worker's own
// resolver, the policy file through the PolicyFetcher (the shared HTTP
// client, httpclient/, on its own thread), and a process-wide cache of policies by domain.
// Promises:
// - lookup() never blocks its worker: DNS is the worker's c-ares resolver,
//   HTTP runs on the HTTP client's thread and the coroutine resumes on the
//   caller's executor.
// - A cached policy is used until max_age after it was fetched; it is
//   fetched again only when the TXT record's id differs from the cached one
//   (or it expired). A failed fetch or an invalid policy falls back to a
//   cached unexpired policy (§5.1: "refresh failures" keep the old one);
//   without one the outcome says what failed (for TLS-RPT) and the domain
//   is treated as having no policy.
// - No TXT record (or none valid) with a cached unexpired policy → that
//   policy; without → NoPolicy.
// - Thread-safe: every worker may call lookup() at once; the cache holds at
//   most kMaxCachedDomains domains (expired ones dropped first).
#pragma once

#include <asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "mtasts/fetcher.hpp"
#include "mtasts/policy.hpp"

namespace mailgate::dns {
class Resolver;
}

namespace mailgate::mtasts {

struct Lookup {
  enum class Outcome {
    NoPolicy,       // no (valid) TXT record and nothing cached
    Policy,         // `policy` applies (fresh, cached, or cached after a failed refresh)
    FetchError,     // TXT record found, the policy could not be fetched, nothing cached
    Invalid,        // the policy (or TXT record) did not parse, nothing cached
    WebpkiInvalid,  // the policy host's certificate did not verify, nothing cached
  };
  Outcome outcome = Outcome::NoPolicy;
  std::shared_ptr<const Policy> policy;
  std::string detail;  // what happened, for logs
};

inline constexpr std::size_t kMaxCachedDomains = 100'000;

class PolicyService {
 public:
  using Clock = std::chrono::steady_clock;
  // `http`: the program's HTTP client (outlives the service); `ca_file`:
  // trusted CAs for the policy hosts ("" = system store); `port`: the HTTPS
  // port (443; tests may use another).
  PolicyService(httpclient::Client& http, std::string ca_file, unsigned port = 443);

  // `domain`: the recipient domain (A-label, lower case). Parameters by
  // value: the coroutine keeps its copies.
  asio::awaitable<Lookup> lookup(dns::Resolver& resolver, std::string domain);

 private:
  struct Cached {
    std::shared_ptr<const Policy> policy;
    std::string id;
    Clock::time_point expires;
  };
  std::shared_ptr<const Policy> cached(const std::string& domain, std::string* id);
  void remember(const std::string& domain, std::shared_ptr<const Policy> p, std::string id);
  asio::awaitable<FetchResult> fetch(FetchRequest request);

  unsigned port_;
  PolicyFetcher fetcher_;
  std::mutex mu_;
  std::unordered_map<std::string, Cached> cache_;
};

}  // namespace mailgate::mtasts
