// feedback/sent_entry: see sent_entry.hpp.
#include "feedback/sent_entry.hpp"

#include "feedback/report_mime.hpp"

namespace mailgate::feedback {

std::string message_id_of(std::string_view message) {
  auto fields = read_fields(split_entity(message).headers);
  auto id = field(fields, "Message-ID");
  return id ? normalize_message_id(*id) : std::string();
}

spool::SentRecord sent_entry(const spool::MessageId& id, const spool::Envelope& env,
                             std::string_view body) {
  spool::SentRecord r;
  r.id = id;
  r.sender = env.sender;
  for (const auto& rc : env.recipients) r.recipients.push_back(rc.address);
  r.received_ms = env.received_ms;
  for (const auto& [k, v] : env.meta) {
    if (k == "tenant") r.tenant = v;
    if (k == "campaign") r.campaign = v;
  }
  r.message_id = message_id_of(body);
  return r;
}

}  // namespace mailgate::feedback
