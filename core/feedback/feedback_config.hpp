// feedback/feedback_config: the `feedback` section of configure{} (inbound
// bounces and complaints, DESIGN §6b) and the VERP template grammar shared by
// check-config (delivery.verp) and the runtime (feedback/verp.hpp).
// Promises: parse_verp_template() accepts exactly one {id} and one
// {rcpt_hash}, nothing else in braces, and an address form local@domain
// whose domain holds no placeholder; anything else is a clear error string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/section.hpp"

namespace mailgate::feedback {

struct FeedbackConfig {
  // How long the sent-message index keeps a message (from its reception).
  config::Duration retention{30LL * 24 * 3600 * 1000};
  // Unmatched reports also suppress (off: only reports matched to a message sent).
  bool suppress_unmatched = false;
  // Bytes of a consumed report that are parsed; the rest is ignored.
  std::uint64_t max_size = 1000 * 1000;
};

const config::Section<FeedbackConfig>& feedback_section();

// "b+{id}.{rcpt_hash}@bounces.example.com" as pieces: literal text (kept as
// written), the message id (32 hex) and the recipient hash (10 base32).
struct VerpPiece {
  enum class Kind { Literal, Id, Hash };
  Kind kind = Kind::Literal;
  std::string text;  // Literal only
};
struct VerpTemplate {
  std::vector<VerpPiece> pieces;
  bool empty() const { return pieces.empty(); }
};
// Empty input: an empty template (VERP off). Else the pieces, or an error.
VerpTemplate parse_verp_template(std::string_view text, std::string& error);

inline constexpr std::size_t kVerpIdLength = 32;    // MessageId::hex()
inline constexpr std::size_t kVerpHashLength = 10;  // base32 characters
inline constexpr std::size_t kMinVerpSecret = 16;

}  // namespace mailgate::feedback
