// smtp/reply_parser: incremental parser of SMTP server replies (client side,
// RFC 5321 §4.2, RFC 2034 enhanced status codes).
// Promises:
//  - feed() consumes bytes up to and including the end of ONE complete reply
//    and then stops, so pipelined replies in one buffer come out one at a time;
//    any fragmentation of the input gives the same result;
//  - lines may end in CRLF or in a bare LF (servers are not always strict);
//    neither is flagged;
//  - a reply is malformed (error()) when a line is not "DDD", "DDD TEXT" or
//    "DDD-TEXT" with DDD in 200..599, when the lines of one reply carry
//    different codes, when a line exceeds `max_line` octets (CR/LF excluded),
//    or when the reply has more than `max_lines` lines. Memory stays bounded by
//    the limits. An error is terminal: the stream is out of sync and the
//    connection should be dropped; feed() consumes nothing more until take()
//    or reset();
//  - Reply::text holds the lines' texts joined by '\n', without the code
//    prefixes; control characters in it (other than HT) are replaced by '?', so
//    the text can go into logs and DSNs as-is;
//  - Reply::enhanced is the enhanced status code ("class.subject.detail",
//    class 2/4/5 matching the reply code's class, 2 for 3xx replies, subject and
//    detail 1-3 digits) when the first line's text starts with one followed by
//    a space or the end of the line. That code and one space after it are then
//    stripped from the start of every line that carries it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "smtp/reply.hpp"

namespace mailgate::smtp {

class ReplyParser {
 public:
  explicit ReplyParser(std::size_t max_line = 4096, std::size_t max_lines = 200);

  // Feeds bytes; returns how many were consumed. Stops right after a complete
  // reply (done()) or at a malformed one (error()); returns 0 while either holds.
  std::size_t feed(std::string_view in);

  bool done() const { return done_; }    // a complete, well-formed reply is ready
  bool error() const { return error_; }  // malformed reply: terminal until take()/reset()

  // Returns the reply (partial when not done()) and resets for the next one.
  Reply take();
  void reset();

 private:
  void line(std::string_view l);  // one line, line end removed
  void fail();

  std::size_t max_line_, max_lines_;
  std::string partial_;  // a line split across feed() calls
  Reply reply_;
  std::size_t lines_ = 0;
  bool done_ = false, error_ = false;
};

// Length of the enhanced status code at the start of `s` ("5.1.1" -> 5): class
// 2, 4 or 5, then "." 1-3 digits "." 1-3 digits, not followed by another digit
// or '.'; 0 when `s` does not start with one.
std::size_t enhanced_code_length(std::string_view s);

}  // namespace mailgate::smtp
