// smtp/data_scanner: DATA / BDAT body scanning (RFC 5321 §4.1.1.4, §4.5.2,
// RFC 3030), with SMTP-smuggling checks, line-length checks and hop counting.
// Promises (see data_scanner.hpp): only <CRLF>.<CRLF> ends DATA; un-stuffing;
// bare CR / bare LF are flagged (never treated as line ends); the state carries
// over feed() calls so any fragmentation gives the same result; input is
// scanned with memchr and copied to `out` in whole spans (no per-byte calls,
// no allocation other than `out` growing). Line lengths are measured on the
// wire form (a stuffed leading dot counts), so a line that passes cannot exceed
// the limit when dot-stuffed again on delivery.
//
// DFA (states persist across feed() calls):
//   kLineStart  next octet starts a line (after CRLF; also the initial state)
//   kDot        DATA: line began with '.', which was dropped
//   kDotCr      DATA: ".\r" at line start; LF next = end of data (the CR is
//               held back, not yet emitted)
//   kMid        inside a line
//   kCr         inside a line, the last octet was a CR (already emitted)
//   kDone       DATA: terminator seen
#include "smtp/data_scanner.hpp"

#include <cstring>

namespace mailgate::smtp {

DataScanner::DataScanner(Mode mode, std::size_t max_line) : mode_(mode), max_line_(max_line) {}

void DataScanner::reset(Mode mode) {
  const std::size_t max_line = max_line_;
  *this = DataScanner(mode, max_line);
}

bool DataScanner::ends_with_crlf() const {
  return total_ >= 2 && last_[0] == '\r' && last_[1] == '\n';
}

void DataScanner::finish() {
  if (state_ == kCr || state_ == kDotCr) {
    // The message ends with a CR that no LF followed.
    bare_cr_ = true;
    if (line_len_ > max_line_) line_too_long_ = true;
    state_ = kMid;
  }
}

inline void DataScanner::flush(const char* from, const char* to, std::string& out,
                               std::size_t limit) {
  const auto n = static_cast<std::size_t>(to - from);
  if (n == 0) return;
  total_ += n;
  if (n >= 2) {
    last_[0] = to[-2];
    last_[1] = to[-1];
  } else {
    last_[0] = last_[1];
    last_[1] = from[0];
  }
  if (out.size() < limit) {
    const std::size_t room = limit - out.size();
    if (n <= room) {
      out.append(from, n);
    } else {
      out.append(from, room);
      truncated_ = true;
    }
  } else {
    truncated_ = true;
  }
}

// Matches the start of a header line against "received" *WSP ":".
inline void DataScanner::scan_header(const char* p, const char* q) {
  static constexpr char kName[] = "received";
  for (; p < q; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (hdr_ < 8) {
      if ((c | 0x20) != static_cast<unsigned char>(kName[hdr_])) {
        hdr_ = kHdrDecided;
        return;
      }
      ++hdr_;
    } else {
      if (c == ':') {
        ++received_;
        hdr_ = kHdrDecided;
        return;
      }
      if (c != ' ' && c != '\t') {
        hdr_ = kHdrDecided;
        return;
      }
    }
  }
}

DataScanner::Step DataScanner::feed(std::string_view in, std::string& out, std::size_t limit) {
  if (state_ == kDone) return {0, true};
  const char* const begin = in.data();
  const char* const end = begin + in.size();
  const char* p = begin;
  const char* run = begin;  // start of content not yet flushed to `out`

  // The next LF at or after a position, cached so that a run of bare CRs
  // cannot make scanning quadratic.
  const char* nl_cache = nullptr;
  bool no_more_nl = false;
  auto next_nl = [&](const char* from) -> const char* {
    if (no_more_nl) return nullptr;
    if (nl_cache != nullptr && nl_cache >= from) return nl_cache;
    nl_cache =
        static_cast<const char*>(std::memchr(from, '\n', static_cast<std::size_t>(end - from)));
    if (nl_cache == nullptr) no_more_nl = true;
    return nl_cache;
  };

  while (p < end) {
    switch (state_) {
      case kLineStart:
        line_len_ = 0;
        if (mode_ == Mode::Dot && *p == '.') {
          flush(run, p, out, limit);
          ++p;
          run = p;
          line_len_ = 1;  // the stuffing dot counts towards the wire line length
          state_ = kDot;
          continue;
        }
        hdr_ = in_headers_ ? 0 : kHdrDecided;
        state_ = kMid;
        [[fallthrough]];
      case kMid: {
        const char* nl = next_nl(p);
        const char* lim = nl != nullptr ? nl : end;
        const char* cr =
            static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(lim - p)));
        if (cr != nullptr && cr + 1 == nl) {
          // The common case: the rest of the line, then CRLF.
          const std::size_t len = line_len_ + static_cast<std::size_t>(cr - p);
          if (hdr_ < kHdrDecided) scan_header(p, cr);
          if (len == 0) in_headers_ = false;  // the empty line ends the header section
          if (len > max_line_) line_too_long_ = true;
          p = nl + 1;
          state_ = kLineStart;
          continue;
        }
        if (cr != nullptr) {
          // A CR that is not directly followed by LF in this input.
          if (hdr_ < kHdrDecided) {
            scan_header(p, cr);
            hdr_ = kHdrDecided;
          }
          line_len_ += static_cast<std::size_t>(cr - p) + 1;
          p = cr + 1;
          if (p == end) {
            state_ = kCr;  // undecided until the next octet arrives
          } else {
            bare_cr_ = true;  // *p is not LF: `nl` is the first LF after p
            if (line_len_ > max_line_) line_too_long_ = true;
          }
          continue;
        }
        // No CR before the next LF (or the end of input).
        if (hdr_ < kHdrDecided) scan_header(p, lim);
        line_len_ += static_cast<std::size_t>(lim - p);
        if (nl != nullptr) {
          bare_lf_ = true;  // content octet, not a line end
          hdr_ = kHdrDecided;
          ++line_len_;
          p = nl + 1;
        } else {
          p = end;
        }
        if (line_len_ > max_line_) line_too_long_ = true;
        continue;
      }
      case kCr:
        // The previous octet (in an earlier input) was a CR, already flushed.
        if (*p == '\n') {
          const std::size_t len = line_len_ - 1;
          if (len == 0) in_headers_ = false;
          if (len > max_line_) line_too_long_ = true;
          ++p;
          state_ = kLineStart;
          continue;
        }
        bare_cr_ = true;
        if (line_len_ > max_line_) line_too_long_ = true;
        state_ = kMid;
        continue;
      case kDot:
        if (*p == '\r') {
          ++p;
          run = p;  // hold the CR back: ".\r\n" is the terminator
          state_ = kDotCr;
          continue;
        }
        hdr_ = in_headers_ ? 0 : kHdrDecided;
        state_ = kMid;
        continue;
      case kDotCr: {
        if (*p == '\n') {
          ++p;
          state_ = kDone;
          return {static_cast<std::size_t>(p - begin), true};
        }
        // ".\r" + something else: the dot was stuffing, the CR is a bare CR.
        static constexpr char kCrByte[] = "\r";
        flush(run, p, out, limit);
        flush(kCrByte, kCrByte + 1, out, limit);
        run = p;
        bare_cr_ = true;
        hdr_ = kHdrDecided;
        line_len_ = 2;
        if (line_len_ > max_line_) line_too_long_ = true;
        state_ = kMid;
        continue;
      }
      case kDone:
        return {static_cast<std::size_t>(p - begin), true};
    }
  }
  flush(run, p, out, limit);
  return {static_cast<std::size_t>(p - begin), false};
}

}  // namespace mailgate::smtp
