// server/recipient_admission: see recipient_admission.hpp.
#include "server/recipient_admission.hpp"

#include "server/relay_control.hpp"

namespace mailgate::server {

asio::awaitable<RecipientDecision> admit_recipient(policy::Policy* policy, const policy::TxInfo* tx,
                                                   const smtp::RcptTo& rcpt, bool may_relay,
                                                   const std::vector<std::string>& relay_domains) {
  auto relay = check_relay(rcpt.path, may_relay, relay_domains);
  if (policy && policy->has(policy::Event::RcptTo)) {
    auto info = policy::make_address_info(rcpt.path.address.str());
    info.relay_refused = !relay.allowed;
    if (rcpt.params.notify)
      info.params.emplace_back("NOTIFY", smtp::notify_text(rcpt.params.notify));
    if (!rcpt.params.orcpt.empty()) info.params.emplace_back("ORCPT", rcpt.params.orcpt);
    auto v = co_await policy->rcpt_to(*tx, info);
    if (v.kind == policy::Verdict::Kind::Accept && !relay.allowed &&
        !rcpt.path.address.domain.empty() && !rcpt.path.address.has_routing_chars() &&
        !rcpt.path.had_source_route) {
      relay.allowed = true;
    } else if (v.kind == policy::Verdict::Kind::Reject ||
               v.kind == policy::Verdict::Kind::Tempfail) {
      co_return RecipientDecision{RecipientDecision::Kind::RefusedByPolicy, v.reply};
    }
  }
  if (!relay.allowed)
    co_return RecipientDecision{RecipientDecision::Kind::RefusedByRelay, relay.reply};
  co_return RecipientDecision{};
}

}  // namespace mailgate::server
