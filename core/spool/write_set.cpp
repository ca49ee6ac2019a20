// spool/write_set: see write_set.hpp.
#include "spool/write_set.hpp"

#include <rocksdb/write_batch.h>

#include "spool/store.hpp"

namespace mailgate::spool {

namespace {
rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
}  // namespace

WriteSet::WriteSet(const Store& store)
    : store_(&store), batch_(std::make_unique<rocksdb::WriteBatch>()) {}
WriteSet::WriteSet(const Store& store, rocksdb::WriteBatch&& raw)
    : store_(&store), batch_(std::make_unique<rocksdb::WriteBatch>(std::move(raw))) {}
WriteSet::~WriteSet() = default;
WriteSet::WriteSet(WriteSet&& o) noexcept
    : store_(o.store_), batch_(std::exchange(o.batch_, std::make_unique<rocksdb::WriteBatch>())) {}
WriteSet& WriteSet::operator=(WriteSet&& o) noexcept {
  store_ = o.store_;
  batch_ = std::exchange(o.batch_, std::make_unique<rocksdb::WriteBatch>());
  return *this;
}

void WriteSet::put_body_chunk(const MessageId& id, std::uint32_t chunk, std::string_view data) {
  batch_->Put(store_->body(), body_key(id, chunk), slice(data));
}

void WriteSet::drop_body_chunks(const MessageId& id, std::uint32_t from, std::uint32_t to) {
  for (auto c = from; c < to; ++c) batch_->Delete(store_->body(), body_key(id, c));
}

void WriteSet::put_envelope(const MessageId& id, const Envelope& env) {
  batch_->Put(store_->meta(), id.key(), encode(env));
}

void WriteSet::put_dest(const MessageId& id, std::string_view destination, const DestRecord& rec) {
  batch_->Put(store_->dest(), dest_key(id, destination), encode(rec));
}

void WriteSet::remove_dest(const MessageId& id, std::string_view destination) {
  batch_->Delete(store_->dest(), dest_key(id, destination));
}

void WriteSet::remove_message(const MessageId& id, std::uint32_t body_chunks) {
  drop_body_chunks(id, 0, body_chunks);
  batch_->Delete(store_->meta(), id.key());
}

void WriteSet::put_webhook(WebhookRow kind, std::string_view target, std::uint64_t seq,
                           std::string_view value) {
  batch_->Put(store_->webhook(), webhook_key(kind, target, seq), slice(value));
}

void WriteSet::remove_webhook(WebhookRow kind, std::string_view target, std::uint64_t seq) {
  batch_->Delete(store_->webhook(), webhook_key(kind, target, seq));
}

void WriteSet::put_suppression(const SuppressionRecord& rec) {
  batch_->Put(store_->suppress(), rec.address, encode(rec));
}

void WriteSet::remove_suppression(std::string_view address) {
  batch_->Delete(store_->suppress(), slice(address));
}

void WriteSet::put_suspension(std::string_view destination, std::int64_t since_ms) {
  batch_->Put(store_->default_cf(), suspension_key(destination), std::to_string(since_ms));
}

void WriteSet::remove_suspension(std::string_view destination) {
  batch_->Delete(store_->default_cf(), suspension_key(destination));
}

void WriteSet::put_tenant_suspension(const tenancy::Suspension& s) {
  batch_->Put(store_->default_cf(), tenant_suspension_key(s), encode_tenant_suspension(s));
}

void WriteSet::remove_tenant_suspension(const tenancy::Suspension& s) {
  batch_->Delete(store_->default_cf(), tenant_suspension_key(s));
}
void WriteSet::put_warmup(std::string_view key, std::string_view value) {
  batch_->Put(store_->default_cf(), key, value);
}

void WriteSet::remove_warmup(std::string_view key) { batch_->Delete(store_->default_cf(), key); }

void WriteSet::put_cluster_pending(std::string_view key, std::string_view value) {
  batch_->Put(store_->default_cf(), key, value);
}

void WriteSet::remove_cluster_pending(std::string_view key) {
  batch_->Delete(store_->default_cf(), key);
}

void WriteSet::put_shaping_action(std::string_view key, std::string_view value) {
  batch_->Put(store_->default_cf(), key, value);
}

void WriteSet::remove_shaping_action(std::string_view key) {
  batch_->Delete(store_->default_cf(), key);
}

bool WriteSet::empty() const { return batch_->Count() == 0; }
std::uint64_t WriteSet::bytes() const { return batch_->GetDataSize(); }

}  // namespace mailgate::spool
