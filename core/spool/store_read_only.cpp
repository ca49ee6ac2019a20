// spool/store_read_only: opens an existing spool read-only (for `mailgate
// spool dump` and other offline inspection). It takes no lock, so it works
// beside a running gateway, and it never creates or modifies anything.
#include <rocksdb/db.h>

#include <vector>

#include "spool/store.hpp"

namespace mailgate::spool {

std::unique_ptr<Store> Store::open_read_only(const std::string& path, std::string& error) {
  static const char* const kFamilies[] = {"default", "body", "meta", "dest", "suppress"};
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : kFamilies) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions options;
  auto s = rocksdb::DB::OpenForReadOnly(options, path, families, &handles, &raw);
  if (!s.ok()) {
    error = "spool: cannot open " + path + " read-only: " + s.ToString();
    return nullptr;
  }
  std::unique_ptr<Store> store(new Store);
  store->path_ = path;
  store->db_ = raw;
  for (int i = 0; i < 5; ++i) store->cf_[i] = handles[i];
  return store;
}

}  // namespace mailgate::spool
