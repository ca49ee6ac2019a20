// feedback/matcher: turns one consumed report into feedback events, matched
// to the message this gateway sent when the evidence holds:
// - VERP: the envelope recipient has the delivery.verp shape, its {id} names
//   a message in the sent index (or still in the spool), and {rcpt_hash}
//   verifies for one of its recipients: that recipient bounced. A VERP-shaped
//   address whose hash verifies for none matches nothing (no fallback: it is
//   forged or damaged).
// - Message-ID: the returned headers' Message-ID is in the sent index and the
//   report names a recipient of that message (a complaint without
//   Original-Rcpt-To or To: naming one matches a message with one recipient).
// Everything else is an unmatched event (no id) for each address the report
// names. Blocking (index reads): run on the spool reader pool.
// Promises: parsing is bounded by the caller's slice (feedback.max_size);
// an event is `matched` only on the evidence above, never on an address alone.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "feedback/verp.hpp"
#include "smtp/bounce_class.hpp"
#include "spool/sent_index.hpp"

namespace mailgate::spool {
class Store;
}

namespace mailgate::feedback {

enum class Kind { Bounce, Complaint };
inline const char* event_name(Kind k) { return k == Kind::Bounce ? "async_bounce" : "complaint"; }
inline const char* kind_name(Kind k) { return k == Kind::Bounce ? "bounce" : "complaint"; }

struct Event {
  std::optional<spool::SentRecord> original;  // set: matched
  std::string recipient;                      // the original recipient ("" if none named)
  int code = 0;
  std::string status, text, bounce_class;  // bounces
  std::string feedback_type;               // complaints
  std::string original_message_id;
  std::string reporter;  // Reporting-MTA or the ARF User-Agent
};

struct Analysis {
  std::vector<Event> events;
  std::string unparsed;  // set: the report could not be read (why)
};

struct MatchContext {
  const spool::Store& store;
  const Verp& verp;
  const smtp::BounceClassifier& classifier;
};

Analysis analyze(const MatchContext& ctx, Kind kind, std::string_view envelope_recipient,
                 std::string_view message);

}  // namespace mailgate::feedback
