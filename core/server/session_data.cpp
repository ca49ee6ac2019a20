// server/session_data: message reception for a session: DATA (dot-terminated)
// and BDAT (RFC 3030 chunks) into the transaction's MessageDraft (scanner,
// limits, spilling large bodies), then the hand-over to the submission
// stage, whose synced commit must complete before "250 2.0.0 OK id=<id>".
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "server/session.hpp"
#include "smtp/command.hpp"
#include "submit/submitter.hpp"

namespace mailgate::server {

void Session::begin_body(bool bdat) {
  tx().bdat = bdat;
  tx_state().data_start = std::chrono::steady_clock::now();
  tx_state().data_bytes = 0;
  draft().begin(tx().id, bdat ? smtp::DataScanner::Mode::Chunk : smtp::DataScanner::Mode::Dot,
                listener_.max_message_size);
}

asio::awaitable<void> Session::abandon_message(ReadResult why) {
  co_await abort_transaction();
  if (why == ReadResult::Timeout) timeout_reply("message data");
}

asio::awaitable<bool> Session::do_data() {
  if (!tx_active()) {
    reply(503, "5.5.1", "need MAIL command");
    ++errors_;
    co_return true;
  }
  if (tx().bdat) {
    reply(503, "5.5.1", "DATA not allowed after BDAT");
    ++errors_;
    co_return true;
  }
  if (tx().recipients.empty()) {
    reply(554, "5.5.1", "no valid recipients");
    ++errors_;
    co_return true;
  }
  begin_body(false);
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
  if (!co_await flush()) {
    co_await abort_transaction();
    co_return false;
  }

  for (;;) {
    if (in_pos_ < in_.size()) {
      auto step =
          co_await draft().absorb(std::string_view(in_.data() + in_pos_, in_.size() - in_pos_));
      in_pos_ += step.consumed;
      if (step.done) break;
      continue;
    }
    auto r = co_await read_more(listener_.data_timeout);
    if (r != ReadResult::Ok) {
      co_await abandon_message(r);
      co_return false;
    }
  }
  co_await finish_message();
  co_return true;
}

asio::awaitable<bool> Session::do_bdat(std::string_view arg) {
  auto parsed = smtp::parse_bdat(arg);
  if (auto* err = std::get_if<smtp::Reply>(&parsed)) {
    // Without a valid size the chunk cannot be skipped; reading on would
    // interpret message content as commands. Refuse and close.
    reply(*err);
    reply(421, "4.5.0", "cannot resynchronize after bad BDAT, closing connection");
    co_await abort_transaction();
    co_return false;
  }
  const auto cmd = std::get<smtp::Bdat>(parsed);
  smtp::Reply refusal;
  if (!esmtp_) {
    refusal = {503, "5.5.1", "BDAT requires EHLO"};
  } else if (!tx_active()) {
    refusal = {503, "5.5.1", "need MAIL command"};
  } else if (tx().recipients.empty()) {
    refusal = {554, "5.5.1", "no valid recipients"};
  }
  const bool accept = refusal.code == 0;
  if (accept && !receiving()) begin_body(true);

  std::uint64_t remaining = cmd.size;
  while (remaining > 0) {
    if (in_pos_ == in_.size()) {
      auto r = co_await read_more(listener_.data_timeout);
      if (r != ReadResult::Ok) {
        co_await abandon_message(r);
        co_return false;
      }
      continue;
    }
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(remaining, in_.size() - in_pos_));
    if (accept) co_await draft().absorb(std::string_view(in_.data() + in_pos_, n));
    in_pos_ += n;
    remaining -= n;
  }
  if (!accept) {
    reply(refusal);
    ++errors_;
    co_return true;
  }
  if (draft().too_big()) {
    // Refuse at once: the client need not send the remaining chunks.
    const smtp::Reply r = *draft().refusal();
    auto s = submission();
    co_await worker_.submitter->refuse(s, r, false);
    reply(r);
    reset_transaction();
    co_return true;
  }
  if (!cmd.last) {
    reply(250, "2.0.0", fmt::format("{} octets received", cmd.size));
    co_return true;
  }
  draft().finish_chunks();
  co_await finish_message();
  co_return true;
}

submit::Submission Session::submission() {
  submit::Submission s;
  s.id = tx().id;
  s.origin.source = submit::Source::Smtp;
  s.origin.helo = conn_.helo;
  s.origin.client_ip = conn_.remote_ip;
  s.origin.esmtp = esmtp_;
  s.origin.tls = conn_.tls;
  if (conn_.tls) {
    s.origin.tls_version = tls_->version();
    s.origin.tls_cipher = tls_->cipher();
    s.origin.tls_bits = tls_->cipher_bits();
  }
  s.origin.auth_user = conn_.auth;
  s.sender = tx().sender.address.str();
  s.recipients.reserve(tx().recipients.size());
  for (const auto& r : tx().recipients)
    s.recipients.push_back({r.address.str(), r.params.notify, r.params.orcpt});
  s.ret = tx().params.ret;
  s.envid = tx().params.envid;
  s.body_type = tx().params.body;
  s.smtputf8 = tx().params.smtputf8;
  s.body = &draft();
  s.policy = tx().policy;
  s.tx = has_hook(policy::Event::Message) ? &tx_info() : nullptr;
  s.meta = std::move(tx().meta);
  return s;
}

asio::awaitable<void> Session::finish_message() {
  auto s = submission();
  auto result = co_await worker_.submitter->submit(s);
  reply(result.reply);
  reset_transaction();
}

}  // namespace mailgate::server
