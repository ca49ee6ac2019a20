// smtp/dot_stuffer: streaming DATA encoder for the SMTP client (RFC 5321
// §4.5.2, §4.1.1.4).
// Promises:
//  - a '.' at the start of a line is doubled; the state carries across feed()
//    calls, so any split of the body gives byte-identical output;
//  - only CRLF line ends reach the wire: CRLF is kept, and a bare LF or a bare
//    CR in the input becomes CRLF (so "\r\r\n" is two line ends) — nothing this
//    encoder emits can be read as a different end of data by the next hop;
//  - finish() appends CRLF when the body did not end with a line end, then the
//    terminator ".\r\n" (an empty body gives just ".\r\n"), and resets the
//    encoder for the next message;
//  - input is scanned with memchr and copied in whole spans; a body without
//    leading dots or stray CR/LF costs one append per feed().
#pragma once

#include <string>
#include <string_view>

namespace mailgate::smtp {

class DotStuffer {
 public:
  // Appends the encoded form of the next part of the body to `out`.
  void feed(std::string_view body_part, std::string& out);
  // Ends the body: line end if needed, then ".\r\n". The encoder is then reset.
  void finish(std::string& out);
  void reset() { *this = DotStuffer(); }

 private:
  bool line_start_ = true;  // the next input octet starts a line
  bool after_cr_ = false;   // the last input octet was a CR (already emitted as CRLF)
};

}  // namespace mailgate::smtp
