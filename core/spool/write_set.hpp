// spool/write_set: message-level changes to the spool, gathered so that they
// are written together as one atomic (and, when asked, synced) RocksDB write
// by the SpoolWriter. Callers speak of messages, destinations and records;
// the key layout (records.hpp) and RocksDB stay inside the spool module.
// Promises: nothing is written until the set is submitted; a set is applied
// all or nothing; moving a set leaves the source empty.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "spool/message_id.hpp"
#include "spool/records.hpp"

namespace rocksdb {
class WriteBatch;
}

namespace mailgate::spool {

class Store;

class WriteSet {
 public:
  explicit WriteSet(const Store& store);
  ~WriteSet();
  WriteSet(WriteSet&&) noexcept;
  WriteSet& operator=(WriteSet&&) noexcept;

  // Body chunk `chunk` of message `id` (a message's body is the
  // concatenation of chunks 0 .. Envelope::body_chunks-1).
  void put_body_chunk(const MessageId& id, std::uint32_t chunk, std::string_view data);
  // Deletes body chunks [from, to) (point deletes: range tombstones make
  // every later read of the family slower in RocksDB 7.8).
  void drop_body_chunks(const MessageId& id, std::uint32_t from, std::uint32_t to);
  void put_envelope(const MessageId& id, const Envelope& env);
  // The queue record of one (message, destination).
  void put_dest(const MessageId& id, std::string_view destination, const DestRecord& rec);
  void remove_dest(const MessageId& id, std::string_view destination);
  // Body and envelope of a message whose last destination is done.
  void remove_message(const MessageId& id, std::uint32_t body_chunks);

  // A webhook event row (records.hpp, WebhookRow); `value` is webhooks/'.
  void put_webhook(WebhookRow kind, std::string_view target, std::uint64_t seq,
                   std::string_view value);
  void remove_webhook(WebhookRow kind, std::string_view target, std::uint64_t seq);

  void put_suppression(const SuppressionRecord& rec);
  void remove_suppression(std::string_view address);

  // A destination suspended by the administrator (kept across restarts).
  void put_suspension(std::string_view destination, std::int64_t since_ms);
  void remove_suspension(std::string_view destination);
  // A tenant or campaign suspension (kept across restarts); put replaces
  // the same rule's times.
  void put_tenant_suspension(const tenancy::Suspension& s);
  void remove_tenant_suspension(const tenancy::Suspension& s);
  // Egress warm-up counters (egress/path_registry: keys "warmup/...").
  void put_warmup(std::string_view key, std::string_view value);
  void remove_warmup(std::string_view key);
  // Traffic shaping actions (egress/shaping_actions: keys "shaping/<id>").
  // A cluster table's change queued while Redis is down (cluster/
  // replicated_table, app/cluster_tables: keys "cluster_pending/...").
  void put_cluster_pending(std::string_view key, std::string_view value);
  void remove_cluster_pending(std::string_view key);
  void put_shaping_action(std::string_view key, std::string_view value);
  void remove_shaping_action(std::string_view key);

  bool empty() const;
  std::uint64_t bytes() const;

  // Spool internals (the writer) and spool tests only.
  rocksdb::WriteBatch& batch() { return *batch_; }
  const Store& store() const { return *store_; }
  // Wraps a raw batch (spool tests).
  WriteSet(const Store& store, rocksdb::WriteBatch&& raw);

 private:
  const Store* store_;
  std::unique_ptr<rocksdb::WriteBatch> batch_;
};

}  // namespace mailgate::spool
