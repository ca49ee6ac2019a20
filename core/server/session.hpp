// server/session: one inbound SMTP session on one worker: the dialogue over
// a TCP transport, run by coroutines while there is something to do; a
// plaintext session waiting for its next command between transactions is
// parked on a readiness callback instead, holding no coroutine frame (issue
// 15: memory per idle session). Internal to the server module. The dialogue
// (session.cpp), message reception (session_data.cpp) and the connect /
// transaction hooks (session_policy.cpp) are separate translation units
// because coroutine code is slow to compile. What happens to a finished
// message (trace header, message/route hooks, commit, queue) is the
// submission stage's job (submit/submitter.hpp).
// Promises: every read has a deadline; input is buffered up to a fixed bound
// (command line limit, or one read chunk during data); replies are flushed
// before the session would block on a read (RFC 2920 pipelining); nothing is
// acknowledged before the spool batch that holds it is synced; body chunks
// of a transaction that ends without a commit (RSET, EHLO, timeout, drop,
// QUIT, drain) are deleted.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/socket_deadline.hpp"
#include "policy/runtime.hpp"
#include "server/auth_throttle.hpp"
#include "server/connection_gate.hpp"
#include "server/server_stats.hpp"
#include "server/smtp_server.hpp"
#include "settings/gateway_config.hpp"
#include "smtp/address.hpp"
#include "smtp/params.hpp"
#include "smtp/reply.hpp"
#include "spool/message_id.hpp"
#include "submit/message_draft.hpp"
#include "submit/submitter.hpp"
#include "tls/server_context.hpp"
#include "tls/stream.hpp"

namespace mailgate::webhooks {
class Webhooks;
}

namespace mailgate::server {

class Session;

// Everything a session needs from its worker. Owned by the server, one per worker.
struct WorkerState {
  unsigned index = 0;
  const settings::GatewayConfig* config = nullptr;
  spool::SpoolWriter* writer = nullptr;
  spool::Store* store = nullptr;
  ServerStats stats;
  // The worker's open sessions, linked through the sessions themselves (no
  // node allocation per connection; drain walks it).
  Session* sessions = nullptr;
  eventlog::DeliveryLog* log = nullptr;      // rejection events (may be null)
  webhooks::Webhooks* webhooks = nullptr;    // ... and their webhooks (may be null)
  policy::PolicyRuntime* policy = nullptr;   // null: no hooks
  submit::Submitter* submitter = nullptr;    // this worker's submission stage
  const tls::ServerContexts* tls = nullptr;  // per listener (null: no TLS anywhere)
  AuthThrottle* auth_throttle = nullptr;     // AUTH failures per IP (shared by workers)
  bool draining = false;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::ip::tcp::socket socket, WorkerState& worker, const ListenerConfig& listener);
  ~Session();

  // Before run(): takes this session's places in the connection caps (or
  // notes the refusal the session will answer with).
  void admit(ConnectionGate& gate, std::size_t listener_index);
  // The greeting and the first commands. It returns when the session ended,
  // or earlier, when it waits for a command parked (see serve()): the
  // session lives on (it owns itself through its pending wait) until it ends.
  asio::awaitable<void> run();
  // Called on the session's worker when the server drains: an idle session is
  // woken and says 421; a session receiving data finishes its transaction first.
  void request_drain();
  Session* next_in_worker() const { return next_in_worker_; }

 private:
  struct Recipient {
    smtp::Address address;
    smtp::RcptParams params;
  };
  struct Transaction {
    bool active = false;
    spool::MessageId id;  // from MAIL on (tx.id for hooks, rejection records)
    smtp::Path sender;
    smtp::MailParams params;
    std::vector<Recipient> recipients;
    bool bdat = false;                        // a BDAT sequence is under way
    std::map<std::string, std::string> meta;  // msg:set_meta
    policy::PolicyRef policy;                 // the version this transaction started with
  };

  // I/O (session.cpp)
  enum class ReadResult : std::uint8_t { Ok, Closed, Timeout, Drain };
  // Which limit made a read time out: the read's own timeout, or one of the
  // whole-session, whole-transaction and data-rate limits.
  enum class Limit : std::uint8_t { Read, Session, Transaction, DataRate };
  // The 421 for a timeout (its text names the limit), counted.
  void timeout_reply(const char* waiting_for);
  // The greeting with greet_pause: "220-", a pause, "220 ". False: the
  // client spoke first (554 5.5.1 queued) or went away.
  asio::awaitable<bool> greet();
  asio::awaitable<ReadResult> read_more(std::chrono::milliseconds timeout);
  // Before a wait for input: compacts in_ and returns `timeout` shortened by
  // the session, transaction and data-rate limits (limit_ says which; 0:
  // already passed).
  std::chrono::milliseconds prepare_read(std::chrono::milliseconds timeout);
  // How a wait that failed with `ec` ended (deadline, drain or the client).
  ReadResult wait_result(std::error_code ec) const;
  std::error_code read_available();
  void count_data(std::size_t before);  // data_bytes_ += what came after `before`
  // Writes what the socket takes of out_ without waiting (plaintext only);
  // false on an error (out_ is then dropped, as flush() does).
  bool write_now();
  asio::awaitable<bool> flush();
  void reply(const smtp::Reply& r);
  void reply(int code, const char* enhanced, std::string_view text);
  bool count_error();    // true when the error limit is reached
  void count_refusal();  // a connection over a cap (admission_), in the stats
  // Delivery-log record for an inbound event ("reception" or "rejection").
  void log_event(const char* event, std::string_view recipient, const smtp::Reply* reply,
                 std::uint64_t size = 0);
  // One "rejection" record per recipient of the refused transaction.
  void log_rejected_message(const smtp::Reply& reply);
  void close();

  // Dialogue (session.cpp)
  // From the connection to the greeting; false: the session ends.
  asio::awaitable<bool> open();
  // Serves every buffered command, after a wait for one that ended with
  // `woke`. When the next command must be waited for outside a transaction,
  // a plaintext session parks (wait_for_command) and serve returns: no
  // coroutine frame is held while the client is silent, which is most of an
  // idle session's life.
  // Otherwise it ends the session (replies flushed, transaction aborted, closed).
  asio::awaitable<void> serve(ReadResult woke);
  // The reply for a command wait that did not end with input (timeout, drain).
  void command_wait_ended(ReadResult why);
  // The parked wait: a plain readiness callback (holding the session), with
  // the command timeout; command_ready reads what came and spawns serve()
  // once a complete line (or anything that ends the wait) is there.
  void wait_for_command();
  void arm_command_wait();  // the wait itself (the deadline is already set)
  void command_ready(std::error_code ec);
  void resume(ReadResult woke);  // spawns serve(woke)
  asio::awaitable<bool> handle_line(std::string_view line);
  asio::awaitable<void> do_ehlo(std::string_view arg, bool esmtp);
  asio::awaitable<void> do_mail(std::string_view arg);
  asio::awaitable<void> do_rcpt(std::string_view arg);
  void reset_transaction();
  // Ends the transaction without a commit: deletes body chunks already written.
  asio::awaitable<void> abort_transaction();
  // Hooks (session_policy.cpp)
  bool has_hook(policy::Event e) const;
  const policy::TxInfo& tx_info();
  // The verdict's reply (a hook error is logged by the runtime). True when it refused.
  bool refused_by(const policy::Verdict& v);
  asio::awaitable<bool> connect_allowed();  // false: refused (reply queued)

  // TLS (session_tls.cpp)
  // The listener's certificate, when STARTTLS may be offered / TLS started.
  std::shared_ptr<asio::ssl::context> tls_context() const;
  bool starttls_offered() const;
  // STARTTLS's checks: false when refused (the reply is queued, counted).
  bool starttls_allowed(std::string_view arg);
  void discard_pipelined_input();  // what the client sent after STARTTLS
  void forget_helo();              // after the handshake: EHLO (and AUTH) again
  // The handshake (implicit TLS, or after "220 Ready to start TLS").
  asio::awaitable<bool> start_tls();

  // AUTH (session_auth.cpp)
  bool auth_offered() const;
  asio::awaitable<bool> do_auth(std::string_view arg);  // false: close
  // "334 CHALLENGE", then the client's response line (nullopt: closed,
  // timed out or too long; the reply is queued).
  asio::awaitable<std::optional<std::string>> sasl_response(std::string_view challenge);
  asio::awaitable<std::optional<std::string>> read_sasl_line();

  // Message reception (session_data.cpp)
  asio::awaitable<bool> do_data();
  asio::awaitable<bool> do_bdat(std::string_view arg);
  void begin_body(bool bdat);
  // The client went away or timed out mid-message: drop what was stored.
  asio::awaitable<void> abandon_message(ReadResult why);
  // The submission of the finished message (or of its refusal).
  submit::Submission submission();
  asio::awaitable<void> finish_message();  // the submission stage, then the reply

  // Members are what every session holds, idle ones too (issue 15: KiB per
  // idle session); what only a transaction, a refusal or TLS needs is
  // allocated when needed (txs_, refusal_reply_, tls_).
  asio::ip::tcp::socket socket_;
  // After STARTTLS / on an implicit-TLS listener. Its version and cipher are
  // read from it when a message is submitted (conn_.tls: the handshake succeeded).
  std::unique_ptr<tls::ServerStream> tls_;
  net::SocketDeadline deadline_;
  WorkerState& worker_;
  const ListenerConfig& listener_;
  std::chrono::steady_clock::time_point session_deadline_;

  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;

  policy::PolicyRef policy_;  // the version the connection started with
  // The connection as hooks see it, and the session's own record of it: the
  // client's address, its EHLO/HELO name ("" before one) and its SMTP AUTH
  // identity ("" until AUTH succeeded) are kept here only (no second copy).
  policy::ConnInfo conn_;
  ConnectionGate::Ticket ticket_;               // the places taken in the caps
  std::unique_ptr<smtp::Reply> refusal_reply_;  // over a cap: the 421 to answer with
  ConnectionGate::Refusal refusal_ = ConnectionGate::Refusal::None;
  std::uint32_t listener_index_ = 0;
  std::uint32_t errors_ = 0;
  std::uint32_t junk_ = 0;
  std::uint32_t auth_failures_ = 0;
  Limit limit_ = Limit::Read;  // of the last Timeout
  bool may_relay_ = false;
  bool esmtp_ = false;
  bool drain_requested_ = false;
  bool idle_wait_ = false;  // blocked waiting for a command (drain may interrupt)
  bool closing_ = false;
  Session* prev_in_worker_ = nullptr;  // WorkerState::sessions
  Session* next_in_worker_ = nullptr;

  // Per-transaction state, allocated at MAIL and freed when the transaction
  // ends (reset_transaction): an idle session holds none of it (~1 KiB).
  struct TxState {
    TxState(spool::SpoolWriter& writer, const spool::Store& store, std::size_t spill_at)
        : draft(writer, store, spill_at) {}
    Transaction tx;
    submit::MessageDraft draft;                      // the message being received (DATA / BDAT)
    policy::TxInfo hook_tx;                          // the transaction as hooks see it (tx_info())
    bool hook_tx_sender = false;                     // hook_tx.sender is set
    std::chrono::steady_clock::time_point deadline;  // from MAIL (transaction_timeout)
    std::chrono::steady_clock::time_point data_start;  // while the draft receives
    std::uint64_t data_bytes = 0;                      // read since data_start
  };
  std::unique_ptr<TxState> txs_;
  TxState& tx_state();  // allocates it on first use
  Transaction& tx() { return tx_state().tx; }
  submit::MessageDraft& draft() { return tx_state().draft; }
  bool tx_active() const { return txs_ && txs_->tx.active; }
  bool receiving() const { return txs_ && txs_->draft.receiving(); }
};

}  // namespace mailgate::server
