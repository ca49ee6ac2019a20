// delivery/record: the spool side of settling an attempt: builds the one
// spool::WriteSet that records it, and the DSN message that goes with it.
// Promises (DESIGN §4):
// - record() writes nothing itself; the caller submits the set as ONE synced
//   write, so a recipient's result and the DSN reporting it are durable
//   together or not at all (a crash can neither lose nor double a DSN).
// - A destination with a pending recipient keeps its queue record (put_dest
//   with the new states, attempts and next attempt); otherwise the record is
//   removed, and when this destination was the message's last open one the
//   body and envelope are removed in the same set.
// - A DSN is stored as body chunk 0, envelope (from <> to the original
//   sender, BODY=8BITMIME) and a queue record under spool::kSubmitPending,
//   where the submission stage routes it (route and message hooks apply).
// - make_dsn() is pure (dsn::build on the stored envelope and body).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dsn/dsn.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "spool/write_set.hpp"

namespace mailgate::spool {
class Store;
}

namespace mailgate::delivery {

// A generated DSN as stored and as handed to the submission stage.
struct DsnMessage {
  spool::MessageId id;
  spool::Envelope envelope;  // received_ms: when it was generated
  std::string body;          // one chunk
};

struct DsnSource {
  const spool::Envelope& envelope;  // of the message reported on
  std::string_view body;            // its stored bytes (returned in part or whole)
  std::int64_t received_ms = 0;     // its arrival (the DSN's Arrival-Date)
  // false: `body` is only the head of a streamed body (spool_reader.hpp), so
  // the DSN returns the header section only (as RET=HDRS would).
  bool body_complete = true;
};

// The DSN for `reports` (not empty; the sender may get DSNs), with id
// `dsn_id`, written by `hostname` at `now_ms`.
DsnMessage make_dsn(const DsnSource& original, std::vector<dsn::RecipientReport> reports,
                    const spool::MessageId& dsn_id, const std::string& hostname,
                    std::int64_t now_ms);

struct RecordInput {
  const spool::MessageId& id;
  std::string_view destination;
  // The destination's new record (states, attempts, next attempt); written
  // only when `pending`.
  const spool::DestRecord& dest;
  bool pending = false;         // a recipient waits for a retry
  bool closes_message = false;  // this was the message's last open destination
  std::uint32_t body_chunks = 0;
  const DsnMessage* dsn = nullptr;  // null: none
};

spool::WriteSet record(const spool::Store& store, const RecordInput& in);

}  // namespace mailgate::delivery
