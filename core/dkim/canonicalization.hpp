// dkim/canonicalization: RFC 6376 §3.4 canonicalisation of header fields and
// of the body, "simple" and "relaxed", and the streaming SHA-256 body hash
// built on it (the bh= tag).
// Promises: the body canonicaliser and hasher take the body in pieces of any
// size (a CRLF split across two pieces is still a line end) and give the same
// result as for the whole body at once; memory held is one line. Pure apart
// from OpenSSL's digest; thread-compatible (one object, one thread at a time).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::dkim {

enum class Canonicalization : std::uint8_t { Simple, Relaxed };

struct CanonicalizationPair {
  Canonicalization header = Canonicalization::Relaxed;
  Canonicalization body = Canonicalization::Relaxed;
};

// "relaxed/relaxed", "simple/relaxed", ..., or one word for the header
// (the body then is "simple", RFC 6376 §3.5 c=). nullopt when malformed.
std::optional<CanonicalizationPair> parse_canonicalization(std::string_view text);
std::string_view canonicalization_name(Canonicalization c);

// Appends the canonical form of one header field (`field`: "Name: value"
// with its continuation lines and final CRLF, as mime::split_header_fields
// gives it) to `out`, final CRLF included.
void canonicalize_header(Canonicalization c, std::string_view field, std::string& out);

// The body's canonical form, streamed: update() appends what is final so far
// to output(); finish() the rest (held-back empty lines are dropped).
class BodyCanonicalizer {
 public:
  explicit BodyCanonicalizer(Canonicalization c) : canon_(c) {}
  void update(std::string_view piece);
  void finish();
  std::string& output() { return out_; }

 private:
  void end_line();  // line_ ends with CRLF

  Canonicalization canon_;
  std::string line_;                 // the current line, until its CRLF
  std::string out_;                  // canonical octets not taken yet
  std::string scratch_;              // a relaxed line (kept: no allocation per line)
  std::uint64_t pending_empty_ = 0;  // empty lines that may be trailing
  bool any_line_ = false;            // a non-empty line was output
};

using Sha256 = std::array<unsigned char, 32>;

// SHA-256 of the canonical body. Copyable (a copy continues independently),
// so a hash of the first part of a body can be finished with several tails.
class BodyHasher {
 public:
  explicit BodyHasher(Canonicalization c);
  BodyHasher(const BodyHasher& other);
  BodyHasher& operator=(const BodyHasher&) = delete;
  ~BodyHasher();
  void update(std::string_view piece);
  Sha256 finish();  // once

 private:
  void drain();
  BodyCanonicalizer canon_;
  struct Digest;
  std::unique_ptr<Digest> digest_;
};

// The hash of a whole body in one call.
Sha256 body_hash(Canonicalization c, std::string_view body);

}  // namespace mailgate::dkim
