// spool/store_reads: the read side of the spool's message-level API (see
// store.hpp): envelopes, queue records and bodies by id, a whole-spool walk
// for `spool dump`, the suppression family, the suspended destinations and
// the webhook rows.
#include <rocksdb/db.h>

#include <memory>

#include "spool/store.hpp"

namespace mailgate::spool {

namespace {
rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

template <class Record>
Store::ReadStatus get_record(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                             const rocksdb::Slice& key, Record& out) {
  std::string v;
  const auto s = db->Get(rocksdb::ReadOptions(), cf, key, &v);
  if (s.IsNotFound()) return Store::ReadStatus::Absent;
  if (!s.ok() || !decode(v, out)) return Store::ReadStatus::Failed;
  return Store::ReadStatus::Found;
}
}  // namespace

Store::ReadStatus Store::read_message(const MessageId& id, std::string_view destination,
                                      Envelope& envelope, DestRecord& dest,
                                      std::string& body) const {
  if (auto s = get_record(db_, meta(), slice(id.key()), envelope); s != ReadStatus::Found) return s;
  if (auto s = get_record(db_, this->dest(), dest_key(id, destination), dest);
      s != ReadStatus::Found)
    return s;
  body.reserve(envelope.size);
  // The envelope vouches for every chunk: one missing is damage, not absence.
  return read_body(id, envelope.body_chunks, body) ? ReadStatus::Found : ReadStatus::Failed;
}

Store::ReadStatus Store::read_message(const MessageId& id, std::string_view destination,
                                      Envelope& envelope, DestRecord& dest, std::string& body,
                                      std::uint64_t whole_up_to, bool& complete) const {
  if (auto s = get_record(db_, meta(), slice(id.key()), envelope); s != ReadStatus::Found) return s;
  if (auto s = get_record(db_, this->dest(), dest_key(id, destination), dest);
      s != ReadStatus::Found)
    return s;
  complete = envelope.size <= whole_up_to;
  if (complete) {
    body.reserve(envelope.size);
    return read_body(id, envelope.body_chunks, body) ? ReadStatus::Found : ReadStatus::Failed;
  }
  // The header section (hooks, DSNs and the sent index read it), as far as
  // the leading chunks hold it; the body proper is streamed by the sender.
  std::string chunk;
  for (std::uint32_t c = 0; c < envelope.body_chunks && body.size() < whole_up_to; ++c) {
    if (!read_body_chunk(id, c, chunk)) return ReadStatus::Failed;
    const std::size_t from = body.size() < 3 ? 0 : body.size() - 3;
    body += chunk;
    const auto end = body.find("\r\n\r\n", from);
    if (end != std::string::npos || body.starts_with("\r\n")) break;
  }
  return ReadStatus::Found;
}

bool Store::read_body_chunk(const MessageId& id, std::uint32_t chunk, std::string& out) const {
  out.clear();
  // A streamed chunk is read once per attempt: it must not push the
  // envelopes and queue records out of the block cache.
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  return db_->Get(ro, body(), body_key(id, chunk), &out).ok();
}

bool Store::read_envelope(const MessageId& id, Envelope& out) const {
  return get_record(db_, meta(), slice(id.key()), out) == ReadStatus::Found;
}

bool Store::read_dest(const MessageId& id, std::string_view destination, DestRecord& out) const {
  return get_record(db_, dest(), dest_key(id, destination), out) == ReadStatus::Found;
}

Store::DestList Store::read_dests(const MessageId& id) const {
  DestList out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), dest()));
  const auto prefix = slice(id.key());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    MessageId got;
    std::string name;
    DestRecord rec;
    if (split_dest_key(it->key().ToStringView(), got, name) &&
        decode(it->value().ToStringView(), rec))
      out.emplace_back(std::move(name), std::move(rec));
  }
  return out;
}

bool Store::read_body(const MessageId& id, std::uint32_t chunks, std::string& out) const {
  rocksdb::ReadOptions ro;
  std::string value;
  for (std::uint32_t c = 0; c < chunks; ++c) {
    if (!db_->Get(ro, body(), body_key(id, c), &value).ok()) return false;
    out += value;
  }
  return true;
}

void Store::for_each_message(const MessageVisitor& visit,
                             const std::function<void(std::string_view)>& bad) const {
  const auto* snap = db_->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.snapshot = snap;
  {
    std::unique_ptr<rocksdb::Iterator> m(db_->NewIterator(ro, meta()));
    std::unique_ptr<rocksdb::Iterator> d(db_->NewIterator(ro, dest()));
    d->SeekToFirst();
    for (m->SeekToFirst(); m->Valid(); m->Next()) {
      auto id = MessageId::from_key(m->key().ToStringView());
      Envelope env;
      if (!id || !decode(m->value().ToStringView(), env)) {
        bad("undecodable envelope record");
        continue;
      }
      // dest keys sort by id first, like meta keys: walk both in step.
      const auto key = m->key().ToStringView();
      while (d->Valid() && d->key().ToStringView().substr(0, key.size()) < key) d->Next();
      DestList dests;
      for (; d->Valid() && d->key().ToStringView().substr(0, key.size()) == key; d->Next()) {
        MessageId did;
        std::string name;
        DestRecord rec;
        if (!split_dest_key(d->key().ToStringView(), did, name) ||
            !decode(d->value().ToStringView(), rec)) {
          bad("undecodable queue record");
          continue;
        }
        dests.emplace_back(std::move(name), std::move(rec));
      }
      visit(*id, env, dests);
    }
  }
  db_->ReleaseSnapshot(snap);
}

std::vector<SuppressionRecord> Store::read_suppressions() const {
  std::vector<SuppressionRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), suppress()));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    out.push_back(decode_suppression(it->key().ToStringView(), it->value().ToStringView()));
  return out;
}

std::vector<std::string> Store::read_suspensions() const {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), default_cf()));
  const rocksdb::Slice prefix(kSuspensionPrefix.data(), kSuspensionPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    out.emplace_back(it->key().ToStringView().substr(prefix.size()));
  return out;
}

std::vector<tenancy::Suspension> Store::read_tenant_suspensions(std::size_t* skipped) const {
  std::vector<tenancy::Suspension> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), default_cf()));
  const rocksdb::Slice prefix(kTenantSuspensionPrefix.data(), kTenantSuspensionPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    tenancy::Suspension s;
    if (decode_tenant_suspension(it->key().ToStringView(), it->value().ToStringView(), s))
      out.push_back(std::move(s));
    else if (skipped)
      ++*skipped;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Store::read_prefix(std::string_view prefix) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), default_cf()));
  const rocksdb::Slice p(prefix.data(), prefix.size());
  for (it->Seek(p); it->Valid() && it->key().starts_with(p); it->Next())
    out.emplace_back(it->key().ToString(), it->value().ToString());
  return out;
}

namespace {
void scan_webhook(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::string_view prefix,
                  const Store::WebhookVisitor& visit) {
  if (!cf) return;
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  std::string target;
  for (it->Seek(slice(prefix)); it->Valid() && it->key().starts_with(slice(prefix)); it->Next()) {
    WebhookRow kind;
    std::uint64_t seq = 0;
    if (split_webhook_key(it->key().ToStringView(), kind, target, seq) &&
        !visit(kind, target, seq, it->value().ToStringView()))
      return;
  }
}
}  // namespace

void Store::for_each_webhook_row(const WebhookVisitor& visit) const {
  scan_webhook(db_, webhook(), "", visit);
}

void Store::for_each_webhook_row(WebhookRow kind, std::string_view target,
                                 const WebhookVisitor& visit) const {
  std::string prefix(1, static_cast<char>(kind));
  prefix += target;
  prefix += '\0';
  scan_webhook(db_, webhook(), prefix, visit);
}

}  // namespace mailgate::spool
