// server/session_data: message reception for a session: DATA (dot-terminated)
// and BDAT (RFC 3030 chunks), the size/line/bare-LF/hop checks, the Received
// header, spilling large bodies to the spool, and the synced commit that must
// complete before "250 2.0.0 OK id=<id>" is sent.
#include <fmt/format.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <map>

#include "policy/header_section.hpp"
#include "server/received_header.hpp"
#include "server/session.hpp"
#include "smtp/command.hpp"
#include "spool/records.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"

namespace mailgate::server {

using asio::use_awaitable;

namespace {
// RFC 5321 §6.3 / DESIGN §7: more than 50 Received lines (ours included) is a loop.
constexpr unsigned kMaxClientReceived = 49;
}  // namespace

std::size_t Session::store_limit() const {
  const auto& sc = tx_.scanner;
  // Once a message is certain to be refused, stop storing it (keep scanning).
  if (tx_.too_big || sc.bare_cr() || sc.bare_lf() || sc.line_too_long() || tx_.spool_error)
    return 0;
  return SIZE_MAX;
}

void Session::begin_body(bool bdat) {
  tx_.receiving = true;
  tx_.bdat = bdat;
  tx_.id = worker_.ids.next();
  tx_.body.clear();
  tx_.chunks_written = 0;
  tx_.stored_bytes = 0;
  tx_.too_big = false;
  tx_.spool_error = false;
  tx_.headers_held = false;
  tx_.header_block.clear();
  tx_.scanner.reset(bdat ? smtp::DataScanner::Mode::Chunk : smtp::DataScanner::Mode::Dot);
  const std::string id = tx_.id.hex();
  const std::string only_rcpt = tx_.recipients.size() == 1 ? tx_.recipients[0].address.str() : "";
  ReceivedInfo info;
  info.helo = helo_;
  info.client_ip = remote_ip_;
  info.hostname = worker_.config->hostname;
  info.id = id;
  info.for_rcpt = only_rcpt;
  info.esmtp = esmtp_;
  info.smtputf8 = tx_.params.smtputf8;
  info.when = std::chrono::system_clock::now();
  append_received_header(info, tx_.body);
}

// Writes the in-memory part of the body as one unsynced chunk (id|n); the
// final synced batch makes all chunks durable with the envelope.
asio::awaitable<bool> Session::spill_body() {
  if (tx_.chunks_written == 0 && !tx_.headers_held) {
    // Hold the header section back as chunk 0, written with the envelope, so
    // the message hook can still read and edit it.
    const auto end = policy::header_section_end(tx_.body);
    if (end != std::string::npos) {
      tx_.header_block.assign(tx_.body, 0, end);
      tx_.body.erase(0, end);
      tx_.headers_held = true;
      tx_.stored_bytes += tx_.header_block.size();
      tx_.chunks_written = 1;  // chunk 0 is reserved for the header block
    }
  }
  rocksdb::WriteBatch batch;
  batch.Put(worker_.store->body(), spool::body_key(tx_.id, tx_.chunks_written), tx_.body);
  std::error_code ec;
  co_await worker_.writer->async_write(std::move(batch), false,
                                       asio::redirect_error(use_awaitable, ec));
  tx_.chunks_written++;
  tx_.stored_bytes += tx_.body.size();
  tx_.body.clear();
  if (ec) tx_.spool_error = true;
  co_return !ec;
}

asio::awaitable<void> Session::discard_chunks() {
  if (tx_.chunks_written == 0) co_return;
  rocksdb::WriteBatch batch;
  // Point deletes: range tombstones slow every later read (see delivery_attempt.cpp).
  for (std::uint32_t c = 0; c < tx_.chunks_written; ++c)
    batch.Delete(worker_.store->body(), spool::body_key(tx_.id, c));
  tx_.chunks_written = 0;
  std::error_code ec;  // a failure leaves orphans that recovery removes
  co_await worker_.writer->async_write(std::move(batch), false,
                                       asio::redirect_error(use_awaitable, ec));
}

asio::awaitable<smtp::DataScanner::Step> Session::absorb(std::string_view input) {
  auto step = tx_.scanner.feed(input, tx_.body, store_limit());
  if (!tx_.too_big && tx_.scanner.total_bytes() > listener_.max_message_size) {
    tx_.too_big = true;
    tx_.body.clear();
  }
  if (tx_.body.size() >= worker_.config->spool.body_buffer && store_limit() != 0)
    co_await spill_body();
  co_return step;
}

asio::awaitable<void> Session::abandon_message(ReadResult why) {
  if (tx_.chunks_written) co_await discard_chunks();
  if (why == ReadResult::Timeout) {
    worker_.stats.timeouts.fetch_add(1, std::memory_order_relaxed);
    reply(421, "4.4.2", "timeout waiting for message data, closing connection");
  }
  reset_transaction();
}

asio::awaitable<bool> Session::do_data() {
  if (!tx_.active) {
    reply(503, "5.5.1", "need MAIL command");
    ++errors_;
    co_return true;
  }
  if (tx_.bdat) {
    reply(503, "5.5.1", "DATA not allowed after BDAT");
    ++errors_;
    co_return true;
  }
  if (tx_.recipients.empty()) {
    reply(554, "5.5.1", "no valid recipients");
    ++errors_;
    co_return true;
  }
  begin_body(false);
  reply(354, "", "End data with <CR><LF>.<CR><LF>");
  if (!co_await flush()) co_return false;

  for (;;) {
    if (in_pos_ < in_.size()) {
      auto step = co_await absorb(std::string_view(in_.data() + in_pos_, in_.size() - in_pos_));
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
    co_return false;
  }
  const auto cmd = std::get<smtp::Bdat>(parsed);
  smtp::Reply refusal;
  if (!esmtp_) {
    refusal = {503, "5.5.1", "BDAT requires EHLO"};
  } else if (!tx_.active) {
    refusal = {503, "5.5.1", "need MAIL command"};
  } else if (tx_.recipients.empty()) {
    refusal = {554, "5.5.1", "no valid recipients"};
  }
  const bool accept = refusal.code == 0;
  if (accept && !tx_.receiving) begin_body(true);

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
    if (accept) co_await absorb(std::string_view(in_.data() + in_pos_, n));
    in_pos_ += n;
    remaining -= n;
  }
  if (!accept) {
    reply(refusal);
    ++errors_;
    co_return true;
  }
  if (tx_.too_big) {
    // Refuse at once: the client need not send the remaining chunks.
    co_await refuse_message(
        {552, "5.3.4",
         fmt::format("message size exceeds fixed limit of {} bytes", listener_.max_message_size)},
        false);
    co_return true;
  }
  if (!cmd.last) {
    reply(250, "2.0.0", fmt::format("{} octets received", cmd.size));
    co_return true;
  }
  tx_.scanner.finish();
  co_await finish_message();
  co_return true;
}

void Session::log_discards(const std::vector<std::uint32_t>& discarded, const spool::Envelope& env,
                           const smtp::Reply& ok) {
  for (auto i : discarded) {
    const auto& address = env.recipients[i].address;
    log_event("discard", address, &ok, env.size);
    if (worker_.outcomes) {
      const auto at = address.rfind('@');
      const auto domain =
          smtp::normalize_domain(at == std::string::npos ? "" : address.substr(at + 1));
      worker_.outcomes->add(metrics::Outcome::Discard, worker_.labels->index(domain));
    }
  }
  worker_.stats.recipients_discarded.fetch_add(discarded.size(), std::memory_order_relaxed);
}

asio::awaitable<void> Session::refuse_message(smtp::Reply r, bool by_policy) {
  if (tx_.chunks_written) co_await discard_chunks();
  reply(r);
  log_rejected_message(r);
  (r.transient() ? worker_.stats.messages_tempfailed : worker_.stats.messages_rejected)
      .fetch_add(1, std::memory_order_relaxed);
  (by_policy ? worker_.stats.recipients_rejected_message : worker_.stats.recipients_rejected_data)
      .fetch_add(tx_.recipients.size(), std::memory_order_relaxed);
  reset_transaction();
}

asio::awaitable<void> Session::finish_message() {
  const auto& sc = tx_.scanner;
  smtp::Reply refusal;
  if (sc.bare_cr() || sc.bare_lf()) {
    refusal = {550, "5.5.2",
               "message contains a bare CR or LF; lines must end with CRLF (RFC 5321 2.3.8)"};
    worker_.stats.bare_lf_rejected.fetch_add(1, std::memory_order_relaxed);
  } else if (tx_.too_big) {
    refusal = {
        552, "5.3.4",
        fmt::format("message size exceeds fixed limit of {} bytes", listener_.max_message_size)};
  } else if (sc.line_too_long()) {
    refusal = {550, "5.6.0", "message has a line longer than 998 octets (RFC 5322 2.1.1)"};
  } else if (sc.received_headers() > kMaxClientReceived) {
    refusal = {554, "5.4.0", "too many hops (Received headers), possible mail loop"};
  } else if (tx_.spool_error) {
    refusal = {451, "4.3.0", "local error: could not write to the spool, try again later"};
  }
  if (refusal.code) {
    co_await refuse_message(refusal, false);
    co_return;
  }

  if (sc.total_bytes() > 0 && !sc.ends_with_crlf()) tx_.body += "\r\n";  // BDAT may omit it

  if (!co_await apply_message_policy(refusal)) {
    co_await refuse_message(refusal, true);
    co_return;
  }

  spool::Envelope env;
  env.sender = tx_.sender.address.str();
  env.recipients.reserve(tx_.recipients.size());
  // One dest record per destination (recipient domain, or the smarthost a
  // route hook chose), in recipient order; discarded recipients get none.
  std::map<std::string, spool::DestRecord> dests;
  std::vector<std::uint32_t> discarded;
  for (std::uint32_t i = 0; i < tx_.recipients.size(); ++i) {
    const auto& r = tx_.recipients[i];
    env.recipients.push_back({r.address.str(), r.params.notify, r.params.orcpt});
    const auto& dest = tx_.rcpt_dest[i];
    if (dest.empty()) {
      discarded.push_back(i);
      continue;
    }
    auto& rec = dests[dest];
    rec.recipients.push_back({i, spool::RcptState::Pending, {}});
    if (auto t = tx_.dest_tls.find(dest); t != tx_.dest_tls.end())
      rec.tls = static_cast<spool::RouteTls>(t->second);
  }
  env.meta.assign(tx_.meta.begin(), tx_.meta.end());
  env.ret = static_cast<std::uint8_t>(tx_.params.ret);
  env.envid = tx_.params.envid;
  env.body_type = static_cast<std::uint8_t>(tx_.params.body);
  env.smtputf8 = tx_.params.smtputf8;
  env.size = tx_.stored_bytes + tx_.body.size();
  env.received_ms = static_cast<std::int64_t>(tx_.id.millis());
  env.client_ip = remote_ip_;
  env.helo = helo_;
  env.body_chunks = tx_.chunks_written + 1;

  if (dests.empty()) {
    // Every recipient was discarded by the route hook: nothing to keep.
    if (tx_.chunks_written) co_await discard_chunks();
    const smtp::Reply ok{250, "2.0.0", fmt::format("OK id={}", tx_.id.hex())};
    reply(ok);
    log_discards(discarded, env, ok);
    worker_.stats.messages_received.fetch_add(1, std::memory_order_relaxed);
    if (injected_) worker_.stats.messages_injected.fetch_add(1, std::memory_order_relaxed);
    reset_transaction();
    co_return;
  }

  rocksdb::WriteBatch batch;
  auto* store = worker_.store;
  if (tx_.headers_held) batch.Put(store->body(), spool::body_key(tx_.id, 0), tx_.header_block);
  batch.Put(store->body(), spool::body_key(tx_.id, tx_.chunks_written), tx_.body);
  batch.Put(store->meta(), tx_.id.key(), spool::encode(env));
  for (auto& [dest, rec] : dests) {
    rec.next_attempt_ms = env.received_ms;
    rec.size = env.size;
    batch.Put(store->dest(), spool::dest_key(tx_.id, dest), spool::encode(rec));
  }
  std::error_code ec;
  co_await worker_.writer->async_write(std::move(batch), true,
                                       asio::redirect_error(use_awaitable, ec));
  if (ec) {
    tx_.chunks_written++;  // the final chunk may be partly there too
    spdlog::error("spool write failed for message {}: {}", tx_.id.hex(), ec.message());
    co_await refuse_message(
        {451, "4.3.0", "local error: could not write to the spool, try again later"}, false);
    co_return;
  } else {
    worker_.stats.messages_received.fetch_add(1, std::memory_order_relaxed);
    if (injected_) worker_.stats.messages_injected.fetch_add(1, std::memory_order_relaxed);
    worker_.stats.bytes_received.fetch_add(env.size, std::memory_order_relaxed);
    const smtp::Reply ok{250, "2.0.0", fmt::format("OK id={}", tx_.id.hex())};
    reply(ok);
    for (const auto& r : env.recipients) log_event("reception", r.address, &ok, env.size);
    log_discards(discarded, env, ok);
    if (worker_.on_accepted) {
      std::vector<spool::QueuedDest> queued;
      queued.reserve(dests.size());
      for (const auto& [name, rec] : dests) queued.push_back({name, rec.tls});
      worker_.on_accepted(tx_.id, queued, env.size);
    }
    spdlog::debug("received {} from <{}> for {} recipient(s), {} bytes", tx_.id.hex(), env.sender,
                  env.recipients.size(), env.size);
  }
  reset_transaction();
}

}  // namespace mailgate::server
