// feedback/matcher: see matcher.hpp.
#include "feedback/matcher.hpp"

#include "feedback/reports.hpp"
#include "feedback/sent_entry.hpp"
#include "spool/store.hpp"
#include "text/ascii.hpp"

namespace mailgate::feedback {

namespace {

// The index entry of `id`, or (the message is not settled yet) one made
// from its envelope in the spool.
std::optional<spool::SentRecord> lookup(const spool::Store& store, const spool::MessageId& id) {
  if (auto r = spool::read_sent(store, id)) return r;
  spool::Envelope env;
  if (!store.read_envelope(id, env)) return std::nullopt;
  return sent_entry(id, env, {});  // no body read: VERP is what matches a queued message
}

const std::string* recipient_of(const spool::SentRecord& r, std::string_view address) {
  for (const auto& a : r.recipients)
    if (text::iequals(a, address)) return &a;
  return nullptr;
}

struct VerpMatch {
  bool shaped = false;                   // the address has the VERP shape
  std::optional<spool::SentRecord> msg;  // verified
  std::string recipient;
};

VerpMatch verp_match(const MatchContext& ctx, std::string_view envelope_recipient) {
  VerpMatch m;
  auto parsed = ctx.verp.match(envelope_recipient);
  if (!parsed) return m;
  m.shaped = true;
  auto id = spool::MessageId::from_hex(parsed->id_hex);
  if (!id) return m;
  auto rec = lookup(ctx.store, *id);
  if (!rec) return m;
  for (const auto& a : rec->recipients) {
    if (ctx.verp.verifies(*parsed, a)) {
      m.recipient = a;
      m.msg = std::move(rec);
      return m;
    }
  }
  return m;
}

std::optional<spool::SentRecord> by_message_id(const MatchContext& ctx, const std::string& mid) {
  if (mid.empty()) return std::nullopt;
  auto id = spool::find_sent_by_message_id(ctx.store, mid);
  if (!id) return std::nullopt;
  return lookup(ctx.store, *id);
}

Event bounce_event(const MatchContext& ctx, const FailedRecipient& f, const DsnReport& dsn) {
  Event e;
  e.recipient = f.recipient;
  e.code = f.code;
  e.status = f.status;
  e.text = f.text;
  e.bounce_class = smtp::to_string(ctx.classifier.classify(f.code, f.status, f.text));
  e.original_message_id = dsn.original_message_id;
  e.reporter = dsn.reporting_mta;
  return e;
}

Analysis bounces(const MatchContext& ctx, std::string_view envelope_recipient,
                 std::string_view message) {
  Analysis out;
  DsnReport dsn;
  if (!parse_dsn(message, dsn, out.unparsed)) return out;
  if (dsn.failed.empty()) {
    out.unparsed = "the report names no failed recipient (a delay or success notice)";
    return out;
  }
  auto verp = verp_match(ctx, envelope_recipient);
  if (verp.shaped) {
    // One recipient per VERP transaction: the report is about it. Its own
    // status line if the report names it, else the first failure.
    const FailedRecipient* f = &dsn.failed.front();
    for (const auto& x : dsn.failed)
      if (text::iequals(x.recipient, verp.recipient) ||
          text::iequals(x.original_recipient, verp.recipient))
        f = &x;
    auto e = bounce_event(ctx, *f, dsn);
    if (verp.msg) e.recipient = verp.recipient;
    e.original = std::move(verp.msg);
    out.events.push_back(std::move(e));
    return out;
  }
  auto msg = by_message_id(ctx, dsn.original_message_id);
  for (const auto& f : dsn.failed) {
    auto e = bounce_event(ctx, f, dsn);
    if (msg) {
      const std::string* r = recipient_of(*msg, f.recipient);
      if (!r && !f.original_recipient.empty()) r = recipient_of(*msg, f.original_recipient);
      if (r) {
        e.recipient = *r;
        e.original = msg;
      }
    }
    out.events.push_back(std::move(e));
  }
  return out;
}

Analysis complaints(const MatchContext& ctx, std::string_view envelope_recipient,
                    std::string_view message) {
  Analysis out;
  ComplaintReport arf;
  if (!parse_arf(message, arf, out.unparsed)) return out;
  auto event = [&](std::string recipient) {
    Event e;
    e.recipient = std::move(recipient);
    e.feedback_type = arf.feedback_type;
    e.original_message_id = arf.original_message_id;
    e.reporter = arf.user_agent;
    return e;
  };
  if (auto verp = verp_match(ctx, envelope_recipient); verp.shaped) {
    auto e = event(verp.msg ? verp.recipient
                            : (arf.original_rcpt_to.empty() ? "" : arf.original_rcpt_to[0]));
    e.original = std::move(verp.msg);
    out.events.push_back(std::move(e));
    return out;
  }
  if (auto msg = by_message_id(ctx, arf.original_message_id)) {
    std::vector<std::string> matched;
    for (const auto* list : {&arf.original_rcpt_to, &arf.returned_to})
      for (const auto& a : *list)
        if (const auto* r = recipient_of(*msg, a)) {
          bool dup = false;
          for (const auto& m : matched) dup = dup || m == *r;
          if (!dup) matched.push_back(*r);
        }
    if (matched.empty() && arf.original_rcpt_to.empty() && msg->recipients.size() == 1)
      matched.push_back(msg->recipients[0]);  // a redacted report of a one-recipient message
    for (auto& r : matched) {
      auto e = event(r);
      e.original = msg;
      out.events.push_back(std::move(e));
    }
    if (!matched.empty()) return out;
  }
  for (const auto& a : arf.original_rcpt_to) out.events.push_back(event(a));
  if (out.events.empty()) out.events.push_back(event(""));
  return out;
}

}  // namespace

Analysis analyze(const MatchContext& ctx, Kind kind, std::string_view envelope_recipient,
                 std::string_view message) {
  return kind == Kind::Bounce ? bounces(ctx, envelope_recipient, message)
                              : complaints(ctx, envelope_recipient, message);
}

}  // namespace mailgate::feedback
