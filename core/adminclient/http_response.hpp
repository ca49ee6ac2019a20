// adminclient/http_response: an incremental HTTP/1.1 response parser for the
// admin client. Feed it the bytes read from the socket, then tell it about
// EOF. Promises: bodies framed by Content-Length, by chunked
// Transfer-Encoding (extensions and trailers skipped) or by connection close
// are all reassembled; interim 1xx responses are skipped; 204/304 and HEAD
// responses have no body; a response whose bytes on the wire exceed
// max_size, a head over 64 KiB, conflicting Content-Lengths or malformed
// framing end in Status::Error with a one-line reason, never an exception.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mailgate::adminclient {

inline constexpr std::size_t kMaxResponseSize = 64 * 1024 * 1024;
inline constexpr std::size_t kMaxResponseHead = 64 * 1024;

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;

  // The first header called `name` (ASCII case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const;
};

class ResponseParser {
 public:
  enum class Status { NeedMore, Done, Error };

  explicit ResponseParser(std::size_t max_size = kMaxResponseSize, bool head_request = false);

  // Consumes `bytes`; once Done or Error, later input is ignored.
  Status feed(std::string_view bytes);
  // The peer closed the connection: Done for a close-delimited body (or an
  // already complete response), Error otherwise.
  Status finish();

  Status status() const { return status_; }
  const std::string& error() const { return error_; }
  HttpResponse& response() { return response_; }

 private:
  enum class Phase { Head, Fixed, ChunkSize, ChunkData, ChunkEnd, Trailers, UntilClose, Done };

  Status run();
  Status fail(std::string why);
  std::optional<std::string_view> next_line();
  bool head_line(std::string_view line);  // false on error (already failed)
  bool end_of_head();
  void take_body(std::size_t n);
  // Takes what is buffered of the remaining_ bytes of a fixed body or chunk;
  // true when none remain.
  bool take_remaining();

  std::size_t max_size_;
  bool head_request_;
  Status status_ = Status::NeedMore;
  Phase phase_ = Phase::Head;
  std::string error_;
  HttpResponse response_;
  std::string buf_;  // input not consumed yet, from pos_
  std::size_t pos_ = 0;
  std::size_t received_ = 0;   // bytes fed in total
  std::size_t head_size_ = 0;  // bytes of head (or trailer) lines so far
  std::size_t remaining_ = 0;  // of the fixed body or the current chunk
  bool saw_status_line_ = false;
};

}  // namespace mailgate::adminclient
