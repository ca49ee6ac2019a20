// delivery/body_source: where SmtpClient::send takes the message body from:
// a string in memory (small messages, DSNs, tests), or the spool, chunk by
// chunk on the spool's reader threads (bodies over SpoolReader::stream_above,
// so a delivery of a 20 MB message holds one chunk, not 20 MB).
// Promises: a streamed chunk that cannot be read ends the transaction without
// the end-of-data dot (the connection is closed, so the peer discards what it
// got) and the accepted recipients get 451 4.3.0: deferred and retried, never
// a truncated message.
#pragma once

#include <cstdint>
#include <string>

#include "spool/message_id.hpp"

namespace mailgate::spool {
class SpoolReader;
}

namespace mailgate::delivery {

struct BodySource {
  const std::string* whole = nullptr;    // set: the body in memory
  spool::SpoolReader* reader = nullptr;  // else: chunks 0 .. chunks-1 of `id`
  spool::MessageId id;
  std::uint32_t chunks = 0;
};

}  // namespace mailgate::delivery
