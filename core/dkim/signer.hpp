// dkim/signer: builds a DKIM-Signature header field (RFC 6376 §3.5, §5) for
// a message's final header section and its body hash: which fields are
// signed (h=, with over-signing), the tags, and the signature.
// Promises: pure apart from the key's signing; no l= tag (the whole body is
// signed); h= names every configured field as often as the message has it
// and the over-signed ones (From, To, Subject, Date, Message-ID) once more,
// so none of them can be added after signing without breaking the
// signature; From is always signed (RFC 6376 §5.4). The field returned is
// folded to lines under 80 octets (b= and bh= in pieces), ends with CRLF and
// verifies with the same bytes a verifier sees.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dkim/canonicalization.hpp"
#include "dkim/signing_key.hpp"

namespace mailgate::dkim {

// One msg:dkim_sign{} call (DESIGN §6b).
struct SignRequest {
  std::string domain;    // d=
  std::string selector;  // s=
  std::string key_path;
  std::optional<Algorithm> algorithm;  // nullopt: the key's own
  std::vector<std::string> headers;    // empty: default_signed_headers()
  CanonicalizationPair canonicalization;
  std::optional<std::chrono::seconds> expire;  // x= = t= + expire
  bool send_unsigned_on_error = false;         // on_error = "send_unsigned"
};

// From, To, Cc, Subject, Date, Message-ID, Reply-To, MIME-Version,
// Content-Type, List-Unsubscribe (and List-Unsubscribe-Post).
const std::vector<std::string>& default_signed_headers();
bool is_oversigned(std::string_view name);

// The DKIM-Signature field for `request` signed with `key` at `now` (t=).
// `header_section`: the header lines (no empty line), as they will be sent.
// Throws KeyError when the key does not fit the algorithm or signing fails.
std::string signature_field(const SignRequest& request, const SigningKey& key,
                            std::string_view header_section, const Sha256& body_hash,
                            std::int64_t now_unix);

}  // namespace mailgate::dkim
