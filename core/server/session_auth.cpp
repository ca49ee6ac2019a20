// server/session_auth: SMTP AUTH (RFC 4954) in an inbound session, PLAIN and
// LOGIN. The credentials go to the policy's `auth` event (policy/runtime.hpp;
// the auth_file plugin checks crypt(3) hashes); the SASL encoding is
// smtp/sasl's. What an attacker meets: AUTH is offered only over TLS unless
// the listener says auth_plaintext; each failure waits longer before its 535
// (1 s, 2 s, ... up to 5 s); the third failure on a connection closes it
// (421 4.7.0); AuthThrottle refuses an IP with too many recent failures
// (421 4.7.0) before any exchange; a failure counts toward max_errors; the
// password is never logged, echoed or kept after the verdict.
#include <openssl/crypto.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "server/auth_throttle.hpp"
#include "server/session.hpp"
#include "smtp/sasl.hpp"

namespace mailgate::server {

namespace {
constexpr unsigned kMaxFailuresPerConnection = 3;
constexpr auto kMaxFailureDelay = std::chrono::seconds(5);

// Forgets a secret in place (not optimised away).
void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}
}  // namespace

bool Session::auth_offered() const {
  return listener_.auth != policy::AuthMode::Off && (tls_ || listener_.auth_plaintext) && policy_ &&
         policy_->has(policy::Event::Auth);
}

asio::awaitable<std::optional<std::string>> Session::read_sasl_line() {
  for (;;) {
    const auto nl = in_.find('\n', in_pos_);
    if (nl != std::string::npos) {
      std::string line = in_.substr(in_pos_, nl - in_pos_);
      in_pos_ = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      co_return line;
    }
    // RFC 4954 §4: 500 5.5.6 for a response line over the limit.
    if (in_.size() - in_pos_ > smtp::kSaslMaxResponse + 2) {
      reply(500, "5.5.6", "authentication exchange line is too long");
      co_return std::nullopt;
    }
    if (!co_await flush()) co_return std::nullopt;
    const auto r = co_await read_more(listener_.command_timeout);
    if (r == ReadResult::Timeout) timeout_reply("an AUTH response");
    if (r != ReadResult::Ok) co_return std::nullopt;
  }
}

asio::awaitable<std::optional<std::string>> Session::sasl_response(std::string_view challenge) {
  reply(334, "", challenge);
  co_return co_await read_sasl_line();
}

asio::awaitable<bool> Session::do_auth(std::string_view arg) {
  auto& st = worker_.stats;
  if (!auth_offered()) {
    const bool needs_tls =
        listener_.auth != policy::AuthMode::Off && !tls_ && !listener_.auth_plaintext;
    if (needs_tls) {
      reply(538, "5.7.11", "encryption required for authentication: STARTTLS first");
    } else {
      reply(502, "5.5.1", "AUTH not available");
    }
    ++errors_;
    co_return true;
  }
  if (!conn_.auth.empty()) {
    reply(503, "5.5.1", "already authenticated");
    ++errors_;
    co_return true;
  }
  if (tx_active()) {
    reply(503, "5.5.1", "AUTH not allowed during a mail transaction");
    ++errors_;
    co_return true;
  }
  if (worker_.auth_throttle && worker_.auth_throttle->blocked(conn_.remote_ip)) {
    st.auth_throttled.fetch_add(1, std::memory_order_relaxed);
    reply(
        421, "4.7.0",
        fmt::format("too many authentication failures from {}, try again later", conn_.remote_ip));
    co_return false;
  }
  auto parsed = smtp::parse_auth_command(arg);
  if (auto* err = std::get_if<smtp::Reply>(&parsed)) {
    reply(*err);
    ++errors_;
    co_return true;
  }
  auto& cmd = std::get<smtp::AuthCommand>(parsed);
  if (cmd.mechanism != "PLAIN" && cmd.mechanism != "LOGIN") {
    reply(504, "5.5.4", "mechanism not supported (PLAIN, LOGIN)");
    ++errors_;
    co_return true;
  }

  // The SASL exchange. A cancelled or malformed response is a 501, not a
  // failed authentication; an authorization identity other than the user
  // (smtp::decode_plain's 535) is one.
  std::string user, password;
  std::optional<smtp::Reply> refused;
  std::optional<std::string> response = std::move(cmd.initial_response);
  const bool plain = cmd.mechanism == "PLAIN";
  if (!response) {
    response = co_await sasl_response(plain ? "" : smtp::kLoginUserChallenge);
    if (!response) co_return false;
  }
  if (smtp::is_sasl_cancel(*response))
    refused = smtp::Reply{501, "5.7.0", "authentication cancelled"};
  if (!refused && plain) {
    auto creds = smtp::decode_plain(*response);
    if (auto* err = std::get_if<smtp::Reply>(&creds)) {
      refused = *err;
    } else {
      user = std::move(std::get<smtp::SaslCredentials>(creds).user);
      password = std::move(std::get<smtp::SaslCredentials>(creds).password);
    }
  } else if (!refused) {
    auto u = smtp::decode_login_user(*response);
    if (auto* err = std::get_if<smtp::Reply>(&u)) {
      refused = *err;
    } else {
      user = std::move(std::get<std::string>(u));
      wipe(*response);
      response = co_await sasl_response(smtp::kLoginPasswordChallenge);
      if (!response) co_return false;
      if (smtp::is_sasl_cancel(*response)) {
        refused = smtp::Reply{501, "5.7.0", "authentication cancelled"};
      } else {
        auto p = smtp::decode_login_password(*response);
        if (auto* err = std::get_if<smtp::Reply>(&p)) {
          refused = *err;
        } else {
          password = std::move(std::get<std::string>(p));
        }
      }
    }
  }
  wipe(*response);

  if (refused && refused->code != 535) {
    reply(*refused);
    ++errors_;
    co_return true;
  }
  if (!refused) {
    const auto verdict = co_await policy_->auth(conn_, cmd.mechanism, user, password);
    wipe(password);
    if (verdict.accepted()) {
      st.auth_ok.fetch_add(1, std::memory_order_relaxed);
      conn_.auth = user;
      may_relay_ = true;  // authenticated clients may relay (DESIGN §6)
      spdlog::info("AUTH {} from {}: authenticated as {}", cmd.mechanism, conn_.remote_ip, user);
      reply(235, "2.7.0", "authentication successful");
      co_return true;
    }
    if (verdict.kind == policy::AuthVerdict::Kind::Tempfail) {
      st.auth_tempfail.fetch_add(1, std::memory_order_relaxed);
      reply(verdict.reply);
      co_return true;
    }
    refused = verdict.reply;
  }
  wipe(password);
  // A failed authentication: counted, throttled, slowed down.
  st.auth_failed.fetch_add(1, std::memory_order_relaxed);
  ++auth_failures_;
  ++errors_;
  if (worker_.auth_throttle) worker_.auth_throttle->failed(conn_.remote_ip);
  spdlog::info("AUTH {} from {}: failed for {} ({} on this connection)", cmd.mechanism,
               conn_.remote_ip, user, auth_failures_);
  asio::steady_timer pause(co_await asio::this_coro::executor);
  pause.expires_after(std::min<std::chrono::steady_clock::duration>(
      std::chrono::seconds(auth_failures_), kMaxFailureDelay));
  std::error_code ec;
  co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  reply(*refused);
  if (auth_failures_ >= kMaxFailuresPerConnection) {
    reply(421, "4.7.0", "too many authentication failures, closing connection");
    co_return false;
  }
  co_return true;
}

}  // namespace mailgate::server
