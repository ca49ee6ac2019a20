// spool/idempotency_rows: see idempotency_rows.hpp.
#include "spool/idempotency_rows.hpp"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <memory>

#include "spool/store.hpp"
#include "spool/write_set.hpp"

namespace mailgate::spool {
namespace {

std::string row_key(std::string_view key) {
  std::string k(kIdempotencyPrefix);
  k.append(key);
  return k;
}

}  // namespace

void put_idempotency_row(WriteSet& set, std::string_view key, std::string_view value) {
  set.batch().Put(set.store().default_cf(), row_key(key),
                  rocksdb::Slice(value.data(), value.size()));
}

void remove_idempotency_row(WriteSet& set, std::string_view key) {
  set.batch().Delete(set.store().default_cf(), row_key(key));
}

std::optional<std::string> read_idempotency_row(const Store& store, std::string_view key) {
  std::string value;
  const auto s = store.db()->Get(rocksdb::ReadOptions(), store.default_cf(), row_key(key), &value);
  if (!s.ok()) return std::nullopt;
  return value;
}

void for_each_idempotency_row(
    const Store& store,
    const std::function<void(std::string_view key, std::string_view value)>& visit) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.default_cf()));
  const rocksdb::Slice prefix(kIdempotencyPrefix.data(), kIdempotencyPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    visit(it->key().ToStringView().substr(prefix.size()), it->value().ToStringView());
}

}  // namespace mailgate::spool
