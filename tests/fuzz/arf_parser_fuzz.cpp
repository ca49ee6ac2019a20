// Fuzz target: feedback::parse_arf (complaints, RFC 5965, from untrusted
// senders).
// Invariants checked:
//  - never crashes, hangs or reads out of bounds (ASan, UBSan);
//  - an accepted report has a non-empty lower-case Feedback-Type and the
//    top-level type multipart/report;
//  - every Original-Rcpt-To and returned To: address is well formed and at
//    most 100 of each are kept;
//  - a Message-ID, if any, is "<...@...>" of at most 998 octets.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "feedback/report_mime.hpp"
#include "feedback/reports.hpp"
#include "fuzz_check.hpp"

using namespace mailgate;
using mailgate::fuzz::show;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  feedback::ComplaintReport c;
  std::string why;
  if (!feedback::parse_arf(in, c, why)) {
    FUZZ_CHECK(!why.empty(), "refused without a reason");
    return 0;
  }
  FUZZ_CHECK(!c.feedback_type.empty(), "accepted without Feedback-Type");
  for (char ch : c.feedback_type)
    FUZZ_CHECK(!(ch >= 'A' && ch <= 'Z'), "feedback type not lower case " + show(c.feedback_type));
  FUZZ_CHECK(c.original_rcpt_to.size() <= 100 && c.returned_to.size() <= 100, "too many addresses");
  for (const auto* list : {&c.original_rcpt_to, &c.returned_to})
    for (const auto& a : *list) FUZZ_CHECK(feedback::report_address(a) == a, "address " + show(a));
  if (!c.original_message_id.empty())
    FUZZ_CHECK(c.original_message_id.size() <= 998 && c.original_message_id.front() == '<' &&
                   c.original_message_id.back() == '>',
               "message id " + show(c.original_message_id));
  return 0;
}
