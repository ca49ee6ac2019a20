// delivery/classify: what the replies of one delivery attempt mean (DESIGN
// §4: per recipient 2xx delivered / 4xx retry / 5xx bounce), decided by a
// pure function so the rules are testable without sockets, a spool or a
// clock. The plan it returns is what the later steps carry out: record (one
// synced spool write), notify (hooks, delivery log, metrics, DSN hand-off)
// and requeue.
// Promises:
// - classify() is pure: equal inputs give equal plans; no I/O, no clock, no
//   randomness (the retry delay is chosen later, after the deferred hook).
// - One outcome per reply, in the order of the replies. 2xx → Delivery;
//   4xx → TransientFailure (the recipient stays pending) unless the message
//   is past the retry policy's max_age, then Expiration with status 4.4.7;
//   other replies → Bounce (Expiration for a 4.4.7 reply, AdminBounce when
//   the administrator failed the recipients).
// - DSN reports follow RFC 3461 NOTIFY (dsn::wants_report): failures;
//   "relayed" for a delivery to a next hop that does not speak DSN (one that
//   does got NOTIFY and reports itself); one "delayed" report per recipient
//   still pending, once per (message, destination), when the message is
//   older than delay_warning. A null sender (<>) never gets a report.
// - The events are a typed enum; its names in the delivery log and its
//   metrics::Outcome come from event_name() / outcome_of() only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "dsn/dsn.hpp"
#include "metrics/outcome_counters.hpp"
#include "queue/retry_policy.hpp"
#include "smtp/bounce_class.hpp"
#include "smtp/reply.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace mailgate::delivery {

// What happened to a recipient (or, for a connection-level deferral, to a
// destination): the delivery log's event and the deliveries metric's result.
enum class DeliveryEvent : std::uint8_t {
  Delivery,
  TransientFailure,
  Bounce,
  Expiration,
  AdminBounce
};
inline constexpr std::size_t kDeliveryEventCount = 5;
metrics::Outcome outcome_of(DeliveryEvent e);
// The delivery log's name ("delivery", "transient_failure", ...): static storage.
const char* event_name(DeliveryEvent e);

// One recipient's reply in an attempt (a synthesized one when there was no
// conversation: DNS failure, loop, expiry, admin bounce).
struct RecipientReply {
  std::uint32_t index = 0;  // into Envelope::recipients
  smtp::Reply reply;
};

// Whose decision a permanent failure is.
enum class FailedBy : std::uint8_t {
  Delivery,       // the remote's, or ours while delivering: Bounce / Expiration
  Administrator,  // the admin API's bounce: AdminBounce
};

// Where and when an attempt happened.
struct AttemptContext {
  spool::MessageId id;
  std::string destination;
  std::string mx;             // the remote MX's name; "" when no connection was used
  bool tls = false;           // the transaction ran over TLS
  bool next_hop_dsn = false;  // the next hop offered DSN (it got NOTIFY/ORCPT)
  std::int64_t now_ms = 0;
  std::int64_t received_ms() const { return static_cast<std::int64_t>(id.millis()); }
};

// A reply with what it means for its recipient.
struct ClassifiedReply {
  std::uint32_t index = 0;  // into Envelope::recipients
  DeliveryEvent event = DeliveryEvent::Delivery;
  smtp::Reply reply;
  smtp::BounceClass bounce_class = smtp::BounceClass::None;
};

struct DeliveryPlan {
  std::vector<ClassifiedReply> outcomes;  // one per reply, same order
  // The destination's record with the new recipient states, last replies and
  // delay_notified; attempts and next_attempt_ms are as loaded (set when the
  // retry time is known).
  spool::DestRecord dest;
  std::uint32_t attempt = 0;                  // the number of this attempt (loaded attempts + 1)
  bool pending = false;                       // a recipient waits for a retry: the record stays
  std::vector<dsn::RecipientReport> reports;  // empty: no DSN
};

struct ClassifyInput {
  const spool::Envelope& envelope;
  const spool::DestRecord& dest;  // as loaded for this attempt
  const std::vector<RecipientReply>& replies;
  const AttemptContext& attempt;
  const queue::RetryPolicy& retry;
  std::chrono::milliseconds delay_warning;  // 0: never warn
  const smtp::BounceClassifier& classifier;
  FailedBy failed_by = FailedBy::Delivery;
};

DeliveryPlan classify(const ClassifyInput& in);

// The reply's text on one line (the log's `text`).
std::string one_line(const smtp::Reply& r);
// "550 5.1.1 text" on one line: the stored last reply and the DSN's Diagnostic-Code.
std::string reply_line(const smtp::Reply& r);

}  // namespace mailgate::delivery
