// submit/dkim_signing: the DKIM step of the submission stage. After the last
// `message` handler and the routing, the requests msg:dkim_sign{} recorded
// are signed over the final header section and the body, in call order, on
// the shared CPU pool (policy::CryptPool: an RSA-2048 signature costs about
// 0.3 ms of CPU, bench/dkim_bench, which would stall a worker's event loop
// under load),
// with keys from the process's key cache (read from disk on that pool the
// first time a path is used).
// Promises: the worker waits for an answer from the pool, always: a job the
// pool drops (full queue, stop) answers "not run", so the message is never
// committed without its decision. A request that cannot be signed (key
// missing or unreadable, algorithm mismatch, body or headers unavailable, pool
// busy) is logged with its reason and makes the message fail temporarily
// (451 4.7.0) unless it asked for on_error = "send_unsigned"; then the
// message goes without that signature.
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dkim/canonicalization.hpp"
#include "dkim/signer.hpp"
#include "smtp/reply.hpp"

namespace mailgate::dkim {
class KeyCache;
}
namespace mailgate::policy {
class CryptPool;
}

namespace mailgate::submit {

// The hash of the message body with a canonicalisation; nullopt when the
// body cannot be read back (e.g. a spilled message whose header section was
// too large to keep). Called on a pool thread while the worker waits.
using BodyHashSource = std::function<std::optional<dkim::Sha256>(dkim::Canonicalization)>;

struct SigningResult {
  std::string fields;  // the DKIM-Signature fields to prepend, in call order
  std::optional<smtp::Reply> refusal;
  unsigned signed_count = 0, failed = 0, sent_unsigned = 0;
};

// One request's outcome: the field, or why there is none.
struct SignOutcome {
  std::string field;
  std::string error;
};

// The signing itself (what runs on the pool): one outcome per request.
// `section`: nullopt when the header section is not available.
std::vector<SignOutcome> compute_signatures(const std::vector<dkim::SignRequest>& requests,
                                            std::optional<std::string_view> section,
                                            const BodyHashSource& body, dkim::KeyCache& keys,
                                            std::int64_t now_unix);

// The outcomes made into what the stage does (fields, refusal), with a log
// line per failure. `id`: the message id for the log.
SigningResult settle_signatures(const std::vector<dkim::SignRequest>& requests,
                                const std::vector<SignOutcome>& outcomes, std::string_view id);

// Runs compute_signatures on `pool` and waits for it (see Promises).
asio::awaitable<SigningResult> sign_message(const std::vector<dkim::SignRequest>& requests,
                                            std::optional<std::string_view> section,
                                            BodyHashSource body, policy::CryptPool* pool,
                                            dkim::KeyCache* keys, std::string_view id);

}  // namespace mailgate::submit
