// delivery/classify: see classify.hpp.
#include "delivery/classify.hpp"

#include <fmt/format.h>

#include <array>

namespace mailgate::delivery {

namespace {

struct EventInfo {
  const char* name;
  metrics::Outcome outcome;
};
constexpr std::array<EventInfo, kDeliveryEventCount> kEvents = {{
    {"delivery", metrics::Outcome::Delivery},
    {"transient_failure", metrics::Outcome::TransientFailure},
    {"bounce", metrics::Outcome::Bounce},
    {"expiration", metrics::Outcome::Expiration},
    {"admin_bounce", metrics::Outcome::AdminBounce},
}};

}  // namespace

metrics::Outcome outcome_of(DeliveryEvent e) {
  return kEvents[static_cast<std::size_t>(e)].outcome;
}

const char* event_name(DeliveryEvent e) { return kEvents[static_cast<std::size_t>(e)].name; }

std::string one_line(const smtp::Reply& r) {
  std::string t = r.text;
  for (auto& c : t)
    if (c == '\n' || c == '\r') c = ' ';
  return t;
}

std::string reply_line(const smtp::Reply& r) {
  return fmt::format("{} {} {}", r.code, r.enhanced, one_line(r));
}

namespace {

dsn::RecipientReport report(const spool::EnvelopeRecipient& er, dsn::Action action,
                            std::string status, const smtp::Reply& r, const AttemptContext& at) {
  dsn::RecipientReport rep;
  rep.final_recipient = er.address;
  rep.original_recipient = er.orcpt;
  rep.action = action;
  rep.status = std::move(status);  // empty: derived from the action
  rep.remote_mta = at.mx;
  rep.diagnostic = reply_line(r);
  rep.last_attempt_ms = at.now_ms;
  return rep;
}

DeliveryEvent event_of(spool::RcptState state, bool expired_now, const smtp::Reply& r,
                       FailedBy failed_by) {
  if (state == spool::RcptState::Delivered) return DeliveryEvent::Delivery;
  if (state == spool::RcptState::Pending) return DeliveryEvent::TransientFailure;
  if (failed_by == FailedBy::Administrator) return DeliveryEvent::AdminBounce;
  if (expired_now || r.enhanced == "4.4.7") return DeliveryEvent::Expiration;
  return DeliveryEvent::Bounce;
}

// One delay DSN per recipient once the message is older than delay_warning
// (RFC 3464 Action: delayed), for recipients whose NOTIFY asks for it.
void add_delay_warnings(const ClassifyInput& in, bool too_old, DeliveryPlan& plan) {
  const auto& at = in.attempt;
  const auto received = at.received_ms();
  const auto warn_after = in.delay_warning.count();
  if (!plan.pending || warn_after <= 0 || plan.dest.delay_notified ||
      at.now_ms - received < warn_after)
    return;
  plan.dest.delay_notified = true;
  for (const auto& [index, r] : in.replies) {
    const auto& er = in.envelope.recipients[index];
    if (r.code / 100 != 4 || too_old || !dsn::wants_report(er.notify, dsn::Action::Delayed))
      continue;
    auto& rep = plan.reports.emplace_back(report(er, dsn::Action::Delayed, r.enhanced, r, at));
    rep.will_retry_until_ms = in.retry.deadline(received);
  }
}

}  // namespace

DeliveryPlan classify(const ClassifyInput& in) {
  const auto& at = in.attempt;
  const bool too_old = in.retry.expired(at.received_ms(), at.now_ms);
  DeliveryPlan plan;
  plan.dest = in.dest;
  plan.attempt = in.dest.attempts + 1;
  for (const auto& [index, r] : in.replies) {
    const int cls = r.code / 100;
    const bool expired_now = cls == 4 && too_old;
    const auto state = cls == 2                   ? spool::RcptState::Delivered
                       : cls == 4 && !expired_now ? spool::RcptState::Pending
                                                  : spool::RcptState::Failed;
    for (auto& dr : plan.dest.recipients)
      if (dr.index == index) {
        dr.state = state;
        dr.last_reply = reply_line(r);
      }
    const auto bounce_class = state == spool::RcptState::Delivered
                                  ? smtp::BounceClass::None
                                  : in.classifier.classify(r.code, r.enhanced, r.text);
    plan.outcomes.push_back(
        {index, event_of(state, expired_now, r, in.failed_by), r, bounce_class});
    if (state == spool::RcptState::Pending) {
      plan.pending = true;
      continue;
    }
    dsn::Action action = dsn::Action::Failed;
    if (state == spool::RcptState::Delivered) {
      // A next hop that speaks DSN got NOTIFY passed on and reports success
      // itself; one that does not cannot, so we report "relayed" (RFC 3464).
      if (at.next_hop_dsn) continue;
      action = dsn::Action::Relayed;
    }
    const auto& er = in.envelope.recipients[index];
    if (!dsn::wants_report(er.notify, action)) continue;
    plan.reports.push_back(
        report(er, action, expired_now ? std::string("4.4.7") : r.enhanced, r, at));
  }
  add_delay_warnings(in, too_old, plan);
  // Never bounce a bounce (the warning above still counts as done, as for
  // any sender).
  if (!dsn::may_send_dsn(in.envelope.sender)) plan.reports.clear();
  return plan;
}

}  // namespace mailgate::delivery
