// server/relay_control: see relay_control.hpp.
#include "server/relay_control.hpp"
#include "dns/idna.hpp"

#include <algorithm>

namespace mailgate::server {

RelayDecision check_relay(const smtp::Path& rcpt, bool may_relay,
                          const std::vector<std::string>& relay_domains) {
  const auto& a = rcpt.address;
  if (a.domain.empty()) {
    // "<postmaster>" without a domain: mailgate has no local mailboxes.
    return {false, {550, "5.1.1", "no local mailboxes here; use a fully qualified address"}};
  }
  if (may_relay) return {true, {}};
  if (rcpt.had_source_route || a.has_routing_chars()) {
    return {false,
            {550, "5.7.1",
             "relaying denied: source routes and %, !, @ in local parts "
             "are not accepted"}};
  }
  const std::string domain = dns::normalize_domain(a.domain);
  if (std::find(relay_domains.begin(), relay_domains.end(), domain) != relay_domains.end()) {
    return {true, {}};
  }
  return {false, {550, "5.7.1", "relaying denied"}};
}

}  // namespace mailgate::server
