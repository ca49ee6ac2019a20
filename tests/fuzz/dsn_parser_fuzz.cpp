// Fuzz target: feedback::parse_dsn (asynchronous bounces from untrusted
// senders: RFC 3464 and the plain-text shapes).
// Invariants checked:
//  - never crashes, hangs or reads out of bounds (ASan, UBSan);
//  - every failed recipient is a well-formed address the input contains
//    (report_address() accepts it and it occurs in the input, unless a part
//    is transfer-encoded: nothing is invented), with a 5xx code and, if any, a 5.x.x status;
//  - texts are one printable line of at most 512 octets;
//  - at most kMaxFields recipients; a Message-ID, if any, is "<...@...>".
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "feedback/report_mime.hpp"
#include "feedback/reports.hpp"
#include "fuzz_check.hpp"
#include "text/ascii.hpp"

using namespace mailgate;
using mailgate::fuzz::show;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  feedback::DsnReport r;
  std::string why;
  const bool ok = feedback::parse_dsn(in, r, why);
  FUZZ_CHECK(ok || !why.empty(), "refused without a reason");
  FUZZ_CHECK(r.failed.size() <= feedback::kMaxFields, "too many recipients");
  const auto lower = text::to_lower(in);
  for (const auto& f : r.failed) {
    FUZZ_CHECK(feedback::report_address(f.recipient) == f.recipient,
               "address " + show(f.recipient));
    // (A transfer-encoded part may hold it encoded.)
    const bool encoded = lower.find("base64") != std::string::npos ||
                         lower.find("quoted-printable") != std::string::npos;
    FUZZ_CHECK(encoded || lower.find(text::to_lower(f.recipient)) != std::string::npos,
               "invented address " + show(f.recipient));
    FUZZ_CHECK(f.code >= 500 && f.code <= 599, "code " + std::to_string(f.code));
    FUZZ_CHECK(f.status.empty() || f.status[0] == '5', "status " + show(f.status));
    FUZZ_CHECK(f.text.size() <= 512, "text too long");
    for (char c : f.text)
      FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "control in " + show(f.text));
  }
  if (!r.original_message_id.empty())
    FUZZ_CHECK(r.original_message_id.front() == '<' && r.original_message_id.back() == '>' &&
                   r.original_message_id.find('@') != std::string::npos,
               "message id " + show(r.original_message_id));
  return 0;
}
