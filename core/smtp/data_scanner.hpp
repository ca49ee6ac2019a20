// smtp/data_scanner: the DATA (and BDAT) body scanner.
// Promises for DATA mode:
//  - only <CRLF>.<CRLF> ends the data (the first line may be "." directly,
//    since the DATA command's own CRLF precedes it);
//  - leading dots are un-stuffed (RFC 5321 §4.5.2);
//  - a bare CR or bare LF anywhere is reported (SMTP smuggling defence) but
//    scanning continues to the real terminator so the session stays in sync;
//  - a line longer than `max_line` octets (excluding CRLF) is reported;
//  - output is produced only while `out.size() < limit`; beyond that the
//    scanner keeps consuming and counting (message too big) without storing.
// In BDAT mode there is no terminator and no un-stuffing; the same checks run
// across chunk boundaries. Scanning is memchr-driven: no per-byte calls.
// It also counts "Received:" header fields in the header section (hop count).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mailgate::smtp {

class DataScanner {
 public:
  enum class Mode { Dot, Chunk };

  explicit DataScanner(Mode mode = Mode::Dot, std::size_t max_line = 998);

  struct Step {
    std::size_t consumed = 0;  // bytes of `in` used (includes the terminator when done)
    bool done = false;         // Dot mode: end-of-data seen
  };

  // Scans `in`, appending message content (CRLF line ends, un-stuffed) to `out`
  // while out.size() < `limit` (bytes past the limit are counted, not stored).
  Step feed(std::string_view in, std::string& out, std::size_t limit = SIZE_MAX);

  // Chunk mode: call after the LAST chunk. Reports a message not ending in
  // CRLF as fine (callers append CRLF); returns nothing, flags stay readable.
  void finish();

  bool bare_cr() const { return bare_cr_; }
  bool bare_lf() const { return bare_lf_; }
  bool line_too_long() const { return line_too_long_; }
  std::uint64_t total_bytes() const { return total_; }  // content bytes after un-stuffing
  bool truncated() const { return truncated_; }         // some content was not stored (limit)
  unsigned received_headers() const { return received_; }
  bool ends_with_crlf() const;  // meaningful after done/finish
  void reset(Mode mode);

 private:
  // implementation state; see data_scanner.cpp
  enum State : std::uint8_t { kLineStart, kDot, kDotCr, kMid, kCr, kDone };
  static constexpr std::uint8_t kHdrDecided = 9;  // "Received" matcher: line decided

  void flush(const char* from, const char* to, std::string& out, std::size_t limit);
  void scan_header(const char* p, const char* q);

  Mode mode_;
  std::size_t max_line_;
  std::size_t line_len_ = 0;         // wire octets of the current line so far (excl. CRLF)
  std::uint8_t state_ = kLineStart;  // DFA state across feed() calls
  std::uint8_t hdr_ = 0;             // octets of "received" matched (8: then WSP* ':')
  bool in_headers_ = true;
  bool bare_cr_ = false, bare_lf_ = false, line_too_long_ = false, truncated_ = false;
  std::uint64_t total_ = 0;
  unsigned received_ = 0;
  char last_[2] = {0, 0};  // last two content octets (for ends_with_crlf)
};

}  // namespace mailgate::smtp
