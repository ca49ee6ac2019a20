// feedback/reports: parsers of inbound feedback, from untrusted bytes:
// - parse_dsn(): asynchronous bounces. RFC 3464 multipart/report with a
//   message/delivery-status part (also message/global-delivery-status), and
//   the common non-standard plain-text shapes (Exim "The following
//   address(es) failed", qmail "<addr>:" paragraphs, Postfix-like "<addr>:
//   ... said: 550 5.1.1 ...") where a line names the address and a status
//   code follows it.
// - parse_arf(): complaints, RFC 5965 multipart/report;
//   report-type=feedback-report.
// Promises: pure and bounded (report_mime.hpp limits); a recipient is
// reported only when the report names a well-formed address for it (never
// guessed from free text around it) and, for bounces, a permanent (5xx /
// 5.x.x) failure; a report that cannot be read returns false with `why`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailgate::feedback {

struct FailedRecipient {
  std::string recipient;           // Final-Recipient (or the address line)
  std::string original_recipient;  // Original-Recipient, "" if absent
  int code = 0;                    // from Diagnostic-Code, else 550 / 450 from the status class
  std::string status;              // "5.1.1" ("" when the report gave only a code)
  std::string text;                // diagnostic text (one line, bounded)
  std::string remote_mta;
};

struct DsnReport {
  bool standard = false;  // RFC 3464 (false: a plain-text shape)
  std::string reporting_mta;
  std::vector<FailedRecipient> failed;  // Action: failed only (delays are not bounces)
  std::string original_message_id;      // of the returned message or headers
  std::string original_envid;
};
bool parse_dsn(std::string_view message, DsnReport& out, std::string& why);

struct ComplaintReport {
  std::string feedback_type;  // abuse, fraud, virus, other, not-spam, ... (lower case)
  std::string user_agent;
  std::string original_mail_from;
  std::vector<std::string> original_rcpt_to;
  std::vector<std::string> returned_to;  // To: of the returned headers (candidates only)
  std::string original_message_id;
  std::string reported_domain;
  std::string source_ip;
};
bool parse_arf(std::string_view message, ComplaintReport& out, std::string& why);

// Printable one-line text of at most `max` octets (control characters → ' ').
std::string one_line(std::string_view text, std::size_t max = 512);

}  // namespace mailgate::feedback
