// server/session_tls: STARTTLS (RFC 3207) and implicit TLS for an inbound
// session. What RFC 3207 §4.2 and CVE-2011-0411 ask: whatever the client
// pipelined after STARTTLS is discarded unread (a man in the middle could
// have injected it before the handshake), and the session forgets
// everything it learnt in plaintext (EHLO, a transaction), so the client
// must EHLO again; STARTTLS is then no longer offered. The command itself is
// sequenced in handle_line (session.cpp): g++ 12 miscompiled a separate
// coroutine for it (SIGILL on its first resume), so only the synchronous
// steps live here.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/cidr.hpp"
#include "server/session.hpp"

namespace mailgate::server {

std::shared_ptr<asio::ssl::context> Session::tls_context() const {
  return worker_.tls ? worker_.tls->current(listener_index_) : nullptr;
}

bool Session::starttls_offered() const { return listener_.starttls && !tls_ && tls_context(); }

bool Session::starttls_allowed(std::string_view arg) {
  const char* refusal = nullptr;
  int code = 503;
  const char* enhanced = "5.5.1";
  if (tls_) {
    refusal = "TLS already active";
  } else if (!starttls_offered()) {
    code = 502;
    refusal = "STARTTLS not available";
  } else if (!arg.empty()) {
    code = 501;
    enhanced = "5.5.4";
    refusal = "STARTTLS takes no arguments";
  } else if (tx_active()) {
    refusal = "STARTTLS not allowed during a mail transaction";
  }
  if (!refusal) return true;
  reply(code, enhanced, refusal);
  ++errors_;
  return false;
}

void Session::discard_pipelined_input() {
  if (in_pos_ < in_.size()) {
    worker_.stats.tls_pipelined_discarded.fetch_add(1, std::memory_order_relaxed);
    spdlog::info("STARTTLS from {}: discarded {} octets sent after it in plaintext",
                 conn_.remote_ip, in_.size() - in_pos_);
  }
  in_.clear();
  in_pos_ = 0;
}

void Session::forget_helo() {
  conn_.helo.clear();
  esmtp_ = false;
  if (!conn_.auth.empty()) {
    conn_.auth.clear();
    may_relay_ = net::any_contains(listener_.relay_networks, conn_.remote_ip);
  }
}

asio::awaitable<bool> Session::start_tls() {
  auto context = tls_context();
  if (!context) {
    // A reload cannot remove a certificate, so this is a listener without one.
    spdlog::error("TLS on {} without a certificate", listener_.address);
    co_return false;
  }
  tls_ = std::make_unique<tls::ServerStream>(socket_, std::move(context));
  deadline_.set(listener_.command_timeout);
  const auto ec = co_await tls_->handshake();
  auto& st = worker_.stats;
  if (ec) {
    const bool timed_out = deadline_.expired();
    (timed_out ? st.tls_timeout : st.tls_failed).fetch_add(1, std::memory_order_relaxed);
    spdlog::info("TLS handshake with {} failed: {}", conn_.remote_ip,
                 timed_out ? "timeout" : ec.message());
    co_return false;
  }
  st.tls_ok.fetch_add(1, std::memory_order_relaxed);
  conn_.tls = true;
  co_return true;
}

}  // namespace mailgate::server
