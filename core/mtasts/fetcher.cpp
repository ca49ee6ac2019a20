// mtasts/fetcher: see fetcher.hpp. Builds the RFC 8461 §3.3 request for the
// shared HTTP client and judges its answer (status, type, size).
#include "mtasts/fetcher.hpp"

#include "httpclient/http_client.hpp"
#include "mtasts/policy.hpp"
#include "text/ascii.hpp"

namespace mailgate::mtasts {

namespace {

FetchResult judge(const FetchRequest& request, httpclient::Response& r) {
  FetchResult out;
  const std::string url = "https://mta-sts." + request.domain + "/.well-known/mta-sts.txt";
  using Status = httpclient::Response::Status;
  if (r.status != Status::Answered) {
    if (r.status == Status::Certificate) out.status = FetchResult::Status::Certificate;
    out.error = url + ": " + (r.too_large ? std::string("policy larger than 64 KiB") : r.error);
    return out;
  }
  if (r.code != 200) {
    out.error = url + ": HTTP status " + std::to_string(r.code) + " (only 200 is a policy)";
    return out;
  }
  const std::string_view media = r.content_type;
  const auto semi = media.find(';');
  if (!text::iequals(text::trim(media.substr(0, semi)), "text/plain")) {
    out.error = url + ": Content-Type is not text/plain";
    return out;
  }
  out.status = FetchResult::Status::Ok;
  out.body = std::move(r.body);
  return out;
}

}  // namespace

PolicyFetcher::PolicyFetcher(httpclient::Client& http, std::string ca_file,
                             std::chrono::milliseconds timeout)
    : http_(http), ca_file_(std::move(ca_file)), timeout_(timeout) {}

void PolicyFetcher::fetch(FetchRequest request, Done done) {
  httpclient::Request q;
  const std::string host = "mta-sts." + request.domain;
  q.url = "https://" + host + (request.port == 443 ? "" : ":" + std::to_string(request.port)) +
          "/.well-known/mta-sts.txt";
  std::string address = request.address;
  if (address.find(':') != std::string::npos) address = "[" + address + "]";
  // The caller resolved the host: the URL, SNI and certificate check keep the name.
  q.resolve = host + ":" + std::to_string(request.port) + ":" + address;
  q.protocols = "https";
  q.tls12_minimum = true;
  q.ca_file = ca_file_;
  q.timeout = timeout_;
  q.max_response = kMaxPolicySize;
  q.user_agent = "mailgate MTA-STS";
  http_.send(std::move(q), [request = std::move(request), done = std::move(done)](
                               httpclient::Response r) { done(judge(request, r)); });
}

}  // namespace mailgate::mtasts
