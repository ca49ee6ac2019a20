// server/relay_control: decides whether a recipient may be accepted from a
// client, exactly as DESIGN §6–§7 say: clients in relay_networks (or
// authenticated) may relay anywhere; others only to relay_domains; legacy
// routing syntax (%, !, @ in the local part, source routes) is never honoured
// for a client that may not relay. Pure function: no I/O, no state.
#pragma once

#include <string>
#include <vector>

#include "smtp/address.hpp"
#include "smtp/reply.hpp"

namespace mailgate::server {

struct RelayDecision {
  bool allowed = false;
  smtp::Reply reply;  // set when !allowed
};

// `relay_domains` are lower-cased. `may_relay` = client in relay_networks or authenticated.
RelayDecision check_relay(const smtp::Path& rcpt, bool may_relay,
                          const std::vector<std::string>& relay_domains);

}  // namespace mailgate::server
