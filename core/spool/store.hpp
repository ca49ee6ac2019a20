// spool/store: opens the RocksDB spool with its column families (body, meta,
// dest, suppress, webhook, quarantine, sent) and owns the handles; the read side of the spool's
// message-level API (writes go through WriteSet + SpoolWriter). Tuned for a
// queue: WAL on, blob files for large bodies, compact-on-deletion collectors
// on the queue families.
// Promises: open() either returns a ready store or an error message; it
// never aborts the process. All methods are blocking: never call from a
// worker. Reads see a consistent view per call, not across calls (a message
// may be delivered between two reads: callers treat "missing" as "gone").
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace mailgate::spool {

class Store {
 public:
  static std::unique_ptr<Store> open(const std::string& path, std::string& error);
  // Read-only view (no lock, works beside a running gateway); writes fail.
  static std::unique_ptr<Store> open_read_only(const std::string& path, std::string& error);
  ~Store();

  // --- Message-level reads ---
  // What a delivery attempt needs: the envelope, the destination's record and
  // the body. Absent: the message or that destination is gone (settled,
  // bounced); Failed: it is there but cannot be read now (an I/O error, an
  // undecodable record, a missing body chunk): the caller retries it later.
  enum class ReadStatus { Found, Absent, Failed };
  ReadStatus read_message(const MessageId& id, std::string_view destination, Envelope& envelope,
                          DestRecord& dest, std::string& body) const;
  // The same, but a body over `whole_up_to` bytes is not read whole: `body`
  // gets its leading chunks up to the end of the header section (at most
  // `whole_up_to` bytes of them) and `complete` is false; the sender then
  // streams the chunks (read_body_chunk).
  ReadStatus read_message(const MessageId& id, std::string_view destination, Envelope& envelope,
                          DestRecord& dest, std::string& body, std::uint64_t whole_up_to,
                          bool& complete) const;
  // One body chunk (replacing `out`). False if it is missing or unreadable.
  bool read_body_chunk(const MessageId& id, std::uint32_t chunk, std::string& out) const;
  bool read_envelope(const MessageId& id, Envelope& out) const;
  bool read_dest(const MessageId& id, std::string_view destination, DestRecord& out) const;
  using DestList = std::vector<std::pair<std::string, DestRecord>>;
  // Every queue record of a message (destination, record), in key order.
  DestList read_dests(const MessageId& id) const;
  // The body: chunks 0 .. chunks-1 concatenated. False if one is missing.
  bool read_body(const MessageId& id, std::uint32_t chunks, std::string& out) const;
  // Every message in id order with its queue records, from one snapshot
  // (spool dump). Undecodable records are reported to `bad` and skipped.
  using MessageVisitor = std::function<void(const MessageId&, const Envelope&, const DestList&)>;
  void for_each_message(const MessageVisitor& visit,
                        const std::function<void(std::string_view what)>& bad) const;
  std::vector<SuppressionRecord> read_suppressions() const;
  // The destinations suspended by the administrator (WriteSet::put_suspension).
  std::vector<std::string> read_suspensions() const;
  // The tenant and campaign suspensions (WriteSet::put_tenant_suspension);
  // malformed rows are skipped (and counted in `skipped` when given).
  std::vector<tenancy::Suspension> read_tenant_suspensions(std::size_t* skipped = nullptr) const;
  // Rows of the default family whose key starts with `prefix` (egress
  // warm-up counters: "warmup/").
  std::vector<std::pair<std::string, std::string>> read_prefix(std::string_view prefix) const;
  // Webhook rows in key order (kind, then target, then sequence): all of
  // them, or those of one kind and target; `visit` returns false to stop.
  // Undecodable keys are skipped. A read-only store of a spool made before
  // the family existed has none.
  using WebhookVisitor = std::function<bool(WebhookRow kind, const std::string& target,
                                            std::uint64_t seq, std::string_view value)>;
  void for_each_webhook_row(const WebhookVisitor& visit) const;
  void for_each_webhook_row(WebhookRow kind, std::string_view target,
                            const WebhookVisitor& visit) const;

  // --- Spool internals (writer, reader, recovery, WriteSet) ---
  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* default_cf() const { return cf_[0]; }
  rocksdb::ColumnFamilyHandle* body() const { return cf_[1]; }
  rocksdb::ColumnFamilyHandle* meta() const { return cf_[2]; }
  rocksdb::ColumnFamilyHandle* dest() const { return cf_[3]; }
  rocksdb::ColumnFamilyHandle* suppress() const { return cf_[4]; }
  rocksdb::ColumnFamilyHandle* webhook() const { return cf_[5]; }
  // Corrupt records recovery set aside (key "dest/" + the dest key, value as
  // found); null in a read-only view of a spool that has none yet.
  rocksdb::ColumnFamilyHandle* quarantine() const { return cf_[6]; }
  // The sent-message index (spool/sent_index.hpp); null in a read-only view
  // of a spool made before it existed.
  rocksdb::ColumnFamilyHandle* sent() const { return cf_[7]; }
  // Messages with a record in `quarantine` (set by recovery; /readyz, /metrics).
  std::uint64_t quarantined_messages() const { return quarantined_.load(); }
  void set_quarantined_messages(std::uint64_t n) { quarantined_.store(n); }
  const std::string& path() const { return path_; }
  // The handle of this store's column family with RocksDB id `id`, or nullptr.
  rocksdb::ColumnFamilyHandle* family_by_id(std::uint32_t id) const;

  // Returns the counter value this run may start its ids at, and durably
  // (synced) records a floor above every counter this run could use (each
  // generator of this run may use 2^40 counters from the start value).
  // On failure returns 0 and sets `error`.
  std::uint64_t reserve_counter_floor(std::string& error);

 private:
  Store() = default;
  static std::unique_ptr<Store> adopt(const std::string& path, rocksdb::DB* db,
                                      const std::vector<rocksdb::ColumnFamilyHandle*>& handles);
  std::string path_;
  rocksdb::DB* db_ = nullptr;
  static constexpr int kFamilyCount = 8;
  rocksdb::ColumnFamilyHandle* cf_[kFamilyCount] =
      {};  // default, body, meta, dest, suppress, webhook, quarantine, sent
  std::atomic<std::uint64_t> quarantined_{0};
};

}  // namespace mailgate::spool
