// httpclient/http_client: see http_client.hpp. One thread loops over
// curl_multi_poll; send() queues a request and wakes it with
// curl_multi_wakeup; finished transfers are read with curl_multi_info_read
// and completed there. (Extracted from mtasts/fetcher, now its user.)
#include "httpclient/http_client.hpp"
#include "net/thread_name.hpp"

#include <curl/curl.h>

#include <memory>
#include <stdexcept>

namespace mailgate::httpclient {

struct Client::Transfer {
  CURL* easy = nullptr;
  curl_slist* resolve = nullptr;
  curl_slist* headers = nullptr;
  Request request;
  Done done;
  std::string body;
  bool too_large = false;
  char error[CURL_ERROR_SIZE] = {};

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (resolve) curl_slist_free_all(resolve);
    if (headers) curl_slist_free_all(headers);
  }
};

namespace {

std::once_flag curl_init;

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Client::Transfer*>(user);
  const size_t bytes = size * n;
  if (t->body.size() + bytes > t->request.max_response) {
    t->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->body.append(data, bytes);
  return bytes;
}

Response finish(Client::Transfer& t, CURLcode rc) {
  Response r;
  curl_easy_getinfo(t.easy, CURLINFO_TOTAL_TIME, &r.seconds);
  if (rc != CURLE_OK) {
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
      r.status = Response::Status::Certificate;
    r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    r.too_large = t.too_large;
    r.error = t.too_large
                  ? "response larger than " + std::to_string(t.request.max_response) + " bytes"
                  : std::string(t.error[0] ? t.error : curl_easy_strerror(rc));
    return r;
  }
  r.status = Response::Status::Answered;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &r.code);
  char* type = nullptr;
  curl_easy_getinfo(t.easy, CURLINFO_CONTENT_TYPE, &type);
  if (type) r.content_type = type;
  r.body = std::move(t.body);
  return r;
}

void setup(Client::Transfer& t) {
  auto& q = t.request;
  CURL* e = t.easy;
  if (!q.resolve.empty()) {
    t.resolve = curl_slist_append(nullptr, q.resolve.c_str());
    curl_easy_setopt(e, CURLOPT_RESOLVE, t.resolve);
  }
  for (const auto& h : q.headers) t.headers = curl_slist_append(t.headers, h.c_str());
  if (q.method == "POST") {
    // Without this curl adds "Expect: 100-continue" to large bodies and waits for it.
    t.headers = curl_slist_append(t.headers, "Expect:");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, q.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(q.body.size()));
  }
  if (t.headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers);
  curl_easy_setopt(e, CURLOPT_URL, q.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, q.protocols.c_str());
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (q.tls12_minimum)
    curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!q.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, q.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(q.timeout.count()));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, q.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
}

Response shut_down() {
  Response r;
  r.error = "HTTP client shut down";
  return r;
}

}  // namespace

Client::Client() {
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  multi_ = curl_multi_init();
  if (!multi_) throw std::runtime_error("http client: curl_multi_init failed");
  thread_ = std::thread([this] {
    net::name_this_thread("http-client");
    run();
  });
}

Client::~Client() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  thread_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void Client::send(Request request, Done done) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      incoming_.emplace_back(std::move(request), std::move(done));
      done = nullptr;
    }
  }
  if (done) {
    done(shut_down());
    return;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void Client::run() {
  auto* multi = static_cast<CURLM*>(multi_);
  std::vector<std::unique_ptr<Transfer>> running;
  for (;;) {
    std::vector<std::pair<Request, Done>> taken;
    bool stop = false;
    {
      std::lock_guard lock(mu_);
      taken.swap(incoming_);
      stop = stopping_;
    }
    if (stop) {
      for (auto& [req, done] : taken) done(shut_down());
      for (auto& t : running) {
        curl_multi_remove_handle(multi, t->easy);
        t->done(shut_down());
      }
      return;
    }
    for (auto& [req, done] : taken) {
      auto t = std::make_unique<Transfer>();
      t->request = std::move(req);
      t->done = std::move(done);
      t->easy = curl_easy_init();
      if (!t->easy) {
        Response r;
        r.error = "curl_easy_init failed";
        t->done(std::move(r));
        continue;
      }
      setup(*t);
      curl_multi_add_handle(multi, t->easy);
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

}  // namespace mailgate::httpclient
