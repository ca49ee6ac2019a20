// spool/sent_index: the sent-message index (column family `sent`), so that
// inbound feedback (asynchronous bounces, complaints) can be matched to a
// message after its body and envelope were deleted. Written in the synced
// batch that records a message's final delivery result; swept after
// feedback.retention.
// Keys: "i" + id(16) → the record; "m" + Message-ID → id(16). Ids start with
// their reception time in ms, so "i" keys sort by age and a sweep walks
// them from the oldest.
// Value: the envelope encoding (records.hpp) of {sender, recipients,
// received_ms, meta = tenant, campaign} with the Message-ID under the meta
// key ":message-id" (set_meta keys cannot collide: only these are copied).
// Promises: lookups never throw; an undecodable record is "not found";
// sweep() deletes at most `max` messages per call (bounded work per pass).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spool/message_id.hpp"

namespace mailgate::spool {

class Store;
class WriteSet;

struct SentRecord {
  MessageId id;
  std::string sender;
  std::vector<std::string> recipients;
  std::string tenant, campaign;  // "" when unset
  std::string message_id;        // "<...>", "" when the message had none
  std::int64_t received_ms = 0;
};

void put_sent(WriteSet& set, const SentRecord& rec);
std::optional<SentRecord> read_sent(const Store& store, const MessageId& id);
std::optional<MessageId> find_sent_by_message_id(const Store& store, std::string_view message_id);
// Adds to `set` the deletion of up to `max` index entries of messages
// received before `before_ms`; returns how many.
std::size_t sweep_sent(const Store& store, std::int64_t before_ms, std::size_t max, WriteSet& set);

}  // namespace mailgate::spool
