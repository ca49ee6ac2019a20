// smtp/dot_stuffer: dot-stuffing and line-end normalization of outgoing DATA.
// Promises (see dot_stuffer.hpp): output lines end in CRLF only, leading dots
// are doubled, any fragmentation gives the same output. A CR is emitted as
// CRLF as soon as it is seen (so nothing is held back between calls); an LF
// directly after it (even in the next call) is then swallowed. The position
// of the next LF is cached so a line full of bare CRs stays linear.
#include "smtp/dot_stuffer.hpp"

#include <cstring>

namespace mailgate::smtp {

void DotStuffer::feed(std::string_view body_part, std::string& out) {
  const char* p = body_part.data();
  const char* const end = p + body_part.size();
  if (p == end) return;
  if (after_cr_) {
    after_cr_ = false;
    if (*p == '\n') ++p;  // completes the CRLF already emitted
  }
  const char* run = p;  // start of input not yet copied to `out`
  const char* nl = nullptr;
  bool no_more_nl = false;
  while (p < end) {
    if (line_start_) {
      line_start_ = false;
      if (*p == '.') {
        out.append(run, p);
        out.push_back('.');  // the original dot stays at the head of the run
        run = p;
      }
    }
    if (!no_more_nl && (nl == nullptr || nl < p)) {
      nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      no_more_nl = nl == nullptr;
    }
    const char* lim = no_more_nl ? end : nl;
    const auto* cr =
        static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(lim - p)));
    if (cr == nullptr) {
      if (no_more_nl) {
        p = end;  // the line continues in the next part
        break;
      }
      // Bare LF: becomes CRLF.
      out.append(run, nl);
      out.append("\r\n", 2);
      p = run = nl + 1;
      line_start_ = true;
      continue;
    }
    if (cr + 1 == lim && !no_more_nl) {
      p = nl + 1;  // CRLF: stays in the run
      line_start_ = true;
      continue;
    }
    // A CR not followed by LF in this part: emit CRLF now.
    out.append(run, cr + 1);
    out.push_back('\n');
    p = run = cr + 1;
    line_start_ = true;
    if (p == end) after_cr_ = true;  // an LF may follow in the next part
  }
  out.append(run, p);
}

void DotStuffer::finish(std::string& out) {
  if (!line_start_) out.append("\r\n", 2);
  out.append(".\r\n", 3);
  reset();
}

}  // namespace mailgate::smtp
