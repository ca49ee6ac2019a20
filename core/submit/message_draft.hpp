// submit/message_draft: a message while it is being received (SMTP DATA or
// BDAT, or an HTTP inject's content): the end-of-data scanner with its
// checks, the size limit, and the body as it will be stored. Up to
// `spill_at` bytes stay in memory; beyond that the body is written to the
// spool in unsynced chunks as it arrives (the final synced commit makes them
// durable together with the envelope). Chunk 0 is always reserved for the
// header section (the trace header and the client's headers), written at
// commit, so the submission stage can prepend trace headers and hooks can
// edit headers however large the body is.
// A spilled body is DKIM-hashed as its chunks are written (both
// canonicalisations, SHA-256), because it cannot be read back cheaply at
// signing time; a body in memory is hashed only when a signature asks.
// Promises: memory held is bounded by spill_at + one input block; a draft
// that is not committed leaves no body chunks behind once discard() ran; a
// spool error is remembered (the message is then refused with 451 4.3.0).
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dkim/canonicalization.hpp"
#include "smtp/data_scanner.hpp"
#include "smtp/reply.hpp"
#include "spool/message_id.hpp"

namespace mailgate::spool {
class SpoolWriter;
class Store;
class WriteSet;
}  // namespace mailgate::spool

namespace mailgate::submit {

class MessageDraft {
 public:
  MessageDraft(spool::SpoolWriter& writer, const spool::Store& store, std::size_t spill_at);

  // Starts a body for message `id` (DATA: Dot mode; BDAT/inject: Chunk mode).
  void begin(const spool::MessageId& id, smtp::DataScanner::Mode mode,
             std::uint64_t max_message_size);
  // Scans input into the body (limits, spill). Returns the scanner's step:
  // the caller advances its input by step.consumed.
  asio::awaitable<smtp::DataScanner::Step> absorb(std::string_view input);
  // Chunk mode: after the last chunk.
  void finish_chunks() { scanner_.finish(); }
  // The reason to refuse the message as received, if any (bare CR/LF, size,
  // line length, hop count, spool error).
  std::optional<smtp::Reply> refusal() const;
  bool too_big() const { return too_big_; }
  bool receiving() const { return receiving_; }

  // Deletes the chunks written so far (refused, abandoned or aborted
  // message). A failed delete leaves orphans that recovery removes.
  asio::awaitable<void> discard();
  // Forgets the message (after commit or discard); frees a large buffer.
  void clear();

  // --- For the submission stage, once the body is complete ---
  // Adds a final CRLF when the content did not end with one (BDAT may omit it).
  void terminate_lines();
  // Puts trace header lines ("Received: ...\r\n") above everything.
  void prepend_trace(std::string_view lines);
  // The header section (up to, not including, the empty line), when hooks
  // may see it: nullopt when it was bigger than spill_at and so is written.
  std::optional<std::string_view> header_section() const;
  // Replaces the header section returned by header_section() (hook edits).
  void replace_header_section(std::string text);
  std::uint64_t size() const;
  // The whole message (trace header included) while it is in memory;
  // nullopt once it spilled to the spool (bigger than spill_at).
  std::optional<std::string_view> content() const {
    if (spilled_) return std::nullopt;
    return std::string_view(tail_);
  }
  // The DKIM body hash (the body after the empty line) as it will be stored;
  // nullopt when a spilled body's header section was never known. const:
  // safe on another thread while the owner waits.
  std::optional<dkim::Sha256> body_hash(dkim::Canonicalization c) const;
  std::uint32_t chunk_count() const;  // what Envelope::body_chunks will be
  // Adds the chunks not written yet (chunk 0 and the last one) to `set`.
  void add_unwritten_chunks(spool::WriteSet& set) const;
  // After a failed commit: the final chunk may be partly there too.
  void commit_failed() { commit_failed_ = true; }
  const spool::MessageId& id() const { return id_; }

 private:
  asio::awaitable<bool> spill();
  std::size_t store_limit() const;

  spool::SpoolWriter& writer_;
  const spool::Store& store_;
  std::size_t spill_at_;
  std::uint64_t max_size_ = 0;
  spool::MessageId id_;
  smtp::DataScanner scanner_;
  bool receiving_ = false;
  bool too_big_ = false;
  bool spool_error_ = false;
  bool commit_failed_ = false;
  // Spilled: chunk 0 = `headers_` (+ trace), chunks 1..spilled_ = written,
  // the last = `tail_`. Not spilled: one chunk, `tail_` (headers at its start).
  bool spilled_ = false;
  bool headers_known_ = false;  // spilled: `headers_` holds the whole header section
  std::uint32_t spilled_chunks_ = 0;
  std::uint64_t spilled_bytes_ = 0;
  std::string headers_;
  std::string tail_;
  // Spilled with a known header section: the body hashes of chunks 1..spilled_.
  std::optional<dkim::BodyHasher> spilled_simple_, spilled_relaxed_;
};

}  // namespace mailgate::submit
