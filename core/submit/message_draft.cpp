// submit/message_draft: see message_draft.hpp.
#include "submit/message_draft.hpp"

#include <fmt/format.h>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include "mime/header_section.hpp"
#include "spool/spool_writer.hpp"
#include "spool/write_set.hpp"

namespace mailgate::submit {

namespace {
// RFC 5321 §6.3 / DESIGN §7: more than 50 Received lines (ours included) is a loop.
constexpr unsigned kMaxClientReceived = 49;
// A buffer bigger than this is given back when the draft is cleared: an idle
// session should cost almost nothing.
constexpr std::size_t kKeepCapacity = 64 * 1024;

// A body without an empty line is all headers (mime::header_section_length).
std::size_t header_end_or_all(std::string_view body) { return mime::header_section_length(body); }
}  // namespace

MessageDraft::MessageDraft(spool::SpoolWriter& writer, const spool::Store& store,
                           std::size_t spill_at)
    : writer_(writer), store_(store), spill_at_(spill_at) {}

void MessageDraft::begin(const spool::MessageId& id, smtp::DataScanner::Mode mode,
                         std::uint64_t max_message_size) {
  clear();
  id_ = id;
  max_size_ = max_message_size;
  scanner_.reset(mode);
  receiving_ = true;
}

void MessageDraft::clear() {
  receiving_ = false;
  too_big_ = false;
  spool_error_ = false;
  commit_failed_ = false;
  spilled_ = false;
  headers_known_ = false;
  spilled_chunks_ = 0;
  spilled_bytes_ = 0;
  headers_.clear();
  spilled_simple_.reset();
  spilled_relaxed_.reset();
  if (tail_.capacity() > kKeepCapacity) {
    std::string().swap(tail_);
  } else {
    tail_.clear();
  }
}

std::size_t MessageDraft::store_limit() const {
  // Once a message is certain to be refused, stop storing it (keep scanning).
  if (too_big_ || scanner_.bare_cr() || scanner_.bare_lf() || scanner_.line_too_long() ||
      spool_error_)
    return 0;
  return SIZE_MAX;
}

asio::awaitable<smtp::DataScanner::Step> MessageDraft::absorb(std::string_view input) {
  auto step = scanner_.feed(input, tail_, store_limit());
  if (!too_big_ && scanner_.total_bytes() > max_size_) {
    too_big_ = true;
    tail_.clear();
  }
  if (tail_.size() >= spill_at_ && store_limit() != 0) co_await spill();
  co_return step;
}

// Writes the in-memory part as one unsynced chunk; on the first spill the
// header section is kept back in memory as chunk 0.
asio::awaitable<bool> MessageDraft::spill() {
  if (!spilled_) {
    spilled_ = true;
    // Only what is buffered so far: without an empty line in it the header
    // section is not known to end (it may go on in the next block).
    const auto end = mime::header_section_length(tail_);
    if (end < tail_.size()) {
      headers_.assign(tail_, 0, end);
      tail_.erase(0, end);
      headers_known_ = true;
      spilled_simple_.emplace(dkim::Canonicalization::Simple);
      spilled_relaxed_.emplace(dkim::Canonicalization::Relaxed);
    }
  }
  if (spilled_simple_) {
    // The first body chunk starts with the empty line, which is no part of the body.
    std::string_view body = tail_;
    if (spilled_chunks_ == 0 && body.starts_with("\r\n")) body.remove_prefix(2);
    spilled_simple_->update(body);
    spilled_relaxed_->update(body);
  }
  spool::WriteSet set(store_);
  set.put_body_chunk(id_, spilled_chunks_ + 1, tail_);
  std::error_code ec;
  co_await writer_.async_write(std::move(set), false,
                               asio::redirect_error(asio::use_awaitable, ec));
  spilled_chunks_++;
  spilled_bytes_ += tail_.size();
  tail_.clear();
  if (ec) spool_error_ = true;
  co_return !ec;
}

asio::awaitable<void> MessageDraft::discard() {
  // Chunks 1..spilled_chunks_ are written; after a failed commit chunk 0
  // and the final chunk may be there too.
  const std::uint32_t written = spilled_chunks_ + (commit_failed_ ? 2 : 0);
  if (written > 0) {
    spool::WriteSet set(store_);
    set.drop_body_chunks(id_, commit_failed_ ? 0 : 1, spilled_chunks_ + (commit_failed_ ? 2 : 1));
    std::error_code ec;  // a failure leaves orphans that recovery removes
    co_await writer_.async_write(std::move(set), false,
                                 asio::redirect_error(asio::use_awaitable, ec));
  }
  clear();
}

std::optional<smtp::Reply> MessageDraft::refusal() const {
  if (scanner_.bare_cr() || scanner_.bare_lf())
    return smtp::Reply{
        550, "5.5.2",
        "message contains a bare CR or LF; lines must end with CRLF (RFC 5321 2.3.8)"};
  if (too_big_)
    return smtp::Reply{552, "5.3.4",
                       fmt::format("message size exceeds fixed limit of {} bytes", max_size_)};
  if (scanner_.line_too_long())
    return smtp::Reply{550, "5.6.0", "message has a line longer than 998 octets (RFC 5322 2.1.1)"};
  if (scanner_.received_headers() > kMaxClientReceived)
    return smtp::Reply{554, "5.4.0", "too many hops (Received headers), possible mail loop"};
  if (spool_error_)
    return smtp::Reply{451, "4.3.0", "local error: could not write to the spool, try again later"};
  return std::nullopt;
}

void MessageDraft::terminate_lines() {
  if (scanner_.total_bytes() > 0 && !scanner_.ends_with_crlf()) tail_ += "\r\n";
}

void MessageDraft::prepend_trace(std::string_view lines) {
  (spilled_ ? headers_ : tail_).insert(0, lines);
}

std::optional<std::string_view> MessageDraft::header_section() const {
  if (spilled_) {
    if (!headers_known_) return std::nullopt;
    return std::string_view(headers_);
  }
  return std::string_view(tail_).substr(0, header_end_or_all(tail_));
}

void MessageDraft::replace_header_section(std::string text) {
  if (spilled_) {
    headers_ = std::move(text);
  } else {
    tail_.replace(0, header_end_or_all(tail_), text);
  }
}

std::uint64_t MessageDraft::size() const { return headers_.size() + spilled_bytes_ + tail_.size(); }

std::optional<dkim::Sha256> MessageDraft::body_hash(dkim::Canonicalization c) const {
  if (spilled_) {
    const auto& spilled = c == dkim::Canonicalization::Simple ? spilled_simple_ : spilled_relaxed_;
    if (!spilled) return std::nullopt;
    dkim::BodyHasher h(*spilled);  // a copy: the draft stays as it is
    h.update(tail_);               // the final chunk, after the written ones
    return h.finish();
  }
  const std::string_view all = tail_;
  const auto end = header_end_or_all(all);
  const std::string_view body = end + 2 <= all.size() ? all.substr(end + 2) : std::string_view();
  return dkim::body_hash(c, body);
}

std::uint32_t MessageDraft::chunk_count() const { return spilled_ ? spilled_chunks_ + 2 : 1; }

void MessageDraft::add_unwritten_chunks(spool::WriteSet& set) const {
  if (spilled_) {
    set.put_body_chunk(id_, 0, headers_);
    set.put_body_chunk(id_, spilled_chunks_ + 1, tail_);
  } else {
    set.put_body_chunk(id_, 0, tail_);
  }
}

}  // namespace mailgate::submit
