// delivery/record: see record.hpp.
#include "delivery/record.hpp"

#include "smtp/params.hpp"

namespace mailgate::delivery {

DsnMessage make_dsn(const DsnSource& original, std::vector<dsn::RecipientReport> reports,
                    const spool::MessageId& dsn_id, const std::string& hostname,
                    std::int64_t now_ms) {
  const auto& env = original.envelope;
  dsn::DsnInput in;
  in.reporting_mta = hostname;
  in.message_id_domain = hostname;
  in.original_sender = env.sender;
  in.envid = env.envid;
  in.ret = original.body_complete ? static_cast<smtp::Ret>(env.ret) : smtp::Ret::Hdrs;
  in.smtputf8 = env.smtputf8;
  in.arrival_ms = original.received_ms;
  in.dsn_id = dsn_id.hex();
  in.recipients = std::move(reports);
  in.original_message = original.body;
  in.now_ms = now_ms;
  DsnMessage m;
  m.id = dsn_id;
  m.body = dsn::build(in);
  auto& denv = m.envelope;
  denv.sender = "";
  denv.recipients.push_back({env.sender, 0, ""});
  denv.smtputf8 = dsn::is_global(in);
  denv.body_type = static_cast<std::uint8_t>(smtp::BodyType::EightBitMime);
  denv.size = m.body.size();
  denv.received_ms = now_ms;
  denv.helo = hostname;
  denv.body_chunks = 1;
  return m;
}

spool::WriteSet record(const spool::Store& store, const RecordInput& in) {
  spool::WriteSet set(store);
  if (in.pending) {
    set.put_dest(in.id, in.destination, in.dest);
  } else {
    set.remove_dest(in.id, in.destination);
    if (in.closes_message) set.remove_message(in.id, in.body_chunks);
  }
  if (in.dsn) {
    const auto& dsn = *in.dsn;
    spool::DestRecord queued;
    queued.recipients.push_back({0, spool::RcptState::Pending, {}});
    queued.next_attempt_ms = dsn.envelope.received_ms;
    queued.size = dsn.body.size();
    set.put_body_chunk(dsn.id, 0, dsn.body);
    set.put_envelope(dsn.id, dsn.envelope);
    set.put_dest(dsn.id, spool::kSubmitPending, queued);
  }
  return set;
}

}  // namespace mailgate::delivery
