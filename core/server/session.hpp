// server/session: one inbound SMTP session (a coroutine on one worker).
// Internal to the server module. The dialogue (session.cpp) and the message
// reception path (session_data.cpp) are separate translation units because
// coroutine code is slow to compile.
// Promises: every read has a deadline; input is buffered up to a fixed bound
// (command line limit, or one read chunk during data); replies are flushed
// before the session would block on a read (RFC 2920 pipelining); nothing is
// acknowledged before the spool batch that holds it is synced.
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
#include <unordered_set>
#include <vector>

#include "metrics/outcome_counters.hpp"
#include "net/socket_deadline.hpp"
#include "policy/config.hpp"
#include "policy/runtime.hpp"
#include "server/server_stats.hpp"
#include "server/smtp_server.hpp"
#include "smtp/address.hpp"
#include "smtp/data_scanner.hpp"
#include "smtp/params.hpp"
#include "smtp/reply.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace mailgate::server {

class Session;

// Everything a session needs from its worker. Owned by the server, one per worker.
struct WorkerState {
  unsigned index = 0;
  const policy::Config* config = nullptr;
  spool::SpoolWriter* writer = nullptr;
  spool::Store* store = nullptr;
  spool::IdGenerator ids{0, 0};
  ServerStats stats;
  std::unordered_set<Session*> sessions;
  eventlog::DeliveryLog* log = nullptr;  // reception/rejection events (may be null)
  // Called on the worker after a message is committed: hands it to the queue.
  SmtpServer::AcceptedFn on_accepted;
  policy::PolicyRuntime* policy = nullptr;     // null: no hooks
  const std::string* inject_secret = nullptr;  // see SmtpServer::inject_secret
  // mailgate_deliveries_total{result="discard"} by destination label.
  const metrics::DestinationLabels* labels = nullptr;
  std::unique_ptr<metrics::OutcomeCounters> outcomes;
  bool draining = false;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::ip::tcp::socket socket, WorkerState& worker,
          const policy::ListenerConfig& listener);
  ~Session();

  asio::awaitable<void> run();
  // Called on the session's worker when the server drains: an idle session is
  // woken and says 421; a session receiving data finishes its transaction first.
  void request_drain();

 private:
  struct Recipient {
    smtp::Address address;
    smtp::RcptParams params;
  };
  struct Transaction {
    bool active = false;
    smtp::Path sender;
    smtp::MailParams params;
    std::vector<Recipient> recipients;
    // Body reception state (DATA or a BDAT sequence).
    bool receiving = false;
    bool bdat = false;
    bool too_big = false;
    bool spool_error = false;  // an unsynced chunk write failed
    spool::MessageId id;
    std::string body;  // in-memory part, not yet written
    std::uint32_t chunks_written = 0;
    std::uint64_t stored_bytes = 0;  // everything written or buffered
    smtp::DataScanner scanner;
    // When the body spills, its header section is held back as chunk 0
    // (written last) so the message hook can still read and edit it.
    bool headers_held = false;
    std::string header_block;
    std::map<std::string, std::string> meta;  // msg:set_meta
    policy::PolicyRef policy;                 // the version this transaction started with
    // Filled by the route hook: each recipient's destination ("" = discard).
    std::vector<std::string> rcpt_dest;
    std::map<std::string, std::uint8_t> dest_tls;  // spool::RouteTls per smarthost destination
  };

  // I/O (session.cpp)
  enum class ReadResult { Ok, Closed, Timeout, Drain };
  asio::awaitable<ReadResult> read_more(std::chrono::milliseconds timeout);
  std::error_code read_available();
  asio::awaitable<bool> flush();
  void reply(const smtp::Reply& r);
  void reply(int code, const char* enhanced, std::string_view text);
  bool count_error();  // true when the error limit is reached
  // Delivery-log record for an inbound event ("reception" or "rejection").
  void log_event(const char* event, std::string_view recipient, const smtp::Reply* reply,
                 std::uint64_t size = 0);
  // One "rejection" record per recipient of the refused transaction.
  void log_rejected_message(const smtp::Reply& reply);
  void close();

  // Dialogue (session.cpp)
  asio::awaitable<void> converse();
  asio::awaitable<bool> handle_line(std::string_view line);
  asio::awaitable<void> do_ehlo(std::string_view arg, bool esmtp);
  asio::awaitable<void> do_mail(std::string_view arg);
  asio::awaitable<void> do_rcpt(std::string_view arg);
  void reset_transaction();
  // XMAILGATE on the internal listener: the HTTP inject client's identity.
  void do_xmailgate(std::string_view line);
  // Hooks (session_policy.cpp)
  bool has_hook(policy::Event e) const;
  const policy::TxInfo& tx_info();
  // The verdict's reply (a hook error is logged by the runtime). True when it refused.
  bool refused_by(const policy::Verdict& v);
  asio::awaitable<bool> connect_allowed();  // false: refused (reply queued)
  // Runs the message hook and the route hook for each recipient domain;
  // fills `dests` (destination → recipient indexes). False: refused with `refusal`.
  asio::awaitable<bool> apply_message_policy(smtp::Reply& refusal);

  // Message reception (session_data.cpp)
  asio::awaitable<bool> do_data();
  asio::awaitable<bool> do_bdat(std::string_view arg);
  void begin_body(bool bdat);
  // Scans input into the body (limits, spill); the caller advances in_pos_.
  asio::awaitable<smtp::DataScanner::Step> absorb(std::string_view input);
  // The client went away or timed out mid-message: drop what was stored.
  asio::awaitable<void> abandon_message(ReadResult why);
  asio::awaitable<bool> spill_body();      // unsynced chunk write when over body_buffer
  asio::awaitable<void> finish_message();  // checks, commit, reply
  // Refuses the message at end of data: drops stored chunks, replies, logs
  // one rejection per recipient, counts them (data stage, or message hook).
  asio::awaitable<void> refuse_message(smtp::Reply r, bool by_policy);
  // "discard" events (route hook) in the delivery log and the counters.
  void log_discards(const std::vector<std::uint32_t>& discarded, const spool::Envelope& env,
                    const smtp::Reply& ok);
  asio::awaitable<void> discard_chunks();  // after a rejected message
  std::size_t store_limit() const;

  asio::ip::tcp::socket socket_;
  net::SocketDeadline deadline_;
  WorkerState& worker_;
  const policy::ListenerConfig& listener_;
  std::string remote_ip_;
  bool may_relay_ = false;

  std::string in_;
  std::size_t in_pos_ = 0;
  std::string out_;
  bool drain_requested_ = false;
  bool idle_wait_ = false;  // blocked waiting for a command (drain may interrupt)
  bool closing_ = false;

  std::string helo_;
  bool esmtp_ = false;
  policy::PolicyRef policy_;  // the version the connection started with
  policy::ConnInfo conn_;
  policy::TxInfo hook_tx_;       // the transaction as hooks see it (tx_info())
  bool hook_tx_sender_ = false;  // hook_tx_.sender is set
  bool injected_ = false;        // an HTTP inject (XMAILGATE accepted)
  unsigned errors_ = 0;
  unsigned junk_ = 0;
  Transaction tx_;
};

}  // namespace mailgate::server
