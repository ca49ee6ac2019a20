// mtasts/fetcher: fetches MTA-STS policy files over HTTPS (RFC 8461 §3.3)
// through the program's one HTTP client (httpclient/, libcurl on a thread of
// its own): no worker ever blocks on HTTP.
// The caller resolves mta-sts.<domain> with its own resolver and hands the
// address in; curl gets it through CURLOPT_RESOLVE, so the URL, SNI and
// the certificate check all keep the name.
// Promises: every fetch() completes exactly once (on the fetcher's thread),
// also when the HTTP client is destroyed first ("shut down"); only a 200 answer
// of type text/plain of at most 64 KiB, over TLS 1.2+ with a certificate
// that chains to a trusted CA (`ca_file`, else the system store) and names
// mta-sts.<domain>, counts as a body; redirects are never followed; a
// fetch takes at most `timeout`.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace mailgate::httpclient {
class Client;
}

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
  // `http` must outlive the fetcher.
  PolicyFetcher(httpclient::Client& http, std::string ca_file,
                std::chrono::milliseconds timeout = std::chrono::seconds(20));

  // Thread-safe. `done` runs on the HTTP client's thread: it should only post.
  void fetch(FetchRequest request, Done done);

 private:
  httpclient::Client& http_;
  std::string ca_file_;
  std::chrono::milliseconds timeout_;
};

}  // namespace mailgate::mtasts
