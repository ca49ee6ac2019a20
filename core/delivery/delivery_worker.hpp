// delivery/delivery_worker: the per-worker half of the delivery engine
// (internal to the module). Each worker owns the destinations that hash to
// it (its QueueShard), and runs connections for any destination: the owner
// starts them round robin over every worker, so one big destination uses
// every core while its queue, limits and counts stay with the owner.
// Where the code is: set-up and hand-over of messages in delivery_engine.cpp;
// the coroutines of a connection (resolve, open, take messages, one attempt
// per message) in delivery_attempt.cpp; settling an attempt in settle.cpp,
// as a pipeline of separate steps: classify (classify.hpp, pure) → record
// (record.hpp, one spool::WriteSet) → notify (outcome_hooks.hpp, notify.hpp)
// → requeue; egress_path shaping in egress_shaping.cpp; admin calls and
// scrapes in engine_admin.cpp.
// Promises: a connection running on another worker than its destination's
// owner reaches the destination and the owner's shard only through on(link,
// f), which runs f on the owner's thread (destination_link.hpp); what else
// it needs is either a copy (DestinationLink::name(), ConnectionSettings) or
// immutable after start (the retry policy, the config).
#pragma once

#include <array>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "delivery/classify.hpp"
#include "delivery/dane.hpp"
#include "delivery/delivery_engine.hpp"
#include "delivery/destination_link.hpp"
#include "delivery/egress_paths.hpp"
#include "delivery/notify.hpp"
#include "delivery/smtp_client.hpp"
#include "delivery/tls_report.hpp"
#include "dns/resolver.hpp"
#include "feedback/verp.hpp"
#include "metrics/histogram.hpp"
#include "metrics/outcome_counters.hpp"
#include "mtasts/mtasts.hpp"
#include "policy/runtime.hpp"
#include "queue/queue_shard.hpp"
#include "queue/retry_policy.hpp"
#include "smtp/bounce_class.hpp"
#include "spool/message_id.hpp"
#include "spool/spool_reader.hpp"

namespace mailgate::delivery {

struct Target {
  std::string host;  // MX host name (or the literal)
  asio::ip::tcp::endpoint endpoint;
  // The answers that named this target (the MX answer, when there was one,
  // and the host's A/AAAA answer) were DNSSEC-authentic: DANE may apply
  // (RFC 7672 §2.2). Never for an address literal.
  bool dnssec = false;
};

struct Route {
  smtp::Reply failure;  // code 0: targets are usable
  std::vector<Target> targets;
  // The MTA-STS policy in force (delivery.mta_sts; null: none, or mode
  // none). Under enforce, `targets` hold only the MX hosts it allows.
  std::shared_ptr<const mtasts::Policy> sts;
  TlsFailure tls_failure = TlsFailure::None;  // with `failure`: TLS policy stopped it
};

// A connection that open_client() got ready, or the reply that decided
// (client null: no target accepted).
struct OpenedClient {
  std::unique_ptr<SmtpClient> client;
  smtp::Reply last;
  TlsFailure tls_failure = TlsFailure::None;  // of the target that gave `last`
};

struct DeliveryEngine::Worker {
  // `retry`: the engine's retry policy (outlives the worker).
  Worker(const EngineDeps& deps, const queue::RetryPolicy& retry, unsigned index);

  const EngineDeps& deps;
  const queue::RetryPolicy& retry;  // immutable after start: any worker may read it
  unsigned index;
  asio::io_context& ctx;
  dns::Resolver* resolver;  // this worker's (EngineDeps::resolvers): its connections' lookups
  // The destinations this worker owns. Only this worker's thread touches it:
  // other workers go through on(link, f).
  std::unique_ptr<queue::QueueShard> shard;
  // Sources, pools, sites, warm-up (the shard's PathGate; null without a policy).
  std::unique_ptr<EgressPaths> paths;
  spool::IdGenerator ids;  // DSN message ids
  smtp::BounceClassifier classifier;
  feedback::Verp verp;  // delivery.verp (off when unset)
  // Metrics (this worker writes them; scrapes sum every worker's).
  const metrics::DestinationLabels* labels = nullptr;
  const metrics::DestinationLabels* tenant_labels = nullptr;  // metrics.tenants
  std::shared_ptr<asio::ssl::context> tls_context;            // the engine's, for every connection
  mtasts::PolicyService* mta_sts = nullptr;  // the engine's (delivery.mta_sts), or null
  DeliveryCounters counters;
  TlsReportCounters tls_report;
  metrics::Histogram delivery_seconds{metrics::delivery_buckets()};
  std::atomic<std::uint64_t> connections{0}, connections_closed{0}, opened_tls{0}, opened_plain{0};
  std::array<std::atomic<std::uint64_t>, kDaneResultCount> dane_sessions{};  // by DaneResult

  std::vector<Worker*>* all = nullptr;  // every worker, for spreading connections
  unsigned next_worker = 0;             // round robin over `all` (owner side)
  std::mt19937_64 rng{std::random_device{}()};

  // --- Owner side: called on this worker for destinations it owns ---
  // Starts one connection for `d`, on this or another worker.
  void start_connection(queue::Destination& d);
  // Is `d.shaping` from the current policy? If not, runs its egress_path
  // hook (once) and tells the shard when it is.
  bool shaping_current(queue::Destination& d);
  asio::awaitable<void> evaluate_egress(queue::Destination& d, policy::PolicyRef policy);
  void expire_item(queue::Destination& d, queue::Item item);

  // Runs `f(shard, destination)` on the owner's thread (where the
  // destination's queue lives) and resumes here with its result. Direct call
  // when this is the owner. `f` is taken by reference (it lives in the
  // caller's full expression, which spans the suspension) and must not own
  // resources: g++ 12 copies coroutine parameters with init-captures wrongly
  // (double release seen).
  template <class F>
  asio::awaitable<std::invoke_result_t<F&, queue::QueueShard&, queue::Destination&>> on(
      const DestinationLink& link, F&& f);

  // --- Connection side: on the worker running the connection ---
  asio::awaitable<void> connection(DestinationLink dest);
  asio::awaitable<Route> resolve(const std::string& destination);
  // sts_route.cpp: looks up `domain`'s MTA-STS policy and applies it to
  // `route` (enforce: only the MX hosts it allows, or a 4.7.5 failure when
  // none is); counts what a policy failure was (TLS-RPT).
  asio::awaitable<void> apply_mta_sts(const std::string& domain, Route& route);
  // dane_route.cpp: what DANE means for target `t` (its TLSA lookup when
  // its answers were authentic; cached by the resolver per TTL).
  asio::awaitable<DanePlan> plan_dane_for(const Target& t);
  void count_dane(DaneResult r);
  // TLS-RPT: one session result for `destination`.
  void report_tls(const std::string& destination, TlsPolicyType type, TlsFailure result);
  // TLS-RPT: what open() of `client` under `mode` means (no session at all,
  // e.g. a refused connection, or mode Disabled: nothing); policy type tlsa
  // under mode Dane (DANE wins over MTA-STS); under an MTA-STS testing
  // policy also the failures that were not enforced (logged).
  void report_session(const std::string& destination, const Route& route, smtp::TlsMode mode,
                      const SmtpClient& client, const smtp::Reply& reply);
  // Tries the targets in order until one greets and accepts EHLO/HELO.
  asio::awaitable<OpenedClient> open_client(const std::string& destination, const Route& route,
                                            const ConnectionSettings& settings);
  // No target accepted a connection: the whole destination waits.
  asio::awaitable<void> defer_destination(const DestinationLink& dest, const smtp::Reply& last,
                                          TlsFailure tls_failure = TlsFailure::None);
  // The destination's next message for this connection, lingering up to
  // kIdleReuse for one; nothing: close. `after_message`: the connection has
  // sent one already (it may then be asked to give its slot up).
  asio::awaitable<std::optional<queue::Item>> next_item(const DestinationLink& dest,
                                                        bool after_message);
  // One message over `client`: load, the SMTP transaction, settle().
  asio::awaitable<void> attempt(const DestinationLink& dest, queue::Item item, SmtpClient& client);
  // The reader could not load `item`: gone from the spool (no_such_file:
  // finished) or unreadable now (requeued with the retry backoff, never dropped).
  asio::awaitable<void> unreadable(const DestinationLink& dest, queue::Item item,
                                   std::error_code ec);
  // Final failure for every pending recipient of `item` without a
  // connection (DNS permanent failure, mail loop, expiry: kExpired, admin
  // bounce).
  asio::awaitable<void> fail_item(DestinationLink dest, queue::Item item, smtp::Reply reply,
                                  FailedBy failed_by = FailedBy::Delivery);
  // settle.cpp: classify → record (one synced write, + DSN) → notify →
  // requeue. `client` is the connection used (null when none was).
  asio::awaitable<void> settle(const DestinationLink& dest, queue::Item item,
                               std::shared_ptr<spool::LoadedMessage> msg,
                               std::vector<RecipientReply> replies, const SmtpClient* client,
                               FailedBy failed_by = FailedBy::Delivery);
  // The item goes back to its owner: retry_later when a recipient is
  // pending, else finished.
  asio::awaitable<void> requeue(const DestinationLink& dest, queue::Item item,
                                const DeliveryPlan& plan);
  // shaping_replies.cpp: what sees every reply of a connection to
  // `destination` and fires the policy's shaping rules of its site (empty,
  // i.e. no cost per reply, when the site has none).
  SmtpClient::ReplyObserver shaping_observer(const std::string& destination,
                                             const ConnectionSettings& settings);
  // A rule fired: log it, persist it, and hold the tenant or campaign on
  // every worker for a suspend_tenant / suspend_campaign action.
  void apply_shaping(const egress::ShapingAction& a);

  // Where this worker's delivery news goes (notify.hpp).
  Listeners listeners();

  static const smtp::Reply kExpired;
};

// "suspend source 'ip1' site 'yahoo'", for the process log (shaping_replies.cpp).
std::string describe_shaping(const egress::ShapingAction& a);
// "tenant acme campaign spring at example.com until ... ms" (engine_tenants.cpp).
std::string describe_suspension(const tenancy::Suspension& s);
// The hold a SuspendTenant / SuspendCampaign action puts on every worker
// (shaping_engine.cpp).
tenancy::Suspension hold_of(const egress::ShapingAction& a);

template <class F>
asio::awaitable<std::invoke_result_t<F&, queue::QueueShard&, queue::Destination&>>
DeliveryEngine::Worker::on(const DestinationLink& link, F&& f) {
  // Written without `co_return f()` / `co_return co_await` (see session.cpp).
  using R = std::invoke_result_t<F&, queue::QueueShard&, queue::Destination&>;
  Worker& owner = *link.owner_;
  queue::Destination& d = *link.dest_;
  auto initiate = [&owner, &d, &f](auto handler) {
    auto back = asio::get_associated_executor(handler);
    asio::post(owner.ctx, [&owner, &d, &f, h = std::move(handler), back]() mutable {
      if constexpr (std::is_void_v<R>) {
        f(*owner.shard, d);
        asio::post(back, std::move(h));
      } else {
        asio::post(back, [h = std::move(h), r = f(*owner.shard, d)]() mutable { h(std::move(r)); });
      }
    });
  };
  if constexpr (std::is_void_v<R>) {
    if (&owner == this) {
      f(*owner.shard, d);
    } else {
      co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(initiate,
                                                                           asio::use_awaitable);
    }
    co_return;
  } else {
    if (&owner == this) {
      R r = f(*owner.shard, d);
      co_return r;
    }
    R r = co_await asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
        initiate, asio::use_awaitable);
    co_return r;
  }
}

}  // namespace mailgate::delivery
