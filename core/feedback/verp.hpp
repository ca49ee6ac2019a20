// feedback/verp: VERP return paths (delivery.verp). Outbound, the envelope
// sender of a message to one recipient becomes the template with {id} (the
// message id, 32 lower-case hex) and {rcpt_hash} (the first 10 characters of
// the RFC 4648 base32 of HMAC-SHA256(secret, id ‖ lower-cased recipient), in
// lower case) filled in. Inbound, a bounce addressed to such a path names
// its message, and the hash says which recipient it was (checked against
// the message's recipients: a forged or damaged path matches nothing).
// Promises: pure; match() accepts only the template's exact shape (literal
// text compared case-insensitively, 32 hex, 10 base32), never a prefix.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "feedback/feedback_config.hpp"

namespace mailgate::feedback {

class Verp {
 public:
  Verp() = default;  // off
  Verp(VerpTemplate tmpl, std::string secret)
      : tmpl_(std::move(tmpl)), secret_(std::move(secret)) {}
  // From delivery.verp / delivery.verp_secret (validated by check-config).
  static Verp from_config(const std::string& tmpl, const std::string& secret);

  bool enabled() const { return !tmpl_.empty(); }
  // The return path of message `id_hex` for `recipient`.
  std::string address(std::string_view id_hex, std::string_view recipient) const;
  std::string rcpt_hash(std::string_view id_hex, std::string_view recipient) const;

  struct Parsed {
    std::string id_hex;  // lower case
    std::string hash;    // lower case
  };
  // The id and hash of an address made by address(), or nullopt.
  std::optional<Parsed> match(std::string_view address) const;
  // Whether `hash` is the one of (id_hex, recipient) (constant time).
  bool verifies(const Parsed& p, std::string_view recipient) const;

 private:
  VerpTemplate tmpl_;
  std::string secret_;
};

}  // namespace mailgate::feedback
