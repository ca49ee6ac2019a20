// webhooks/signature: the signature of a webhook POST (DESIGN §6b):
// X-Mailgate-Signature: sha256=<lower-case hex HMAC-SHA256(secret,
// timestamp + "." + body)>, timestamp = X-Mailgate-Timestamp (unix seconds).
// Promises: deterministic, 64 lower-case hex digits after "sha256="; the
// secret is only read, never copied anywhere else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mailgate::webhooks {

// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
std::string signature(std::string_view secret, std::int64_t timestamp, std::string_view body);

}  // namespace mailgate::webhooks
