// adminclient/http_client: a small blocking HTTP/1.1 client over TCP
// sockets, plain or TLS (https URLs), for the admin CLI (one request per
// connection, `Connection: close`). Promises: connecting (to each resolved
// address in turn) and every wait for the socket to become writable or
// readable are bounded by options.timeout, so a server that never answers
// fails the request within about that time; the response is limited to
// options.max_response bytes; failures to resolve, connect, send or read,
// timeouts and malformed or oversized responses throw HttpError (an HTTP
// error status is not a failure: it comes back in HttpResponse). Never
// raises SIGPIPE. TLS: 1.2 or newer; the server's certificate is verified
// against options.ca_file (else the system's CAs) and must name the URL's
// host (a name, with SNI, or an IP address); a failed handshake or an
// untrusted certificate throws HttpError of kind Tls before anything is sent.
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "adminclient/http_response.hpp"
#include "adminclient/url.hpp"

namespace mailgate::adminclient {

class HttpError : public std::runtime_error {
 public:
  enum class Kind {
    Resolve,   // the host name did not resolve
    Connect,   // no address accepted the connection
    Timeout,   // connect, send or receive took longer than the timeout
    Io,        // the connection failed after it was established
    Protocol,  // the peer did not answer with a valid HTTP response
    Tls,       // https: the handshake failed or the certificate is not trusted
  };
  HttpError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct HttpOptions {
  std::chrono::milliseconds timeout{10'000};
  std::size_t max_response = kMaxResponseSize;
  std::string ca_file;  // https: PEM certificates to trust; empty: the system's CAs
};

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";  // path and query, already percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;  // besides Host, Connection, length
  std::string body;
};

// The bytes sent for `request` to `url`: the request line (target prefixed by
// url.base_path), Host, the caller's headers, Content-Length (for a body or a
// POST/PUT/PATCH/DELETE), Connection: close. Throws std::invalid_argument if
// the method, target or a header contains CR, LF or other control characters.
std::string format_request(const Url& url, const HttpRequest& request);

HttpResponse http_request(const Url& url, const HttpRequest& request,
                          const HttpOptions& options = {});

}  // namespace mailgate::adminclient
