// submit/submitter: the submission stage (Postfix's cleanup(8) in spirit).
// Every finished message passes here, whatever its source: an SMTP session,
// an HTTP inject, or a message the gateway generates (a DSN). The stage adds
// the trace header, runs the `message` hook (header edits, metadata, a
// verdict) and the `route` hook once per recipient domain, adds the DKIM
// signatures the message hook asked for (submit/dkim_signing), commits the
// message (body chunks, envelope, one queue record per destination, and the
// webhook rows of its reception and discard events) in one synced spool
// write, hands it to the queue, and logs and counts the result.
// One Submitter per worker, used only on that worker's thread.
// Promises:
// - submit() answers 250 only after the commit is synced; every refusal
//   leaves no body chunk behind and is logged (one rejection per recipient).
// - A generated message is already durable (committed with the results that
//   caused it, queued under spool::kSubmitPending): submit_generated() never
//   drops it for a temporary reason (hook tempfail, error or timeout, spool
//   error): it retries with backoff; a reject or a discard deletes it with
//   a `discard` record. A restart resubmits what is still pending.
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dkim/canonicalization.hpp"
#include "dkim/signer.hpp"
#include "metrics/outcome_counters.hpp"
#include "policy/runtime.hpp"
#include "smtp/params.hpp"
#include "smtp/reply.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace mailgate::spool {
class SpoolWriter;
class SpoolReader;
class Store;
}  // namespace mailgate::spool
namespace mailgate::eventlog {
class DeliveryLog;
struct LogRecord;
}  // namespace mailgate::eventlog
namespace mailgate::webhooks {
class Webhooks;
}

namespace mailgate::submit {

class MessageDraft;
struct SigningResult;

enum class Source : std::uint8_t { Smtp = 0, Http = 1, Generated = 2 };
inline constexpr std::size_t kSourceCount = 3;

// Where a message came from: its trace header and the hooks' `tx.conn`.
struct Origin {
  Source source = Source::Smtp;
  std::string helo;  // EHLO/HELO argument (HTTP: our host name)
  std::string client_ip;
  bool esmtp = true;
  bool tls = false;
  std::string tls_version, tls_cipher;  // "TLSv1.3", "TLS_AES_256_GCM_SHA384"
  int tls_bits = 0;
  std::string auth_user;
};

// A received message, complete, as the stage takes it.
struct Submission {
  spool::MessageId id;
  Origin origin;
  std::string sender;
  std::vector<spool::EnvelopeRecipient> recipients;
  smtp::Ret ret = smtp::Ret::Unspecified;
  std::string envid;
  smtp::BodyType body_type = smtp::BodyType::Unspecified;
  bool smtputf8 = false;
  MessageDraft* body = nullptr;
  policy::PolicyRef policy;                 // the transaction's version (null: no hooks)
  const policy::TxInfo* tx = nullptr;       // the transaction as hooks see it
  std::map<std::string, std::string> meta;  // msg:set_meta (hooks may add more)
};

struct SubmitResult {
  enum class Kind { Queued, Discarded, Refused };
  Kind kind = Kind::Refused;
  smtp::Reply reply;  // 250 2.0.0 OK id=<id>, or the refusal
};

// Counters of one worker's stage (written on that worker, summed by scrapes).
struct SubmitStats {
  using Counter = std::atomic<std::uint64_t>;
  explicit SubmitStats(std::size_t destination_labels) : discards(destination_labels) {}
  Counter received[kSourceCount] = {};  // committed messages by source
  Counter bytes_received{0};
  Counter messages_rejected{0};    // refused permanently at end of data / by hooks
  Counter messages_tempfailed{0};  // refused temporarily (hooks, spool errors)
  Counter bare_lf_rejected{0};
  Counter messages_rejected_policy{0};     // by the message hook
  Counter recipients_rejected_data{0};     // recipients of messages refused as received
  Counter recipients_rejected_message{0};  // ... refused by the message or route hook
  Counter generated_retries{0};            // generated messages held back by a tempfail
  Counter http_recipients_accepted{0};     // HTTP inject's envelope (SMTP's: ServerStats)
  Counter http_recipients_rejected{0};
  Counter dkim_signed{0};             // signatures added
  Counter dkim_failed{0};             // signatures that failed (message tempfailed)
  Counter dkim_sent_unsigned{0};      // ... that failed with on_error = "send_unsigned"
  metrics::OutcomeCounters discards;  // route {discard = true}, per destination label
  // Inbound feedback (feedback_stage.cpp): events by [kind][matched], reports
  // that could not be read or were too large by [kind], and events by tenant
  // (msg meta `tenant` of the matched message; at most kMaxFeedbackTenants
  // names per worker, the rest counted as "other").
  Counter feedback_events[2][2] = {};
  Counter feedback_unparsed[2] = {};
  static constexpr std::size_t kMaxFeedbackTenants = 256;
  mutable std::mutex feedback_tenants_mu;
  std::map<std::string, std::array<std::uint64_t, 2>> feedback_tenants;  // [kind]
};

class Submitter {
 public:
  struct Deps {
    unsigned worker = 0;
    asio::io_context* context = nullptr;
    const settings::GatewayConfig* config = nullptr;
    spool::SpoolWriter* writer = nullptr;
    spool::SpoolReader* reader = nullptr;
    const spool::Store* store = nullptr;
    eventlog::DeliveryLog* log = nullptr;             // may be null
    webhooks::Webhooks* webhooks = nullptr;           // may be null
    policy::PolicyRuntime* policy = nullptr;          // for generated messages (may be null)
    policy::SuppressionStore* suppression = nullptr;  // inbound complaints add to it (may be null)
    const metrics::DestinationLabels* labels = nullptr;
    // Hands a committed message to the queue (any worker may own its destinations).
    std::function<void(const spool::MessageId&, const std::vector<spool::QueuedDest>&,
                       std::uint64_t size)>
        queue;
  };
  // `ids`: this worker's message id generator.
  Submitter(Deps deps, spool::IdGenerator ids);
  ~Submitter();

  // A new message id (SMTP: at MAIL, so hooks and rejection records can name
  // the transaction).
  spool::MessageId next_id() { return ids_.next(); }

  // The whole stage for a received message. `s.body` must be complete.
  asio::awaitable<SubmitResult> submit(Submission& s);
  // Refuses a received message without running the stage (e.g. BDAT over
  // the size limit): drops its chunks, logs and counts like submit() does.
  asio::awaitable<void> refuse(Submission& s, const smtp::Reply& reply, bool by_policy);

  // A generated message, already committed under spool::kSubmitPending.
  struct Generated {
    spool::MessageId id;
    spool::Envelope envelope;
    std::string body;  // one chunk
    bool dsn = true;
  };
  // Runs the stage for it in the background on this worker (see Promises).
  void submit_generated(Generated g);
  // A pending generated message found by recovery: loads it, then as above.
  void resubmit_pending(const spool::MessageId& id);

  const SubmitStats& stats() const { return stats_; }
  SubmitStats& stats() { return stats_; }
  // A "rejection" record for a recipient refused before submission (HTTP
  // inject's envelope; the SMTP dialogue logs its own).
  void log_rejection(const spool::MessageId& id, std::string_view sender,
                     std::string_view recipient, const smtp::Reply& reply);

 private:
  asio::awaitable<void> run_generated(std::shared_ptr<Generated> g);
  // Inbound feedback (feedback_stage.cpp): the recipients (index, kind) the
  // route hook said to consume: parse the report, match it, log, hook,
  // suppress, count; their webhook rows are committed (synced) first.
  struct Consumed {
    std::uint32_t index;
    bool complaint;
  };
  asio::awaitable<void> consume_feedback(Submission& s, const std::vector<Consumed>& consumed);
  // The DKIM signatures the hooks asked for (submit/dkim_signing), counted.
  asio::awaitable<SigningResult> sign(
      const std::vector<dkim::SignRequest>& requests, std::optional<std::string_view> section,
      std::function<std::optional<dkim::Sha256>(dkim::Canonicalization)> body, std::string_view id);
  eventlog::LogRecord record(const char* event, const Submission& s, std::string_view recipient,
                             const smtp::Reply& reply, std::uint64_t size) const;
  // An event with no commit of its own: the delivery log and the webhooks.
  void log(const char* event, const Submission& s, std::string_view recipient,
           const smtp::Reply& reply, std::uint64_t size);

  Deps deps_;
  spool::IdGenerator ids_;
  SubmitStats stats_;
};

}  // namespace mailgate::submit
