// spool/store: opens the RocksDB spool with its column families (body, meta,
// dest, suppress) and owns the handles. Tuned for a queue: WAL on, blob files
// for large bodies, compact-on-deletion collectors on the queue families.
// Promises: open() either returns a ready store or an error message; it
// never aborts the process. All methods are blocking: never call from a worker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* default_cf() const { return cf_[0]; }
  rocksdb::ColumnFamilyHandle* body() const { return cf_[1]; }
  rocksdb::ColumnFamilyHandle* meta() const { return cf_[2]; }
  rocksdb::ColumnFamilyHandle* dest() const { return cf_[3]; }
  rocksdb::ColumnFamilyHandle* suppress() const { return cf_[4]; }
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
  rocksdb::ColumnFamilyHandle* cf_[5] = {};  // default, body, meta, dest, suppress
};

}  // namespace mailgate::spool
