// server/session_policy: where the inbound session meets the Lua policy:
// the connect verdict, the transaction as hooks see it, and the message +
// route hooks at end of data (header edits, metadata, each recipient's
// destination). Connect/helo use the version the connection started with
// (refreshed at EHLO); everything of a transaction uses the version taken at
// its MAIL command, so a reload never changes a transaction half-way.
#include <spdlog/spdlog.h>

#include "server/session.hpp"
#include "spool/records.hpp"

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
  const auto& p = (e == policy::Event::Connect || e == policy::Event::Helo) ? policy_ : tx_.policy;
  return p && p->has(e);
}

const policy::TxInfo& Session::tx_info() {
  // Kept in step with the transaction instead of rebuilt per hook call: a
  // transaction of n recipients costs O(n), not O(n²), in rcpt_to calls.
  auto& tx = hook_tx_;
  tx.id = tx_.receiving ? tx_.id.hex() : std::string();
  tx.conn = &conn_;
  if (!hook_tx_sender_) {
    tx.sender = policy::make_address_info(tx_.sender.address.str());
    tx.sender.params = mail_params(tx_.params);
    hook_tx_sender_ = true;
  }
  for (std::size_t i = tx.recipients.size(); i < tx_.recipients.size(); ++i) {
    const auto& r = tx_.recipients[i];
    auto a = policy::make_address_info(r.address.str());
    if (r.params.notify) a.params.emplace_back("NOTIFY", smtp::notify_text(r.params.notify));
    if (!r.params.orcpt.empty()) a.params.emplace_back("ORCPT", r.params.orcpt);
    tx.recipients.push_back(std::move(a));
  }
  return tx;
}

bool Session::refused_by(const policy::Verdict& v) {
  if (v.kind != policy::Verdict::Kind::Reject && v.kind != policy::Verdict::Kind::Tempfail)
    return false;
  reply(v.reply);
  return true;
}

asio::awaitable<bool> Session::connect_allowed() {
  if (worker_.policy) policy_ = worker_.policy->current(worker_.index);
  // HTTP inject's loopback connection is not a client connection.
  if (listener_.internal || !has_hook(policy::Event::Connect)) co_return true;
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

asio::awaitable<bool> Session::apply_message_policy(smtp::Reply& refusal) {
  tx_.rcpt_dest.clear();
  for (const auto& r : tx_.recipients)
    tx_.rcpt_dest.push_back(smtp::normalize_domain(r.address.domain));
  const bool message_hook = has_hook(policy::Event::Message);
  const bool route_hook = has_hook(policy::Event::Route);
  if (!message_hook && !route_hook) co_return true;

  // The header section: held back as chunk 0 when the body spilled, else the
  // start of the in-memory body. Headers bigger than spool.body_buffer are
  // not available to hooks.
  std::optional<policy::HeaderSection> headers;
  std::size_t in_body_end = std::string::npos;
  if (tx_.headers_held) {
    headers.emplace(tx_.header_block);
  } else if (tx_.chunks_written == 0) {
    in_body_end = policy::header_section_end(tx_.body);
    if (in_body_end == std::string::npos) in_body_end = tx_.body.size();  // no body part
    headers.emplace(std::string_view(tx_.body).substr(0, in_body_end));
  }
  policy::Message msg;
  msg.id = tx_.id.hex();
  msg.size = tx_.stored_bytes + tx_.body.size();
  msg.sender = tx_.sender.address.str();
  for (const auto& r : tx_.recipients) msg.recipients.push_back(r.address.str());
  msg.headers = headers ? &*headers : nullptr;
  msg.headers_writable = headers.has_value();
  msg.meta = &tx_.meta;
  msg.meta_writable = true;

  if (message_hook) {
    auto v = co_await tx_.policy->message(tx_info(), msg);
    if (v.kind == policy::Verdict::Kind::Reject || v.kind == policy::Verdict::Kind::Tempfail) {
      refusal = v.reply;
      worker_.stats.messages_rejected_policy.fetch_add(1, std::memory_order_relaxed);
      co_return false;
    }
  }
  if (route_hook) {
    msg.headers_writable = false;
    std::map<std::string, policy::RouteDecision> by_domain;
    for (std::size_t i = 0; i < tx_.recipients.size(); ++i) {
      const auto domain = tx_.rcpt_dest[i];
      auto it = by_domain.find(domain);
      if (it == by_domain.end()) {
        auto d = co_await tx_.policy->route(msg, domain);
        if (d.failure.error) {
          refusal = d.failure.reply;
          co_return false;
        }
        it = by_domain.emplace(domain, std::move(d)).first;
      }
      const auto& d = it->second;
      if (d.kind == policy::RouteDecision::Kind::Discard) {
        tx_.rcpt_dest[i].clear();
      } else {
        tx_.rcpt_dest[i] = d.destination;
        const auto tls = spool::parse_route_tls(d.tls);
        if (tls != spool::RouteTls::Default)
          tx_.dest_tls[d.destination] = static_cast<std::uint8_t>(tls);
      }
    }
  }
  if (headers && headers->modified()) {
    auto text = headers->str();
    if (tx_.headers_held) {
      tx_.stored_bytes = tx_.stored_bytes - tx_.header_block.size() + text.size();
      tx_.header_block = std::move(text);
    } else {
      tx_.body.replace(0, in_body_end, text);
    }
  }
  co_return true;
}

}  // namespace mailgate::server
