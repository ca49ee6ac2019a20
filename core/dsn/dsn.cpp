// dsn/dsn: see dsn.hpp. Layout of the message (RFC 6522 multipart/report):
//   headers (From MAILER-DAEMON, To <sender>, Subject, Date, Message-ID,
//            Auto-Submitted: auto-replied, MIME-Version, Content-Type)
//   1. text/plain: human-readable explanation, one paragraph per recipient
//   2. message/delivery-status (RFC 3464) or message/global-delivery-status
//      (RFC 6533): per-message block, then one block per recipient
//   3. optional: message/rfc822 | text/rfc822-headers, or message/global |
//      message/global-headers when the DSN is global and the original's header
//      section is not ASCII
#include "dsn/dsn.hpp"

#include <fmt/format.h>
#include <chrono>
#include <initializer_list>
#include <utility>

#include "dsn/text.hpp"
#include "mime/date.hpp"
#include "mime/header_section.hpp"
#include "text/ascii.hpp"

namespace mailgate::dsn {
namespace {

using detail::fold;
using detail::sanitize;
using text::is_ascii;

constexpr std::size_t kMaxAddress = 900;      // fits one line with any field name
constexpr std::size_t kMaxDiagnostic = 8000;  // folded over several lines
constexpr std::size_t kMaxHost = 255;
constexpr std::size_t kTextWidth = 76;

enum class Kind { Failure, Delay, Success };

// DSN times are milliseconds since the epoch, as the spool keeps them.
std::string rfc5322_date(std::int64_t unix_ms) {
  return mime::rfc5322_date(
      std::chrono::sys_time<std::chrono::milliseconds>(std::chrono::milliseconds(unix_ms)));
}

Kind kind_of(const DsnInput& in) {
  bool delayed = false;
  for (const auto& r : in.recipients) {
    if (r.action == Action::Failed) return Kind::Failure;
    if (r.action == Action::Delayed) delayed = true;
  }
  return delayed ? Kind::Delay : Kind::Success;
}

std::string_view action_name(Action a) {
  switch (a) {
    case Action::Failed:
      return "failed";
    case Action::Delayed:
      return "delayed";
    case Action::Delivered:
      return "delivered";
    case Action::Relayed:
      return "relayed";
  }
  return "failed";
}

// RFC 3463 status-code: class "." subject "." detail, class 2/4/5, 1-3 digits each.
bool valid_status(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ++i;
      ++digits;
    }
    if (digits == 0 || digits > 3) return false;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

std::string status_of(const RecipientReport& r) {
  if (valid_status(r.status)) return r.status;
  switch (r.action) {
    case Action::Failed:
      return "5.0.0";
    case Action::Delayed:
      return "4.0.0";
    default:
      return "2.0.0";
  }
}

// "250 ...", "550-...", "421": an SMTP reply, reported as diagnostic type smtp.
bool looks_like_smtp_reply(std::string_view d) {
  return d.size() >= 3 && d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' &&
         d[2] <= '9' && (d.size() == 3 || d[3] == ' ' || d[3] == '-');
}

// ORCPT "type;address" → {type, address}; type empty when malformed.
std::pair<std::string, std::string> split_orcpt(std::string_view orcpt, bool utf8) {
  const std::size_t semi = orcpt.find(';');
  if (semi == std::string_view::npos) return {};
  std::string type = detail::clean_token(orcpt.substr(0, semi), false, 32, "");
  std::string addr = sanitize(orcpt.substr(semi + 1), utf8, kMaxAddress);
  if (type.empty() || addr.empty()) return {};
  return {std::move(type), std::move(addr)};
}

std::string subject_of(Kind k) {
  switch (k) {
    case Kind::Failure:
      return "Undelivered Mail Returned to Sender";
    case Kind::Delay:
      return "Delayed Mail (still being retried)";
    case Kind::Success:
      break;
  }
  return "Successful Mail Delivery Report";
}

// Appends a paragraph wrapped at kTextWidth.
void paragraph(std::string& out, std::string_view text) { fold(out, "", text, "", kTextWidth); }

std::string text_part(const DsnInput& in, Kind kind, bool utf8, std::string_view host,
                      Returned returned) {
  std::string out;
  paragraph(out, fmt::format("This is the mail delivery system at {}.", host));
  out.append("\r\n");
  switch (kind) {
    case Kind::Failure:
      paragraph(out,
                "Your message could not be delivered to one or more recipients. This is a "
                "permanent error: the mail system will not try again. The recipients and the "
                "reasons are listed below.");
      break;
    case Kind::Delay:
      paragraph(out,
                "Your message has not been delivered yet to the recipients listed below. This "
                "is only a warning: the mail system keeps trying, and you do not need to send "
                "the message again.");
      break;
    case Kind::Success:
      paragraph(out,
                "Your message was delivered to the recipients listed below, as you asked to be "
                "told.");
      break;
  }
  for (const auto& r : in.recipients) {
    out.append("\r\n");
    const std::string addr = sanitize(r.final_recipient, utf8, kMaxAddress);
    std::string_view what = "delivery failed";
    switch (r.action) {
      case Action::Failed:
        break;
      case Action::Delayed:
        what = "delivery delayed, still being retried";
        break;
      case Action::Delivered:
        what = "delivered";
        break;
      case Action::Relayed:
        what =
            "relayed to a mail server that does not send delivery notifications; "
            "no further notice will follow";
        break;
    }
    fold(out, "", fmt::format("<{}>: {} (status {})", addr, what, status_of(r)), "    ",
         kTextWidth);
    if (const auto mta = sanitize(r.remote_mta, utf8, kMaxHost); !mta.empty()) {
      fold(out, "    Remote server: ", mta, "    ", kTextWidth);
    }
    if (const auto diag = sanitize(r.diagnostic, utf8, kMaxDiagnostic); !diag.empty()) {
      fold(out, looks_like_smtp_reply(diag) ? "    It said: " : "    Reason: ", diag, "    ",
           kTextWidth);
    }
    if (r.action == Action::Delayed && r.will_retry_until_ms > 0) {
      fold(out, "    Retrying until: ", rfc5322_date(r.will_retry_until_ms), "    ", kTextWidth);
    }
  }
  out.append("\r\n");
  switch (returned) {
    case Returned::Full:
      paragraph(out, "The original message is attached.");
      break;
    case Returned::Headers:
      paragraph(out, "The header section of the original message is attached.");
      break;
    case Returned::None:
      break;
  }
  return out;
}

std::string status_part(const DsnInput& in, bool utf8, std::string_view host) {
  std::string out;
  if (!in.envid.empty()) {
    // The stored ENVID is decoded; the field carries it xtext-encoded again
    // (ASCII whatever it holds).
    fold(out, "Original-Envelope-Id: ", smtp::xtext_encode(in.envid), " ");
  }
  fold(out, "Reporting-MTA: dns; ", host, " ");
  if (in.arrival_ms > 0) fold(out, "Arrival-Date: ", rfc5322_date(in.arrival_ms), " ");
  for (const auto& r : in.recipients) {
    out.append("\r\n");
    if (auto [type, addr] = split_orcpt(r.original_recipient, utf8); !type.empty()) {
      out.append("Original-Recipient: ").append(type).append(";").append(addr).append("\r\n");
    }
    std::string addr = sanitize(r.final_recipient, utf8, kMaxAddress);
    if (addr.empty()) addr = "unknown";
    out.append("Final-Recipient: ")
        .append(is_ascii(addr) ? "rfc822; " : "utf-8; ")
        .append(addr)
        .append("\r\n");
    out.append("Action: ").append(action_name(r.action)).append("\r\n");
    out.append("Status: ").append(status_of(r)).append("\r\n");
    if (const auto mta = sanitize(r.remote_mta, utf8, kMaxHost); !mta.empty()) {
      fold(out, "Remote-MTA: dns; ", mta, " ");
    }
    if (const auto diag = sanitize(r.diagnostic, utf8, kMaxDiagnostic); !diag.empty()) {
      fold(
          out,
          looks_like_smtp_reply(diag) ? "Diagnostic-Code: smtp; " : "Diagnostic-Code: X-mailgate; ",
          diag, " ");
    }
    if (r.last_attempt_ms > 0) {
      out.append("Last-Attempt-Date: ").append(rfc5322_date(r.last_attempt_ms)).append("\r\n");
    }
    if (r.action == Action::Delayed && r.will_retry_until_ms > 0) {
      out.append("Will-Retry-Until: ").append(rfc5322_date(r.will_retry_until_ms)).append("\r\n");
    }
  }
  return out;
}

// Header section cut to at most `max` octets at a field boundary (a line that
// does not start with WSP).
std::string_view capped_headers(std::string_view headers, std::uint64_t max) {
  if (headers.size() <= max) return headers;
  std::size_t keep = 0;  // end of the last complete field that fits
  std::size_t pos = 0;
  while (pos < headers.size()) {
    if (pos > max) break;
    if (pos > 0 && headers[pos] != ' ' && headers[pos] != '\t') keep = pos;
    std::size_t eol = headers.find_first_of("\r\n", pos);
    if (eol == std::string_view::npos) break;
    pos = eol +
          ((headers[eol] == '\r' && eol + 1 < headers.size() && headers[eol + 1] == '\n') ? 2 : 1);
  }
  return headers.substr(0, keep);
}

bool contains_any(std::string_view needle, std::initializer_list<std::string_view> hay) {
  for (auto h : hay) {
    if (h.find(needle) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

bool wants_report(std::uint8_t notify_bits, Action a) {
  if (notify_bits & smtp::kNotifyNever) return false;
  if (notify_bits == smtp::kNotifyUnspecified) {
    return a == Action::Failed || a == Action::Delayed;
  }
  switch (a) {
    case Action::Failed:
      return notify_bits & smtp::kNotifyFailure;
    case Action::Delayed:
      return notify_bits & smtp::kNotifyDelay;
    case Action::Delivered:
    case Action::Relayed:
      return notify_bits & smtp::kNotifySuccess;
  }
  return false;
}

bool may_send_dsn(std::string_view envelope_sender) {
  return !envelope_sender.empty() && envelope_sender != "<>";
}

DsnInput input_from_envelope(const spool::Envelope& env) {
  DsnInput in;
  in.original_sender = env.sender;
  in.envid = env.envid;
  in.ret = env.ret <= static_cast<std::uint8_t>(smtp::Ret::Hdrs) ? static_cast<smtp::Ret>(env.ret)
                                                                 : smtp::Ret::Unspecified;
  in.smtputf8 = env.smtputf8;
  in.arrival_ms = env.received_ms;
  return in;
}

bool is_global(const DsnInput& in) {
  if (in.smtputf8 || !is_ascii(in.original_sender)) return true;
  for (const auto& r : in.recipients) {
    if (!is_ascii(r.final_recipient) || !is_ascii(r.original_recipient)) return true;
  }
  return false;
}

std::string_view header_section(std::string_view message) {
  return message.substr(0, mime::header_section_length(message));
}

Returned returned_content(const DsnInput& in) {
  if (in.original_message.empty()) return Returned::None;
  if (kind_of(in) == Kind::Failure && in.ret != smtp::Ret::Hdrs &&
      in.original_message.size() <= in.max_returned_body) {
    return Returned::Full;
  }
  return capped_headers(header_section(in.original_message), in.max_returned_body).empty()
             ? Returned::None
             : Returned::Headers;
}

bool has_8bit(std::string_view message) { return !is_ascii(message); }

std::string build(const DsnInput& in) {
  if (!may_send_dsn(in.original_sender) || in.recipients.empty()) return {};
  const bool global = is_global(in);
  const Kind kind = kind_of(in);
  const std::string host = detail::clean_token(in.reporting_mta, true, kMaxHost, "localhost");
  const std::string id_domain =
      in.message_id_domain.empty()
          ? host
          : detail::clean_token(in.message_id_domain, true, kMaxHost, host);
  const std::string id = detail::clean_token(in.dsn_id, false, 64, fmt::format("{}", in.now_ms));

  // Part 3 first: the boundary must not occur in it.
  const Returned returned = returned_content(in);
  std::string original;
  std::string_view original_type;
  if (returned != Returned::None) {
    const std::string_view headers = header_section(in.original_message);
    const bool utf8_headers = global && !is_ascii(headers);
    if (returned == Returned::Full) {
      detail::normalize_lines(in.original_message, original);
      original_type = utf8_headers ? "message/global" : "message/rfc822";
    } else {
      detail::normalize_lines(capped_headers(headers, in.max_returned_body), original);
      original_type = utf8_headers ? "message/global-headers" : "text/rfc822-headers";
    }
  }
  const std::string text = text_part(in, kind, global, host, returned);
  const std::string status = status_part(in, global, host);

  // Boundary from the DSN id; perturbed until no part contains it.
  const std::string base = fmt::format("=_mailgate-dsn-{}", id.substr(0, 48));
  std::string boundary = base;
  for (unsigned n = 1; contains_any(boundary, {text, status, original}); ++n) {
    boundary = fmt::format("{}.{}", base, n);
  }

  const std::string sender = sanitize(in.original_sender, global, kMaxAddress);
  std::string out;
  out.reserve(original.size() + text.size() + status.size() + 1024);
  out.append("From: Mail Delivery System <MAILER-DAEMON@").append(host).append(">\r\n");
  out.append("To: <").append(sender).append(">\r\n");
  out.append("Subject: ").append(subject_of(kind)).append("\r\n");
  out.append("Date: ").append(rfc5322_date(in.now_ms)).append("\r\n");
  out.append("Message-ID: <").append(id).append("@").append(id_domain).append(">\r\n");
  out.append("Auto-Submitted: auto-replied\r\n");
  out.append("MIME-Version: 1.0\r\n");
  out.append("Content-Type: multipart/report; report-type=delivery-status;\r\n");
  out.append("\tboundary=\"").append(boundary).append("\"\r\n");
  out.append("\r\n");
  out.append("This is a MIME-encapsulated message.\r\n");

  const auto part = [&](std::string_view headers, std::string_view body) {
    out.append("\r\n--").append(boundary).append("\r\n");
    out.append(headers).append("\r\n").append(body);
  };
  const bool text_ascii = is_ascii(text);
  part(text_ascii ? "Content-Description: Notification\r\n"
                    "Content-Type: text/plain; charset=us-ascii\r\n"
                  : "Content-Description: Notification\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n",
       text);
  const bool status_ascii = is_ascii(status);
  part(fmt::format("Content-Description: Delivery report\r\n"
                   "Content-Type: {}\r\n{}",
                   global ? "message/global-delivery-status" : "message/delivery-status",
                   status_ascii ? "" : "Content-Transfer-Encoding: 8bit\r\n"),
       status);
  if (returned != Returned::None) {
    part(
        fmt::format("Content-Description: {}\r\n"
                    "Content-Type: {}\r\n{}",
                    returned == Returned::Full ? "Original message" : "Original message headers",
                    original_type, is_ascii(original) ? "" : "Content-Transfer-Encoding: 8bit\r\n"),
        original);
  }
  out.append("\r\n--").append(boundary).append("--\r\n");
  return out;
}

}  // namespace mailgate::dsn
