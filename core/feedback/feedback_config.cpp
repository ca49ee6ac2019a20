// feedback/feedback_config: see feedback_config.hpp.
#include "feedback/feedback_config.hpp"

#include "config/schema.hpp"

namespace mailgate::feedback {

const config::Section<FeedbackConfig>& feedback_section() {
  using C = FeedbackConfig;
  static const config::Section<C> s{{
      config::duration("retention", &C::retention,
                       "how long the sent-message index (id → sender, recipients, tenant, "
                       "campaign, Message-ID) keeps a message after its reception, so that late "
                       "bounces and complaints still match it"),
      config::boolean("suppress_unmatched", &C::suppress_unmatched,
                      "reports that match no message sent by this gateway also suppress: an "
                      "unmatched complaint its reported address, an unmatched bounce its address "
                      "when classed `bad-mailbox` (off: a forged report cannot suppress anything)"),
      config::size("max_size", &C::max_size,
                   "a consumed bounce or complaint larger than this (or than "
                   "`spool.body_buffer`: reports are parsed in memory) is accepted with `250` "
                   "but not parsed, and counted in `mailgate_feedback_unparsed_total`",
                   4096),
  }};
  return s;
}

VerpTemplate parse_verp_template(std::string_view text, std::string& error) {
  VerpTemplate out;
  if (text.empty()) return out;
  int ids = 0, hashes = 0;
  std::string literal;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '}') {
      error = "a '}' without '{'";
      return {};
    }
    if (c != '{') {
      literal.push_back(c);
      ++i;
      continue;
    }
    const auto close = text.find('}', i);
    if (close == std::string_view::npos) {
      error = "a '{' without '}'";
      return {};
    }
    const auto name = text.substr(i + 1, close - i - 1);
    VerpPiece piece;
    if (name == "id") {
      piece.kind = VerpPiece::Kind::Id;
      ++ids;
    } else if (name == "rcpt_hash") {
      piece.kind = VerpPiece::Kind::Hash;
      ++hashes;
    } else {
      error = "unknown placeholder {" + std::string(name) + "} (only {id} and {rcpt_hash})";
      return {};
    }
    if (!literal.empty()) out.pieces.push_back({VerpPiece::Kind::Literal, std::move(literal)});
    literal.clear();
    out.pieces.push_back(piece);
    i = close + 1;
  }
  if (!literal.empty()) out.pieces.push_back({VerpPiece::Kind::Literal, std::move(literal)});
  if (ids != 1 || hashes != 1) {
    error = "must contain {id} and {rcpt_hash} exactly once each";
    return {};
  }
  const auto at = text.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == text.size() ||
      text.find('{', at) != std::string_view::npos) {
    error = "must be an address local@domain with the placeholders in the local part";
    return {};
  }
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' || c == ',') {
      error = "must be a plain ASCII address (no spaces, quotes, brackets or commas)";
      return {};
    }
  }
  return out;
}

}  // namespace mailgate::feedback
