// mtasts/fetcher: fetches MTA-STS policy files over HTTPS (RFC 8461 §3.3)
// with libcurl, the one HTTP client of the program, on a thread of its own
// that drives a curl multi handle: no worker ever blocks on HTTP.
// The caller resolves mta-sts.<domain> with its own resolver and hands the
// address in; curl gets it through CURLOPT_RESOLVE, so the URL, SNI and
// the certificate check all keep the name.
// Promises: every fetch() completes exactly once (on the fetcher's thread),
// also when the fetcher is destroyed first ("shut down"); only a 200 answer
// of type text/plain of at most 64 KiB, over TLS 1.2+ with a certificate
// that chains to a trusted CA (`ca_file`, else the system store) and names
// mta-sts.<domain>, counts as a body; redirects are never followed; a
// fetch takes at most `timeout`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mailgate::mtasts {

struct FetchRequest {
  std::string domain;   // the policy domain; the host is "mta-sts." + domain
  std::string address;  // an IP address of that host
  unsigned port = 443;
};

struct FetchResult {
  enum class Status {
    Ok,          // body holds the policy text
    Failed,      // no usable answer (connection, timeout, HTTP status, type, size)
    Certificate  // the host's certificate did not verify (RFC 8460 sts-webpki-invalid)
  };
  Status status = Status::Failed;
  std::string body;
  std::string error;  // for logs
};

class PolicyFetcher {
 public:
  using Done = std::function<void(FetchResult)>;
  // Throws std::runtime_error when libcurl cannot be set up.
  explicit PolicyFetcher(std::string ca_file,
                         std::chrono::milliseconds timeout = std::chrono::seconds(20));
  ~PolicyFetcher();
  PolicyFetcher(const PolicyFetcher&) = delete;
  PolicyFetcher& operator=(const PolicyFetcher&) = delete;

  // Thread-safe. `done` runs on the fetcher's thread: it should only post.
  void fetch(FetchRequest request, Done done);

  struct Transfer;  // one transfer in flight (fetcher.cpp)

 private:
  void run();

  std::string ca_file_;
  std::chrono::milliseconds timeout_;
  void* multi_ = nullptr;  // CURLM*
  std::mutex mu_;
  std::vector<std::pair<FetchRequest, Done>> incoming_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mailgate::mtasts
