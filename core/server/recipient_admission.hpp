// server/recipient_admission: whether one recipient is accepted into a
// transaction: relay control (DESIGN §6–§7) first, then the `rcpt_to`
// handlers, which may refuse a recipient or grant one relay control refused
// (mailgate.accept()) — except routing syntax (%, !, source routes) and a
// domain-less <postmaster>, which are never a relay grant. Shared by the SMTP
// dialogue and HTTP inject, so both admit recipients by the same rules.
#pragma once

#include <asio/awaitable.hpp>
#include <string>
#include <vector>

#include "policy/runtime.hpp"
#include "smtp/address.hpp"
#include "smtp/command.hpp"
#include "smtp/params.hpp"
#include "smtp/reply.hpp"

namespace mailgate::server {

struct RecipientDecision {
  enum class Kind { Accepted, RefusedByRelay, RefusedByPolicy };
  Kind kind = Kind::Accepted;
  smtp::Reply reply;  // the refusal
};

// `policy` may be null (no hooks). `tx` is the transaction as hooks see it
// (may be null when `policy` has no rcpt_to handler).
asio::awaitable<RecipientDecision> admit_recipient(policy::Policy* policy, const policy::TxInfo* tx,
                                                   const smtp::RcptTo& rcpt, bool may_relay,
                                                   const std::vector<std::string>& relay_domains);

}  // namespace mailgate::server
