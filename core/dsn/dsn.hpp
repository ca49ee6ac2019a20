// dsn/dsn: RFC 3464 delivery status notifications (DESIGN §1, §4): who gets one
// (RFC 3461 NOTIFY semantics, never a bounce to the null sender) and the
// complete multipart/report message (RFC 6522) sent from <> to the envelope
// sender through the normal queue.
// Promises: pure functions, no I/O, deterministic for equal inputs; build()
// returns a complete RFC 5322 message with CRLF line ends only, no line over 998
// octets, no NUL, and no input byte able to start a header field or a MIME part
// (CR, LF and other controls in addresses, diagnostics, host names become
// spaces; the boundary never occurs in the content). UTF-8 (addresses, or a
// SMTPUTF8 envelope) switches to the RFC 6533 global types; otherwise every
// octet the DSN itself writes is ASCII.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/params.hpp"
#include "spool/records.hpp"

namespace mailgate::dsn {

// Relayed: handed to a next hop that does not speak DSN (RFC 3461: with
// NOTIFY=SUCCESS we report it, since nobody downstream will). Delivered: final
// delivery. A next hop that speaks DSN gets NOTIFY/ORCPT passed on and no DSN
// from us.
enum class Action { Failed, Delayed, Delivered, Relayed };

struct RecipientReport {
  std::string final_recipient;     // "local@domain" as in the envelope
  std::string original_recipient;  // ORCPT as stored: "type;address", may be empty
  Action action = Action::Failed;
  // "5.1.1"; empty or malformed: 5.0.0 / 4.0.0 / 2.0.0 by action.
  std::string status;
  std::string remote_mta;  // MX host name, may be empty
  // "550 5.1.1 user unknown" (an SMTP reply, multi-line joined) or our own text
  // ("connection refused"); may be empty. Reported as "smtp; ..." when it starts
  // like a reply, else "X-mailgate; ..."; sanitized, at most 8000 octets kept.
  std::string diagnostic;
  std::int64_t last_attempt_ms = 0;      // 0: unknown (field omitted)
  std::int64_t will_retry_until_ms = 0;  // Delayed only; 0: omitted
};

struct DsnInput {
  std::string reporting_mta;      // our hostname (configure{hostname})
  std::string message_id_domain;  // right side of the DSN's Message-ID; empty: reporting_mta
  std::string original_sender;    // the envelope sender: the DSN goes to it
  std::string envid;              // ENVID as stored (xtext-decoded); empty: none
  smtp::Ret ret = smtp::Ret::Unspecified;
  bool smtputf8 = false;  // the original envelope used SMTPUTF8
  std::int64_t arrival_ms = 0;
  std::string dsn_id;  // unique id of the DSN message (its 32-hex message id)
  std::vector<RecipientReport> recipients;
  std::string_view original_message;  // stored bytes, our Received line first
  std::int64_t now_ms = 0;
  std::uint64_t max_returned_body = 2'000'000;
};

// RFC 3461 §4.1 NOTIFY: NEVER → nothing; SUCCESS → Delivered/Relayed;
// FAILURE → Failed; DELAY → Delayed. Unspecified (0) behaves as FAILURE,DELAY
// (failures always; delays are at the MTA's discretion and we send them).
bool wants_report(std::uint8_t notify_bits, Action a);

// false for the null sender ("" as stored, or "<>"): never bounce a bounce.
bool may_send_dsn(std::string_view envelope_sender);

// The per-message part of a DsnInput from the stored envelope (sender, ENVID,
// RET, SMTPUTF8, arrival). The caller adds host names, ids, times, body and the
// recipients it reports (filtered with wants_report(recipient.notify, action)).
DsnInput input_from_envelope(const spool::Envelope& env);

// RFC 6533: true when any address (sender, final or original recipient) is
// non-ASCII or the envelope used SMTPUTF8. Then the report is
// message/global-delivery-status, UTF-8 may appear in the DSN's own headers and
// text, and the DSN must be queued with SMTPUTF8.
bool is_global(const DsnInput& in);

// What build() attaches as the third part (RFC 3461 §4.3, RFC 3464 §2):
// Full only in a DSN reporting a failure, when RET is not HDRS and the original
// is at most max_returned_body octets (RET unspecified is our choice: full, as
// Postfix does); otherwise the header section (cut at a field boundary to at
// most max_returned_body octets); None when that is empty.
enum class Returned { None, Headers, Full };
Returned returned_content(const DsnInput& in);

// The header section of a message: up to and including the line end before the
// first empty line (any of CRLF, CR, LF counts); the whole input when there is
// no empty line; "" when the message starts with an empty line. The rule is
// mime::header_section_length's.
std::string_view header_section(std::string_view message);

// The complete DSN message; "" when there is nothing to send (null sender or no
// recipients). Subject by the most severe action: failed > delayed > success.
std::string build(const DsnInput& in);

// true when `message` holds an octet >= 0x80: queue it with BODY=8BITMIME.
bool has_8bit(std::string_view message);

}  // namespace mailgate::dsn
