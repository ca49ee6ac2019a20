// mtasts/fetcher: see fetcher.hpp. One thread loops over curl_multi_poll;
// fetch() queues a request and wakes it with curl_multi_wakeup; finished
// transfers are read with curl_multi_info_read and completed there.
#include "mtasts/fetcher.hpp"

#include <curl/curl.h>

#include <mutex>
#include <stdexcept>

#include "mtasts/policy.hpp"
#include "text/ascii.hpp"

namespace mailgate::mtasts {

struct PolicyFetcher::Transfer {
  CURL* easy = nullptr;
  curl_slist* resolve = nullptr;
  FetchRequest request;
  Done done;
  std::string body;
  bool too_large = false;
  char error[CURL_ERROR_SIZE] = {};

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (resolve) curl_slist_free_all(resolve);
  }
};

namespace {

std::once_flag curl_init;

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<PolicyFetcher::Transfer*>(user);
  const size_t bytes = size * n;
  if (t->body.size() + bytes > kMaxPolicySize) {
    t->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->body.append(data, bytes);
  return bytes;
}

FetchResult finish(PolicyFetcher::Transfer& t, CURLcode rc) {
  FetchResult r;
  const std::string url = "https://mta-sts." + t.request.domain + "/.well-known/mta-sts.txt";
  if (rc != CURLE_OK) {
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
      r.status = FetchResult::Status::Certificate;
    }
    r.error = url + ": " +
              (t.too_large ? std::string("policy larger than 64 KiB")
                           : std::string(t.error[0] ? t.error : curl_easy_strerror(rc)));
    return r;
  }
  long code = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    r.error = url + ": HTTP status " + std::to_string(code) + " (only 200 is a policy)";
    return r;
  }
  char* type = nullptr;
  curl_easy_getinfo(t.easy, CURLINFO_CONTENT_TYPE, &type);
  const std::string_view media = type ? std::string_view(type) : std::string_view();
  const auto semi = media.find(';');
  if (!text::iequals(text::trim(media.substr(0, semi)), "text/plain")) {
    r.error = url + ": Content-Type is not text/plain";
    return r;
  }
  r.status = FetchResult::Status::Ok;
  r.body = std::move(t.body);
  return r;
}

}  // namespace

PolicyFetcher::PolicyFetcher(std::string ca_file, std::chrono::milliseconds timeout)
    : ca_file_(std::move(ca_file)), timeout_(timeout) {
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  multi_ = curl_multi_init();
  if (!multi_) throw std::runtime_error("mta-sts: curl_multi_init failed");
  thread_ = std::thread([this] { run(); });
}

PolicyFetcher::~PolicyFetcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  thread_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void PolicyFetcher::fetch(FetchRequest request, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      incoming_.emplace_back(std::move(request), std::move(done));
      done = nullptr;
    }
  }
  if (done) {
    done(FetchResult{FetchResult::Status::Failed, {}, "MTA-STS fetcher shut down"});
    return;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void PolicyFetcher::run() {
  auto* multi = static_cast<CURLM*>(multi_);
  std::vector<std::unique_ptr<Transfer>> running;
  for (;;) {
    std::vector<std::pair<FetchRequest, Done>> taken;
    bool stop = false;
    {
      std::lock_guard lock(mu_);
      taken.swap(incoming_);
      stop = stopping_;
    }
    if (stop) {
      for (auto& [req, done] : taken)
        done(FetchResult{FetchResult::Status::Failed, {}, "MTA-STS fetcher shut down"});
      for (auto& t : running) {
        curl_multi_remove_handle(multi, t->easy);
        t->done(FetchResult{FetchResult::Status::Failed, {}, "MTA-STS fetcher shut down"});
      }
      return;
    }
    for (auto& [req, done] : taken) {
      auto t = std::make_unique<Transfer>();
      t->request = std::move(req);
      t->done = std::move(done);
      t->easy = curl_easy_init();
      const std::string host = "mta-sts." + t->request.domain;
      const std::string url =
          "https://" + host +
          (t->request.port == 443 ? "" : ":" + std::to_string(t->request.port)) +
          "/.well-known/mta-sts.txt";
      std::string address = t->request.address;
      if (address.find(':') != std::string::npos) address = "[" + address + "]";
      t->resolve = curl_slist_append(
          nullptr, (host + ":" + std::to_string(t->request.port) + ":" + address).c_str());
      CURL* e = t->easy;
      curl_easy_setopt(e, CURLOPT_URL, url.c_str());
      curl_easy_setopt(e, CURLOPT_RESOLVE, t->resolve);
      curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
      curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // §3.3: no redirects
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
      curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
      if (!ca_file_.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file_.c_str());
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(e, CURLOPT_USERAGENT, "mailgate MTA-STS");
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
      curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
      curl_multi_add_handle(multi, e);
      running.push_back(std::move(t));
    }
    int still = 0;
    curl_multi_perform(multi, &still);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      const CURLcode rc = msg->data.result;
      curl_multi_remove_handle(multi, msg->easy_handle);
      auto result = finish(*t, rc);
      t->done(std::move(result));
      for (auto it = running.begin(); it != running.end(); ++it) {
        if (it->get() == t) {
          running.erase(it);
          break;
        }
      }
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
}

}  // namespace mailgate::mtasts
