// app/inject_batch: runs a templated injection (POST /api/v1/inject with
// "recipients") on the workers: each recipient's message is rendered
// (template/), built (mime/) and injected as its own transaction through
// run_inject (inject_transaction: envelope hooks, admission, submission
// stage, spool commit), so every recipient gets its own message id and its
// own hook calls. Lanes on every worker (kLanesPerWorker each) take the
// next recipient in turn, so many commits are in flight at once and the
// spool writer syncs them together (group commit).
// Promises: every recipient ends with an id (committed and queued) or a
// reply saying why not; wait() returns only when no recipient is in flight;
// once a recipient is committed the batch runs to its end. The one way it
// stops early: when no recipient finished for `stall` and none was
// committed, recipients not yet started get 451 4.3.0 "not attempted".
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "app/inject_transaction.hpp"
#include "smtp/reply.hpp"
#include "template/template_batch.hpp"

namespace mailgate::app {

struct AdminContext;

struct BatchRecipient {
  std::string email;
  templating::Vars vars;
};

// A validated request: the templates parse, the vars convert.
struct TemplatedInject {
  std::string client_ip;
  std::string from;         // envelope sender
  std::string from_header;  // the From: field (default: `from`)
  std::string hostname;     // for generated Message-IDs
  templating::TemplateBatch templates;
  templating::Vars vars;  // the request's
  std::vector<BatchRecipient> recipients;
};

// One recipient's end: `id` set (accepted), or `reply` (refused).
struct RecipientOutcome {
  std::string id;
  smtp::Reply reply;
};

struct BatchResult {
  std::vector<RecipientOutcome> outcomes;  // in request order
  std::size_t accepted = 0;
  bool stalled = false;  // stopped early (see Promises)
};

inline constexpr unsigned kLanesPerWorker = 32;

// "5.1.1 text" (or the text alone): a reply as the inject API shows it.
std::string reply_text(const smtp::Reply& r);

// The worker-side handles run_inject needs on worker `w`.
InjectWorker inject_worker(const AdminContext& ctx, unsigned w);

// Starts the lanes and waits for them (on the calling thread, an HTTP one).
BatchResult run_templated_inject(const AdminContext& ctx,
                                 std::shared_ptr<const TemplatedInject> request,
                                 std::chrono::milliseconds stall = std::chrono::seconds(60));

}  // namespace mailgate::app
