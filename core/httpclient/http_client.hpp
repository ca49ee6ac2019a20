// httpclient/http_client: the one HTTP(S) client of the program (MTA-STS
// policy fetches, webhook POSTs), libcurl driven by a multi handle on a
// thread of its own, so no worker ever blocks on HTTP. All transfers share
// the multi handle's connection cache: a second request to the same host
// reuses the connection (keep-alive, TLS session).
// Promises: every send() completes exactly once, on the client's thread
// (callers only post from there), also when the client is destroyed first
// ("HTTP client shut down"); redirects are never followed; TLS peers are
// verified (chain against `ca_file`, else the system store, and host name);
// a transfer takes at most `timeout`; at most `max_response` bytes of a
// body are kept (more aborts the transfer with `too_large`).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mailgate::httpclient {

struct Request {
  std::string method = "GET";        // GET or POST
  std::string url;                   // http:// or https:// (see `protocols`)
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST body
  std::string resolve;               // optional CURLOPT_RESOLVE entry "host:port:address"
  std::string protocols = "http,https";
  std::string ca_file;         // trusted CAs (PEM); "" = the system store
  bool tls12_minimum = false;  // refuse TLS < 1.2
  std::chrono::milliseconds timeout{20000};
  std::size_t max_response = 64 * 1024;
  std::string user_agent = "mailgate";
};

struct Response {
  enum class Status {
    Answered,    // an HTTP answer came: see `code`
    Failed,      // no answer (connection, timeout, TLS, protocol, too large)
    Certificate  // the peer's certificate did not verify
  };
  Status status = Status::Failed;
  long code = 0;
  std::string content_type;
  std::string body;
  bool too_large = false;
  bool timed_out = false;
  std::string error;   // curl's words, for logs
  double seconds = 0;  // total time of the transfer
};

class Client {
 public:
  using Done = std::function<void(Response)>;
  // Throws std::runtime_error when libcurl cannot be set up.
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Thread-safe. `done` runs on the client's thread: it should only post.
  void send(Request request, Done done);

  struct Transfer;  // one transfer in flight (http_client.cpp)

 private:
  void run();

  void* multi_ = nullptr;  // CURLM*
  std::mutex mu_;
  std::vector<std::pair<Request, Done>> incoming_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mailgate::httpclient
