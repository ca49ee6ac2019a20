// dkim/canonicalization: see canonicalization.hpp.
#include "dkim/canonicalization.hpp"

#include <openssl/evp.h>

#include <stdexcept>

#include "text/ascii.hpp"

namespace mailgate::dkim {

namespace {

constexpr bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Relaxed rule for a run of text: every WSP run becomes one SP, WSP at the
// end is dropped (RFC 6376 §3.4.2 and §3.4.4). CR and LF are skipped (the
// header's unfolding; a body line has none left but a bare CR or LF, which
// a body line keeps, hence `keep_line_breaks`).
void append_relaxed(std::string_view in, std::string& out, bool keep_line_breaks) {
  bool space = false;
  for (char c : in) {
    if (!keep_line_breaks && (c == '\r' || c == '\n')) continue;
    if (is_wsp(c)) {
      space = true;
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
}

}  // namespace

std::optional<CanonicalizationPair> parse_canonicalization(std::string_view text) {
  auto one = [](std::string_view w) -> std::optional<Canonicalization> {
    if (w == "simple") return Canonicalization::Simple;
    if (w == "relaxed") return Canonicalization::Relaxed;
    return std::nullopt;
  };
  const auto slash = text.find('/');
  const auto h = one(text.substr(0, slash));
  if (!h) return std::nullopt;
  if (slash == std::string_view::npos) return CanonicalizationPair{*h, Canonicalization::Simple};
  const auto b = one(text.substr(slash + 1));
  if (!b) return std::nullopt;
  return CanonicalizationPair{*h, *b};
}

std::string_view canonicalization_name(Canonicalization c) {
  return c == Canonicalization::Simple ? "simple" : "relaxed";
}

void canonicalize_header(Canonicalization c, std::string_view field, std::string& out) {
  if (c == Canonicalization::Simple) {
    out.append(field);
    if (!field.ends_with("\r\n")) out.append("\r\n");
    return;
  }
  const auto colon = field.find(':');
  std::string_view name = field.substr(0, colon);
  while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);
  for (char ch : name) out.push_back(text::to_lower(ch));
  out.push_back(':');
  if (colon == std::string_view::npos) {
    out.append("\r\n");
    return;
  }
  std::string_view value = field.substr(colon + 1);
  // Unfolding first, then leading WSP (also after a fold) goes.
  std::size_t start = 0;
  while (start < value.size() &&
         (is_wsp(value[start]) || value[start] == '\r' || value[start] == '\n'))
    ++start;
  append_relaxed(value.substr(start), out, false);
  out.append("\r\n");
}

void BodyCanonicalizer::update(std::string_view piece) {
  while (!piece.empty()) {
    const auto lf = piece.find('\n');
    if (lf == std::string_view::npos) {
      line_.append(piece);
      return;
    }
    line_.append(piece.substr(0, lf + 1));
    piece.remove_prefix(lf + 1);
    // A bare LF is part of the line; only CRLF ends one.
    if (line_.size() >= 2 && line_[line_.size() - 2] == '\r') end_line();
  }
}

void BodyCanonicalizer::end_line() {
  const std::string_view content(line_.data(), line_.size() - 2);
  std::string_view canonical = content;
  if (canon_ == Canonicalization::Relaxed) {
    scratch_.clear();
    append_relaxed(content, scratch_, true);
    canonical = scratch_;
  }
  if (canonical.empty()) {
    ++pending_empty_;
  } else {
    for (; pending_empty_ > 0; --pending_empty_) out_.append("\r\n");
    out_.append(canonical);
    out_.append("\r\n");
    any_line_ = true;
  }
  line_.clear();
}

void BodyCanonicalizer::finish() {
  if (!line_.empty()) {  // a last line without CRLF gets one (§3.4.3, §3.4.4)
    line_.append("\r\n");
    end_line();
  }
  pending_empty_ = 0;
  // simple: an empty body is one CRLF; relaxed: nothing (RFC 6376 errata 3133).
  if (canon_ == Canonicalization::Simple && !any_line_) out_.append("\r\n");
}

struct BodyHasher::Digest {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Digest() { EVP_MD_CTX_free(ctx); }
};

BodyHasher::BodyHasher(Canonicalization c) : canon_(c), digest_(std::make_unique<Digest>()) {
  if (digest_->ctx == nullptr || EVP_DigestInit_ex(digest_->ctx, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("dkim: cannot start a SHA-256 digest");
}

BodyHasher::BodyHasher(const BodyHasher& other)
    : canon_(other.canon_), digest_(std::make_unique<Digest>()) {
  if (digest_->ctx == nullptr || EVP_MD_CTX_copy_ex(digest_->ctx, other.digest_->ctx) != 1)
    throw std::runtime_error("dkim: cannot copy a SHA-256 digest");
}

BodyHasher::~BodyHasher() = default;

void BodyHasher::drain() {
  auto& out = canon_.output();
  if (!out.empty()) EVP_DigestUpdate(digest_->ctx, out.data(), out.size());
  out.clear();
}

void BodyHasher::update(std::string_view piece) {
  canon_.update(piece);
  drain();
}

Sha256 BodyHasher::finish() {
  canon_.finish();
  drain();
  Sha256 md{};
  unsigned int n = 0;
  EVP_DigestFinal_ex(digest_->ctx, md.data(), &n);
  return md;
}

Sha256 body_hash(Canonicalization c, std::string_view body) {
  BodyHasher h(c);
  h.update(body);
  return h.finish();
}

}  // namespace mailgate::dkim
