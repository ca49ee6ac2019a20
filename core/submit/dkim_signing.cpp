// submit/dkim_signing: see dkim_signing.hpp.
#include "submit/dkim_signing.hpp"

#include <spdlog/spdlog.h>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>

#include "dkim/key_cache.hpp"
#include "policy/crypt.hpp"

namespace mailgate::submit {

namespace {

// A queued signing job older than this is dropped (the client would give
// up on its end-of-data reply long before).
constexpr std::chrono::seconds kQueueDeadline{60};

const smtp::Reply kSigningFailed{451, "4.7.0",
                                 "local error: the message could not be DKIM-signed, try again "
                                 "later"};

// The worker's side of a job: woken once the job ran or was dropped.
struct Pending {
  explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool done = false;
  bool ran = false;
  std::vector<SignOutcome> outcomes;
};

// Travels with the job: its destructor (after the job ran, or when the pool
// drops it) posts the answer to the worker, so an answer always comes.
struct Completion {
  Completion(asio::any_io_executor e, std::weak_ptr<Pending> p)
      : ex(std::move(e)), pending(std::move(p)) {}
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion() {
    asio::post(ex, [p = pending, ran = ran, outcomes = std::move(outcomes)]() mutable {
      if (auto pending = p.lock()) {
        pending->ran = ran;
        pending->outcomes = std::move(outcomes);
        pending->done = true;
        pending->timer.cancel();
      }
    });
  }
  asio::any_io_executor ex;
  std::weak_ptr<Pending> pending;
  bool ran = false;
  std::vector<SignOutcome> outcomes;
};

}  // namespace

std::vector<SignOutcome> compute_signatures(const std::vector<dkim::SignRequest>& requests,
                                            std::optional<std::string_view> section,
                                            const BodyHashSource& body, dkim::KeyCache& keys,
                                            std::int64_t now_unix) {
  std::vector<SignOutcome> out(requests.size());
  std::map<dkim::Canonicalization, std::optional<dkim::Sha256>> hashes;  // one per canonicalisation
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    try {
      if (!section) {
        out[i].error = "the header section is too large to be kept in memory (spool.body_buffer)";
        continue;
      }
      auto key = keys.get(r.key_path);
      auto it = hashes.find(r.canonicalization.body);
      if (it == hashes.end())
        it = hashes.emplace(r.canonicalization.body, body(r.canonicalization.body)).first;
      if (!it->second) {
        out[i].error = "the body cannot be read back for hashing";
        continue;
      }
      out[i].field = dkim::signature_field(r, *key, *section, *it->second, now_unix);
    } catch (const std::exception& e) {
      out[i].error = e.what();
    }
  }
  return out;
}

SigningResult settle_signatures(const std::vector<dkim::SignRequest>& requests,
                                const std::vector<SignOutcome>& outcomes, std::string_view id) {
  SigningResult result;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    const std::string error =
        i < outcomes.size() ? outcomes[i].error : "the signing pool is busy or stopping";
    if (i < outcomes.size() && error.empty()) {
      result.fields += outcomes[i].field;
      ++result.signed_count;
      continue;
    }
    if (r.send_unsigned_on_error) {
      ++result.sent_unsigned;
      spdlog::warn("message {}: DKIM signature d={} s={} not added (on_error=send_unsigned): {}",
                   id, r.domain, r.selector, error);
    } else {
      ++result.failed;
      spdlog::error("message {}: DKIM signing d={} s={} failed, message refused (451 4.7.0): {}",
                    id, r.domain, r.selector, error);
      result.refusal = kSigningFailed;
    }
  }
  if (result.refusal) result.fields.clear();
  return result;
}

asio::awaitable<SigningResult> sign_message(const std::vector<dkim::SignRequest>& requests,
                                            std::optional<std::string_view> section,
                                            BodyHashSource body, policy::CryptPool* pool,
                                            dkim::KeyCache* keys, std::string_view id) {
  if (pool == nullptr || keys == nullptr) co_return settle_signatures(requests, {}, id);
  auto ex = co_await asio::this_coro::executor;
  auto pending = std::make_shared<Pending>(ex);
  pending->timer.expires_at(std::chrono::steady_clock::time_point::max());
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  {
    auto completion = std::make_shared<Completion>(ex, pending);
    // The job reads `requests`, `section` and the body in place: this
    // coroutine waits until the job is over (ran or dropped), so they stay.
    pool->run(
        [completion, &requests, section, body = std::move(body), keys, now] {
          completion->outcomes = compute_signatures(requests, section, body, *keys, now);
          completion->ran = true;
        },
        std::chrono::steady_clock::now() + kQueueDeadline);
  }  // from here the job holds the only reference to `completion`
  while (!pending->done) {
    std::error_code ec;
    co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return settle_signatures(requests,
                              pending->ran ? pending->outcomes : std::vector<SignOutcome>{}, id);
}

}  // namespace mailgate::submit
