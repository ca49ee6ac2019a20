// delivery/outcome_hooks: the Lua hooks that hear about delivery outcomes
// (deferred, delivered, bounced), run for one settled attempt.
// Promises:
// - The hooks see the message read-only: its header section, metadata,
//   sender and recipients (built once per attempt, and only when one of
//   these hooks is registered).
// - deferred() runs before the results are recorded, once per transient
//   failure in outcome order, and returns the earliest retry delay any call
//   asked for (nullopt: the retry policy decides).
// - finished() runs after they are durable: delivered for each Delivery,
//   bounced for each Bounce and Expiration (an administrator's bounce is no
//   delivery result: no hook).
// - Everything runs on the settling worker with the policy version current
//   when the object was made, kept alive until it is destroyed.
#pragma once

#include <asio/awaitable.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "delivery/classify.hpp"
#include "policy/runtime.hpp"
#include "spool/spool_reader.hpp"

namespace mailgate::delivery {

class OutcomeHooks {
 public:
  // `policy` null: no hooks. `msg` must outlive this object.
  OutcomeHooks(policy::PolicyRef policy, const spool::LoadedMessage& msg,
               const spool::MessageId& id);
  OutcomeHooks(const OutcomeHooks&) = delete;  // msg_ points into this object
  OutcomeHooks& operator=(const OutcomeHooks&) = delete;

  asio::awaitable<std::optional<policy::Duration>> deferred(const DeliveryPlan& plan);
  asio::awaitable<void> finished(const DeliveryPlan& plan);

 private:
  bool has(policy::Event e) const { return policy_ && policy_->has(e); }

  policy::PolicyRef policy_;
  const spool::Envelope& envelope_;
  policy::HeaderSection headers_;
  std::map<std::string, std::string> meta_;
  policy::Message msg_;
};

}  // namespace mailgate::delivery
