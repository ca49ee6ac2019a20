// app/inject_batch: see inject_batch.hpp.
#include "app/inject_batch.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <variant>

#include "app/admin_api.hpp"
#include "mime/mime.hpp"
#include "net/worker_pool.hpp"
#include "settings/gateway_config.hpp"
#include "submit/submitter.hpp"

namespace mailgate::app {

namespace {

struct BatchState {
  std::shared_ptr<const TemplatedInject> job;
  std::vector<RecipientOutcome> outcomes;  // [i] written by the lane that took i
  std::atomic<std::size_t> next{0};        // the next recipient to take
  std::atomic<std::size_t> finished{0};    // recipients with an outcome
  std::atomic<std::size_t> committed{0};   // ... that were accepted
  std::atomic<std::size_t> lanes{0};       // lanes still running
  std::atomic<bool> stop_starting{false};  // stalled before any commit
  std::promise<void> done;                 // set by the last lane
};

// The message of one recipient, or why it cannot be made (a 5.6.0: the
// content, not the address, is at fault).
std::variant<std::string, smtp::Reply> build_for(const TemplatedInject& job,
                                                 const BatchRecipient& rcpt) {
  auto rendered = job.templates.render(job.vars, rcpt.vars);
  if (auto* e = std::get_if<templating::TemplateError>(&rendered))
    return smtp::Reply{550, "5.6.0", e->what()};
  auto& parts = std::get<templating::RenderedParts>(rendered);
  mime::StructuredMessage m;
  m.from = job.from_header;
  m.to = {rcpt.email};
  m.subject = std::move(parts.subject);
  m.text = std::move(parts.text);
  m.html = std::move(parts.html);
  m.headers = std::move(parts.headers);
  mime::BuildOptions opts;
  opts.hostname = job.hostname;
  try {
    return mime::build_message(m, opts);
  } catch (const mime::BuildError& e) {
    return smtp::Reply{550, "5.6.0", e.what()};
  }
}

// One recipient, start to end (the lane's step).
asio::awaitable<RecipientOutcome> inject_one(const InjectWorker& w, const TemplatedInject& job,
                                             const BatchRecipient& rcpt) {
  RecipientOutcome out;
  // Refused here, before any transaction: the delivery log and the webhooks
  // still get the `rejection` record run_inject writes for its refusals.
  auto refuse = [&](smtp::Reply reply) {
    w.submitter->log_rejection(w.submitter->next_id(), job.from, rcpt.email, reply);
    out.reply = std::move(reply);
  };
  if (rcpt.email.empty() || rcpt.email.find_first_of("\r\n<>") != std::string::npos) {
    refuse({553, "5.1.3", "bad recipient address syntax"});
    co_return out;
  }
  auto built = build_for(job, rcpt);
  if (auto* refusal = std::get_if<smtp::Reply>(&built)) {
    refuse(std::move(*refusal));
    co_return out;
  }
  auto request = std::make_shared<InjectRequest>();
  request->client_ip = job.client_ip;
  request->from = job.from;
  request->to = {rcpt.email};
  request->content = std::move(std::get<std::string>(built));
  const InjectResult r = co_await run_inject(w, std::move(request));
  switch (r.kind) {
    case InjectResult::Kind::Accepted:
      out.id = r.id;
      break;
    case InjectResult::Kind::NoRecipient:
      out.reply = r.rejected.empty() ? r.reply : r.rejected.front().second;
      break;
    case InjectResult::Kind::SenderRefused:
    case InjectResult::Kind::MessageRefused:
      out.reply = r.reply;
      break;
  }
  co_return out;
}

asio::awaitable<void> lane(std::shared_ptr<BatchState> st, InjectWorker w) {
  const auto& job = *st->job;
  const std::size_t n = job.recipients.size();
  while (!st->stop_starting.load(std::memory_order_relaxed)) {
    const std::size_t i = st->next.fetch_add(1, std::memory_order_relaxed);
    if (i >= n) break;
    RecipientOutcome out;
    try {
      out = co_await inject_one(w, job, job.recipients[i]);
    } catch (const std::exception& e) {
      out.reply = {451, "4.3.0", std::string("local error: ") + e.what()};
    }
    if (!out.id.empty()) st->committed.fetch_add(1, std::memory_order_relaxed);
    st->outcomes[i] = std::move(out);
    st->finished.fetch_add(1, std::memory_order_relaxed);
  }
  // acq_rel: the last lane sees every other lane's outcomes before it
  // hands them to the waiting thread.
  if (st->lanes.fetch_sub(1, std::memory_order_acq_rel) == 1) st->done.set_value();
}

}  // namespace

std::string reply_text(const smtp::Reply& r) {
  return r.enhanced.empty() ? r.text : r.enhanced + " " + r.text;
}

InjectWorker inject_worker(const AdminContext& ctx, unsigned w) {
  InjectWorker worker;
  worker.index = w;
  worker.config = ctx.config;
  worker.policy = ctx.policy;
  worker.submitter = ctx.submitters[w];
  worker.writer = ctx.writer;
  worker.store = ctx.store;
  return worker;
}

BatchResult run_templated_inject(const AdminContext& ctx,
                                 std::shared_ptr<const TemplatedInject> request,
                                 std::chrono::milliseconds stall) {
  auto st = std::make_shared<BatchState>();
  const std::size_t n = request->recipients.size();
  st->job = std::move(request);
  st->outcomes.resize(n);
  BatchResult result;
  if (n == 0) return result;
  auto finished = st->done.get_future();
  const unsigned workers = static_cast<unsigned>(ctx.workers->size());
  const std::size_t lanes = std::min<std::size_t>(n, std::size_t{workers} * kLanesPerWorker);
  st->lanes.store(lanes);
  for (std::size_t l = 0; l < lanes; ++l) {
    const unsigned w = static_cast<unsigned>(l % workers);
    asio::co_spawn(ctx.workers->context(w), lane(st, inject_worker(ctx, w)), asio::detached);
  }
  // No deadline once something is committed: the client must learn every id.
  std::size_t seen = 0;
  auto last_progress = std::chrono::steady_clock::now();
  while (finished.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
    const auto now = std::chrono::steady_clock::now();
    if (const auto f = st->finished.load(std::memory_order_relaxed); f != seen) {
      seen = f;
      last_progress = now;
    } else if (now - last_progress > stall && st->committed.load() == 0 &&
               !st->stop_starting.load()) {
      st->stop_starting.store(true);
      result.stalled = true;
    }
  }
  finished.get();
  result.outcomes = std::move(st->outcomes);
  for (auto& o : result.outcomes) {
    if (!o.id.empty()) {
      ++result.accepted;
    } else if (o.reply.code == 0) {
      o.reply = {451, "4.3.0", "not attempted: the gateway made no progress, try again later"};
    }
  }
  return result;
}

}  // namespace mailgate::app
