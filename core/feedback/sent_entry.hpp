// feedback/sent_entry: the sent-message index entry (spool/sent_index.hpp)
// of a message whose last destination is settled: sender, recipients,
// tenant and campaign (msg meta), and the Message-ID of its header section.
// Promises: pure; a message without a (well-formed) Message-ID gets an
// entry that only VERP can match.
#pragma once

#include <string_view>

#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "spool/sent_index.hpp"

namespace mailgate::feedback {

spool::SentRecord sent_entry(const spool::MessageId& id, const spool::Envelope& env,
                             std::string_view body);

// The normalized Message-ID of a header section ("" when none).
std::string message_id_of(std::string_view message);

}  // namespace mailgate::feedback
