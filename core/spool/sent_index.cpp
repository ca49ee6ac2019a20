// spool/sent_index: see sent_index.hpp.
#include "spool/sent_index.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>

#include "spool/records.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"

namespace mailgate::spool {

namespace {

constexpr std::string_view kMessageIdMeta = ":message-id";

std::string id_key(const MessageId& id) { return "i" + std::string(id.key()); }
std::string mid_key(std::string_view message_id) { return "m" + std::string(message_id); }

std::string encode_sent(const SentRecord& r) {
  Envelope e;
  e.sender = r.sender;
  for (const auto& a : r.recipients) e.recipients.push_back({a, 0, {}});
  e.received_ms = r.received_ms;
  if (!r.tenant.empty()) e.meta.emplace_back("tenant", r.tenant);
  if (!r.campaign.empty()) e.meta.emplace_back("campaign", r.campaign);
  if (!r.message_id.empty()) e.meta.emplace_back(kMessageIdMeta, r.message_id);
  return encode(e);
}

std::optional<SentRecord> decode_sent(const MessageId& id, std::string_view value) {
  Envelope e;
  if (!decode(value, e)) return std::nullopt;
  SentRecord r;
  r.id = id;
  r.sender = e.sender;
  for (auto& rc : e.recipients) r.recipients.push_back(std::move(rc.address));
  r.received_ms = e.received_ms;
  for (auto& [k, v] : e.meta) {
    if (k == "tenant") r.tenant = v;
    if (k == "campaign") r.campaign = v;
    if (k == kMessageIdMeta) r.message_id = v;
  }
  return r;
}

}  // namespace

void put_sent(WriteSet& set, const SentRecord& rec) {
  auto* cf = set.store().sent();
  if (!cf) return;
  set.batch().Put(cf, id_key(rec.id), encode_sent(rec));
  if (!rec.message_id.empty()) set.batch().Put(cf, mid_key(rec.message_id), rec.id.key());
}

std::optional<SentRecord> read_sent(const Store& store, const MessageId& id) {
  if (!store.sent()) return std::nullopt;
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions(), store.sent(), id_key(id), &value);
  if (!s.ok()) return std::nullopt;
  return decode_sent(id, value);
}

std::optional<MessageId> find_sent_by_message_id(const Store& store, std::string_view message_id) {
  if (!store.sent() || message_id.empty()) return std::nullopt;
  std::string value;
  auto s = store.db()->Get(rocksdb::ReadOptions(), store.sent(), mid_key(message_id), &value);
  if (!s.ok()) return std::nullopt;
  return MessageId::from_key(value);
}

std::size_t sweep_sent(const Store& store, std::int64_t before_ms, std::size_t max, WriteSet& set) {
  if (!store.sent()) return 0;
  std::unique_ptr<rocksdb::Iterator> it(
      store.db()->NewIterator(rocksdb::ReadOptions(), store.sent()));
  std::size_t n = 0;
  for (it->Seek("i"); it->Valid() && n < max; it->Next()) {
    const auto key = it->key().ToStringView();
    if (key.empty() || key[0] != 'i') break;
    auto id = MessageId::from_key(key.substr(1));
    if (!id) {  // not ours: drop it
      set.batch().Delete(store.sent(), it->key());
      ++n;
      continue;
    }
    if (static_cast<std::int64_t>(id->millis()) >= before_ms) break;
    if (auto rec = decode_sent(*id, it->value().ToStringView()); rec && !rec->message_id.empty()) {
      // The Message-ID entry only if it still names this message (a later
      // message may have reused the Message-ID).
      std::string value;
      if (store.db()
              ->Get(rocksdb::ReadOptions(), store.sent(), mid_key(rec->message_id), &value)
              .ok() &&
          value == id->key())
        set.batch().Delete(store.sent(), mid_key(rec->message_id));
    }
    set.batch().Delete(store.sent(), it->key());
    ++n;
  }
  return n;
}

}  // namespace mailgate::spool
