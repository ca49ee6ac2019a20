// spool/store: opens the RocksDB spool (see store.hpp) with column families
// default, body, meta, dest, suppress, webhook, quarantine, sent (cf_[0..7]
// in that order; a spool made before a family existed gets it at open).
// Tuning: WAL on and flushed on every write (manual_wal_flush=false); the
// `body` family keeps values >= 4 KiB in blob files (integrated BlobDB, with
// blob GC) so compaction does not rewrite large bodies; the queue families
// (body, meta, dest) get compact-on-deletion collectors so scans do not crawl
// over tombstones; RocksDB's own background work is limited to 2 jobs.
// Promises: open() returns a ready store or nullptr with an error message
// (never throws or aborts): missing directories are created, a path that is a
// file or a spool locked by another Store (in this or another process) fails.
// The destructor releases the handles and closes the DB (releasing the lock).
#include "spool/store.hpp"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/table_properties_collectors.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace mailgate::spool {

namespace {

constexpr const char* kFamilies[8] = {"default",  "body",    "meta",       "dest",
                                      "suppress", "webhook", "quarantine", "sent"};
constexpr int kFamilyCount = 8;
constexpr const char* kCounterFloorKey = "counter_floor";
constexpr std::uint64_t kCounterReserve = std::uint64_t{1} << 40;

rocksdb::ColumnFamilyOptions family_options(int i, const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.level_compaction_dynamic_level_bytes = true;

  switch (i) {
    case 1:  // body: large values go to blob files, never rewritten by compaction
      cf.write_buffer_size = 32 << 20;
      cf.enable_blob_files = true;
      cf.min_blob_size = 4096;
      cf.blob_file_size = 128 << 20;
      cf.enable_blob_garbage_collection = true;
      cf.blob_garbage_collection_age_cutoff = 0.25;
      break;
    case 2:  // meta
    case 3:  // dest
      cf.write_buffer_size = 16 << 20;
      break;
    default:  // default (counter floor), suppress, webhook, quarantine
      cf.write_buffer_size = 4 << 20;
      break;
  }
  if (i == 5) cf.write_buffer_size = 8 << 20;    // webhook: small rows, written and deleted soon
  if ((i >= 1 && i <= 3) || i == 5 || i == 7) {  // sent: swept in key (= time) order
    // Queue families: time-ordered keys, every one deleted eventually. Compact
    // a file when 64 of any 128 consecutive entries are deletions.
    cf.table_properties_collector_factories.emplace_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(128, 64, 0.5));
  }
  cf.max_write_buffer_number = 2;
  return cf;
}

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& path, std::string& error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) {
    error = "spool: cannot create directory " + path + ": " + ec.message() + " (uid " +
            std::to_string(::geteuid()) + ")";
    return nullptr;
  }
  if (!fs::is_directory(path, ec)) {
    error = "spool: " + path + " is not a directory";
    return nullptr;
  }
  // Named here, before RocksDB words it as "IO error: While open a file for
  // appending: …/LOCK: Permission denied".
  if (::faccessat(AT_FDCWD, path.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    error = "spool: directory " + path + " is not writable by this process (uid " +
            std::to_string(::geteuid()) + "): " + std::strerror(errno) +
            "; give it to the user mailgate runs as";
    return nullptr;
  }

  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.max_background_jobs = 2;
  db.manual_wal_flush = false;
  db.max_total_wal_size = 256ull << 20;  // a rarely written family must not pin old WALs
  db.keep_log_file_num = 5;
  db.max_log_file_size = 16 << 20;
  db.bytes_per_sync = 1 << 20;
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

  auto cache = rocksdb::NewLRUCache(32 << 20);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (int i = 0; i < kFamilyCount; ++i)
    families.emplace_back(kFamilies[i], family_options(i, cache));

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  try {
    s = rocksdb::DB::Open(db, path, families, &handles, &raw);
  } catch (const std::exception& e) {
    error = std::string("spool: cannot open ") + path + ": " + e.what();
    return nullptr;
  }
  if (!s.ok()) {
    error = "spool: cannot open " + path + ": " + s.ToString();
    return nullptr;
  }
  return adopt(path, raw, handles);
}

std::unique_ptr<Store> Store::adopt(const std::string& path, rocksdb::DB* db,
                                    const std::vector<rocksdb::ColumnFamilyHandle*>& handles) {
  std::unique_ptr<Store> store(new Store);
  store->path_ = path;
  store->db_ = db;
  for (auto* h : handles) {
    for (int i = 0; i < kFamilyCount; ++i)
      if (h->GetName() == kFamilies[i]) store->cf_[i] = h;
  }
  return store;
}

std::unique_ptr<Store> Store::open_read_only(const std::string& path, std::string& error) {
  // No lock and no writes: works on a stopped spool and beside a running gateway.
  // Only the families the spool has (one made by an older version may lack
  // `webhook` or `quarantine`; their handles stay null).
  std::vector<std::string> present;
  rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &present);
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : kFamilies)
    if (present.empty() || std::find(present.begin(), present.end(), name) != present.end())
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), path, families, &handles, &raw);
  if (!s.ok()) {
    error = "spool: cannot open " + path + " read-only: " + s.ToString();
    return nullptr;
  }
  return adopt(path, raw, handles);
}

Store::~Store() {
  if (!db_) return;
  for (auto*& h : cf_) {
    if (h) db_->DestroyColumnFamilyHandle(h);
    h = nullptr;
  }
  db_->Close();
  delete db_;
  db_ = nullptr;
}

rocksdb::ColumnFamilyHandle* Store::family_by_id(std::uint32_t id) const {
  for (auto* h : cf_)
    if (h && h->GetID() == id) return h;
  return nullptr;
}

std::uint64_t Store::reserve_counter_floor(std::string& error) {
  std::string value;
  auto s = db_->Get(rocksdb::ReadOptions(), cf_[0], kCounterFloorKey, &value);
  std::uint64_t stored = 0;
  if (s.ok()) {
    if (value.size() != 8) {
      error = "spool: counter floor record is corrupt (" + std::to_string(value.size()) + " bytes)";
      return 0;
    }
    for (unsigned char c : value) stored = (stored << 8) | c;
  } else if (!s.IsNotFound()) {
    error = "spool: cannot read counter floor: " + s.ToString();
    return 0;
  }
  if (stored > UINT64_MAX - kCounterReserve - 1) {
    error = "spool: message id counter space exhausted";
    return 0;
  }
  std::uint64_t next_floor = stored + kCounterReserve;
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) out[7 - i] = static_cast<char>(next_floor >> (8 * i));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db_->Put(wo, cf_[0], kCounterFloorKey, out);
  if (!s.ok()) {
    error = "spool: cannot write counter floor: " + s.ToString();
    return 0;
  }
  return stored + 1;
}

}  // namespace mailgate::spool
