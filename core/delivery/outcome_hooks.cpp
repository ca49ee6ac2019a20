// delivery/outcome_hooks: see outcome_hooks.hpp.
#include "delivery/outcome_hooks.hpp"

#include <string_view>

namespace mailgate::delivery {

namespace {

policy::ReplyInfo reply_info(const ClassifiedReply& o) {
  return policy::ReplyInfo{o.reply.code, o.reply.enhanced, one_line(o.reply),
                           smtp::to_string(o.bounce_class)};
}

}  // namespace

OutcomeHooks::OutcomeHooks(policy::PolicyRef policy, const spool::LoadedMessage& msg,
                           const spool::MessageId& id)
    : policy_(std::move(policy)), envelope_(msg.envelope) {
  const auto& env = msg.envelope;
  if (!has(policy::Event::Deferred) && !has(policy::Event::Delivered) &&
      !has(policy::Event::Bounced))
    return;
  const auto end = policy::header_section_end(msg.body);
  headers_ = policy::HeaderSection(
      std::string_view(msg.body).substr(0, end == std::string::npos ? msg.body.size() : end));
  meta_.insert(env.meta.begin(), env.meta.end());
  msg_.id = id.hex();
  msg_.size = env.size;
  msg_.sender = env.sender;
  for (const auto& r : env.recipients) msg_.recipients.push_back(r.address);
  msg_.headers = &headers_;
  msg_.meta = &meta_;
}

asio::awaitable<std::optional<policy::Duration>> OutcomeHooks::deferred(const DeliveryPlan& plan) {
  std::optional<policy::Duration> earliest;
  if (!plan.pending || !has(policy::Event::Deferred)) co_return earliest;
  for (const auto& o : plan.outcomes) {
    if (o.event != DeliveryEvent::TransientFailure) continue;
    auto delay = co_await policy_->deferred(
        msg_, policy::make_address_info(envelope_.recipients[o.index].address), reply_info(o));
    if (delay && (!earliest || *delay < *earliest)) earliest = delay;
  }
  co_return earliest;
}

asio::awaitable<void> OutcomeHooks::finished(const DeliveryPlan& plan) {
  if (!has(policy::Event::Delivered) && !has(policy::Event::Bounced)) co_return;
  for (const auto& o : plan.outcomes) {
    const auto rcpt = policy::make_address_info(envelope_.recipients[o.index].address);
    switch (o.event) {
      case DeliveryEvent::Delivery:
        co_await policy_->delivered(msg_, rcpt, reply_info(o));
        break;
      case DeliveryEvent::Bounce:
      case DeliveryEvent::Expiration:
        co_await policy_->bounced(msg_, rcpt, reply_info(o));
        break;
      case DeliveryEvent::TransientFailure:
      case DeliveryEvent::AdminBounce:
        break;
    }
  }
}

}  // namespace mailgate::delivery
