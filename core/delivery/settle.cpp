// delivery/settle: what happens after one attempt (or a failure without a
// connection), as a pipeline of the steps in their own units: classify the
// replies (classify.hpp, pure) → run the deferred hooks, which may choose the
// retry time (outcome_hooks.hpp) → record results, DSN and the outcomes'
// webhook rows (record.hpp, webhooks/) and, when the message is done, its
// sent-index entry (spool/sent_index.hpp) in one synced spool write → notify
// (hooks, delivery log, metrics, DSN hand-off: notify.hpp) → requeue the
// item with its owner.
// Promises (DESIGN §4): nothing is logged, counted, reported to hooks or
// handed to the submission stage before the write that records it is
// synced; when that write fails, nothing of the attempt is kept (the message
// is tried again after retry.first, its attempts uncounted).
#include <spdlog/spdlog.h>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "delivery/delivery_worker.hpp"
#include "delivery/outcome_hooks.hpp"
#include "delivery/record.hpp"
#include "feedback/sent_entry.hpp"
#include "settings/gateway_config.hpp"
#include "spool/spool_writer.hpp"
#include "submit/submitter.hpp"
#include "webhooks/webhooks.hpp"

namespace mailgate::delivery {

namespace {

AttemptContext context_of(const queue::Item& item, const DestinationLink& dest,
                          const SmtpClient* client) {
  AttemptContext at;
  at.id = item.id;
  at.destination = dest.name();
  at.mx = client ? client->peer_host() : std::string();
  at.tls = client && client->tls();
  at.next_hop_dsn = client && client->capabilities().dsn;
  at.now_ms = queue::now_ms();
  return at;
}

}  // namespace

asio::awaitable<void> DeliveryEngine::Worker::settle(const DestinationLink& dest, queue::Item item,
                                                     std::shared_ptr<spool::LoadedMessage> msg,
                                                     std::vector<RecipientReply> replies,
                                                     const SmtpClient* client, FailedBy failed_by) {
  const auto& cfg = *deps.config;
  const auto at = context_of(item, dest, client);
  auto plan = classify({.envelope = msg->envelope,
                        .dest = msg->dest,
                        .replies = replies,
                        .attempt = at,
                        .retry = retry,
                        .delay_warning = cfg.delivery.retry.delay_warning,
                        .classifier = classifier,
                        .failed_by = failed_by});

  // The deferred hook may choose the next retry (the earliest its handlers ask for).
  OutcomeHooks hooks(deps.policy ? deps.policy->current(index) : nullptr, *msg, item.id);
  const auto hook_delay = co_await hooks.deferred(plan);
  if (plan.pending) {
    plan.dest.attempts = plan.attempt;
    const auto delay = hook_delay ? *hook_delay : retry.delay_after(plan.attempt, rng);
    plan.dest.next_attempt_ms = at.now_ms + delay.count();
  }

  const bool closes_message = !plan.pending && item.ref && item.ref->open_dests.fetch_sub(1) == 1;
  std::optional<DsnMessage> dsn;
  if (!plan.reports.empty()) {
    dsn = make_dsn({msg->envelope, msg->body, at.received_ms(), msg->body_complete},
                   std::move(plan.reports), ids.next(), cfg.hostname, at.now_ms);
  }
  auto set = record(*deps.store, {.id = item.id,
                                  .destination = at.destination,
                                  .dest = plan.dest,
                                  .pending = plan.pending,
                                  .closes_message = closes_message,
                                  .body_chunks = msg->envelope.body_chunks,
                                  .dsn = dsn ? &*dsn : nullptr});
  // The sent-message index entry (inbound feedback matches against it) is
  // written with the final result, before the body and envelope go.
  if (closes_message && !msg->envelope.sender.empty())
    spool::put_sent(set, feedback::sent_entry(item.id, msg->envelope, msg->body));
  // The outcomes' webhook rows are part of the commit that records them.
  webhooks::Staged staged;
  if (deps.webhooks) staged = deps.webhooks->stage(set, log_records(plan, msg->envelope, at));
  std::error_code ec;
  co_await deps.writer->async_write(std::move(set), true,
                                    asio::redirect_error(asio::use_awaitable, ec));
  if (deps.webhooks) {
    if (ec)
      deps.webhooks->abandoned(std::move(staged));
    else
      deps.webhooks->committed(std::move(staged));
  }
  if (ec) {
    // Nothing was recorded: try the whole attempt again later.
    if (closes_message) item.ref->open_dests.fetch_add(1);
    spdlog::error("{}: cannot record delivery results of {}: {}", at.destination, item.id.hex(),
                  ec.message());
    const auto when = at.now_ms + cfg.delivery.retry.first.count();
    co_await on(dest, [&item, when](auto& q, auto& d) { q.retry_later(d, std::move(item), when); });
    co_return;
  }

  co_await hooks.finished(plan);
  auto to = listeners();
  publish(plan, msg->envelope, at, std::move(dsn), to);
  co_await requeue(dest, std::move(item), plan);
}

asio::awaitable<void> DeliveryEngine::Worker::requeue(const DestinationLink& dest, queue::Item item,
                                                      const DeliveryPlan& plan) {
  if (plan.pending) {
    item.attempts = plan.dest.attempts;
    const auto when = plan.dest.next_attempt_ms;
    co_await on(dest, [&item, when](auto& q, auto& d) { q.retry_later(d, std::move(item), when); });
  } else {
    co_await on(dest, [](auto& q, auto& d) { q.finished(d); });
  }
}

Listeners DeliveryEngine::Worker::listeners() {
  auto to = Listeners{*deps.log,
                   index,
                   *labels,
                   counters,
                   [this](DsnMessage&& m) {
                     deps.submitters[index]->submit_generated(
                         {m.id, std::move(m.envelope), std::move(m.body), true});
                   },
                   deps.webhooks};
  to.tenant_labels = tenant_labels;
  return to;
}

}  // namespace mailgate::delivery
