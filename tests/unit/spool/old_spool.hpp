// Test helper: a spool as versions before the webhook and quarantine
// families made it (default, body, meta, dest, suppress), for the tests that
// check a newer build opens it. Returns RocksDB's open status.
#pragma once

#include <rocksdb/db.h>

#include <string>
#include <vector>

namespace mailgate::spool::testing {

inline rocksdb::Status make_spool_without_new_families(const std::string& path) {
  rocksdb::DBOptions o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> fams;
  for (const char* n : {"default", "body", "meta", "dest", "suppress"})
    fams.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(o, path, fams, &handles, &db);
  if (!s.ok()) return s;
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
  return s;
}

}  // namespace mailgate::spool::testing
