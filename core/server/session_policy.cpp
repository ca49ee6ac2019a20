// server/session_policy: where the inbound session meets the Lua policy:
// the connect verdict and the transaction as hooks see it (the message and
// route hooks run in the submission stage, with the transaction's version).
// Connect/helo use the version the connection started with (refreshed at
// EHLO); everything of a transaction uses the version taken at its MAIL
// command, so a reload never changes a transaction half-way.
#include <spdlog/spdlog.h>

#include "server/session.hpp"

namespace mailgate::server {

namespace {

std::vector<std::pair<std::string, std::string>> mail_params(const smtp::MailParams& p) {
  std::vector<std::pair<std::string, std::string>> out;
  if (p.size) out.emplace_back("SIZE", std::to_string(*p.size));
  if (p.body == smtp::BodyType::SevenBit) out.emplace_back("BODY", "7BIT");
  if (p.body == smtp::BodyType::EightBitMime) out.emplace_back("BODY", "8BITMIME");
  if (p.smtputf8) out.emplace_back("SMTPUTF8", "");
  if (p.ret == smtp::Ret::Full) out.emplace_back("RET", "FULL");
  if (p.ret == smtp::Ret::Hdrs) out.emplace_back("RET", "HDRS");
  if (!p.envid.empty()) out.emplace_back("ENVID", p.envid);
  if (!p.auth.empty()) out.emplace_back("AUTH", p.auth);
  return out;
}

}  // namespace

bool Session::has_hook(policy::Event e) const {
  if (e == policy::Event::Connect || e == policy::Event::Helo) return policy_ && policy_->has(e);
  return txs_ && txs_->tx.policy && txs_->tx.policy->has(e);
}

const policy::TxInfo& Session::tx_info() {
  // Kept in step with the transaction instead of rebuilt per hook call: a
  // transaction of n recipients costs O(n), not O(n²), in rcpt_to calls.
  auto& info = tx_state().hook_tx;
  const auto& t = txs_->tx;
  info.id = t.id.hex();  // allocated at MAIL, before the mail_from hook runs
  info.conn = &conn_;
  if (!txs_->hook_tx_sender) {
    info.sender = policy::make_address_info(t.sender.address.str());
    info.sender.params = mail_params(t.params);
    txs_->hook_tx_sender = true;
  }
  for (std::size_t i = info.recipients.size(); i < t.recipients.size(); ++i) {
    const auto& r = t.recipients[i];
    auto a = policy::make_address_info(r.address.str());
    if (r.params.notify) a.params.emplace_back("NOTIFY", smtp::notify_text(r.params.notify));
    if (!r.params.orcpt.empty()) a.params.emplace_back("ORCPT", r.params.orcpt);
    info.recipients.push_back(std::move(a));
  }
  return info;
}

bool Session::refused_by(const policy::Verdict& v) {
  if (v.kind != policy::Verdict::Kind::Reject && v.kind != policy::Verdict::Kind::Tempfail)
    return false;
  reply(v.reply);
  return true;
}

asio::awaitable<bool> Session::connect_allowed() {
  if (worker_.policy) policy_ = worker_.policy->current(worker_.index);
  if (!has_hook(policy::Event::Connect)) co_return true;
  auto v = co_await policy_->connect(conn_);
  if (v.kind == policy::Verdict::Kind::Reject) {
    // RFC 5321 §3.1: a server refusing service at greeting says 554.
    reply(554, v.reply.enhanced.c_str(), v.reply.text);
  } else if (v.kind == policy::Verdict::Kind::Tempfail) {
    reply(421, v.reply.enhanced.c_str(), v.reply.text);
  } else {
    co_return true;
  }
  worker_.stats.connections_rejected_policy.fetch_add(1, std::memory_order_relaxed);
  co_return false;
}

}  // namespace mailgate::server
