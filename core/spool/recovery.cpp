// spool/recovery: background rebuild of the queue index (see recovery.hpp).
// One thread, reading a snapshot with fill_cache=false: (1) scan `dest` in key
// order (= message id order), decode every record, intern destination names
// and append a 40-byte IndexEntry per record; (2) walk `body` one message id
// at a time and delete (DeleteRange over id|0..id+1, synced) the chunks of ids
// that have neither a `dest` record (binary search in the sorted index) nor a
// `meta` record (seek in `meta`).
// Promises: a dest record that cannot be read (malformed key, bad version,
// truncated) is never fatal and never retried: it is moved, as found, to the
// `quarantine` family (key "dest/" + its key, synced) and counted; the body
// and envelope of its message are kept (a body whose message has a
// quarantined record is no orphan), so an operator can look at it; a RocksDB error stops the scan
// with error() set and done() true; counters are readable at any time; on_done runs on the recovery
// thread after done() becomes true; the index entries are sorted by id.
#include "spool/recovery.hpp"

#include <rocksdb/db.h>
#include <algorithm>
#include <chrono>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "net/thread_name.hpp"
#include "spool/records.hpp"
#include "spool/store.hpp"

namespace mailgate::spool {

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The smallest id greater than `id`; false if `id` is the largest.
bool next_id(const MessageId& id, MessageId& out) {
  out = id;
  for (int i = 15; i >= 0; --i) {
    if (++out.bytes[i] != 0) return true;
  }
  return false;
}

rocksdb::Slice slice(const MessageId& id) { return {id.key().data(), id.key().size()}; }

constexpr std::string_view kQuarantineDest = "dest/";

// Messages with a record in the quarantine family (a malformed key counts as one).
std::uint64_t count_quarantined(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  std::uint64_t n = 0;
  std::string last;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto k = it->key().ToStringView();
    const auto id = k.substr(0, kQuarantineDest.size() + 16);
    if (id.size() == kQuarantineDest.size() + 16 && id == last) continue;
    last = std::string(id);
    ++n;
  }
  return n;
}

}  // namespace

Recovery::Recovery(Store& store) : store_(store) {}

Recovery::~Recovery() {
  cancel_.store(true);
  join();
}

void Recovery::start(std::function<void(const RecoveredIndex&)> on_done) {
  if (thread_.joinable() || start_ns_.load() != 0) return;
  on_done_ = std::move(on_done);
  start_ns_.store(now_ns());
  thread_ = std::thread([this] {
    net::name_this_thread("recovery");
    run();
  });
}

void Recovery::join() {
  if (thread_.joinable()) thread_.join();
}

double Recovery::seconds() const {
  auto start = start_ns_.load();
  if (start == 0) return 0.0;
  auto end = end_ns_.load();
  if (end == 0) end = now_ns();
  return static_cast<double>(end - start) / 1e9;
}

std::string Recovery::error() const {
  std::lock_guard lk(mu_);
  return error_;
}

void Recovery::run() {
  auto* db = store_.db();
  auto note = [this](const std::string& msg) {
    std::lock_guard lk(mu_);
    if (!error_.empty()) error_ += "; ";
    error_ += msg;
  };

  std::uint64_t estimate = 0;
  if (db->GetIntProperty(store_.dest(), "rocksdb.estimate-num-keys", &estimate))
    estimate_.store(estimate);

  const rocksdb::Snapshot* snap = db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  ro.snapshot = snap;
  bool failed = false;

  // --- 1. the index, from `dest` ---
  std::vector<MessageId> undecodable;  // ids with a dest record we could not read
  rocksdb::WriteBatch quarantine;      // those records, moved to `quarantine`
  rocksdb::WriteOptions synced;
  synced.sync = true;
  std::uint64_t quarantined = 0;
  auto set_aside = [&](const rocksdb::Slice& key, const rocksdb::Slice& value,
                       const std::string& what) {
    std::string qkey(kQuarantineDest);
    qkey.append(key.data(), key.size());
    quarantine.Put(store_.quarantine(), qkey, value);
    quarantine.Delete(store_.dest(), key);
    if (++quarantined <= 10) note(what + " moved to quarantine");
    quarantined_.store(quarantined, std::memory_order_relaxed);
    if (quarantine.Count() >= 256) {
      auto s = db->Write(synced, &quarantine);
      quarantine.Clear();
      if (!s.ok()) note("moving records to quarantine failed: " + s.ToString());
    }
  };
  {
    // The estimate can be off both ways; cap what we reserve on its word.
    index_.entries.reserve(std::min<std::uint64_t>(estimate + estimate / 16, 1u << 26));
    std::unordered_map<std::string, std::uint32_t> names;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, store_.dest()));
    MessageId last{};
    bool have_last = false;
    std::uint64_t records = 0, messages = 0, skipped = 0;
    std::string destination;
    DestRecord rec;
    std::unordered_map<std::string, std::uint32_t> tenancies;
    index_.tenancies.assign(1, nullptr);  // index 0: none
    std::uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if ((++n & 1023) == 0 && cancel_.load(std::memory_order_relaxed)) break;
      auto k = it->key();
      MessageId id;
      if (!split_dest_key({k.data(), k.size()}, id, destination)) {
        ++skipped;
        skipped_.store(skipped, std::memory_order_relaxed);
        set_aside(k, it->value(), "malformed dest key of " + std::to_string(k.size()) + " bytes");
        continue;
      }
      if (id.counter() >= live_counter_start_) continue;  // this run's: the live queue has it
      auto v = it->value();
      if (!decode({v.data(), v.size()}, rec)) {
        ++skipped;
        skipped_.store(skipped, std::memory_order_relaxed);
        set_aside(k, v, "undecodable dest record " + id.hex() + " " + destination);
        if (undecodable.empty() || undecodable.back() != id) undecodable.push_back(id);
        continue;
      }
      auto [pos, inserted] =
          names.try_emplace(destination, static_cast<std::uint32_t>(index_.destinations.size()));
      if (inserted) {
        index_.destinations.push_back(destination);
        index_.destination_auth.emplace_back();
      }
      if (rec.auth) {
        auto& a = index_.destination_auth[pos->second];
        if (!a || *a != *rec.auth) a = std::make_shared<const RouteAuth>(*rec.auth);
      }
      std::uint32_t tenancy_index = 0;  // into index_.tenancies
      if (!rec.tenancy.empty() || !rec.pool.empty()) {
        // Interned with the pool: a campaign's many records share one Tenancy.
        auto [t, added] = tenancies.try_emplace(
            rec.tenancy.tenant + '/' + rec.tenancy.campaign + '/' +
                std::to_string(static_cast<int>(rec.tenancy.priority)) + '/' + rec.pool,
            static_cast<std::uint32_t>(index_.tenancies.size()));
        if (added) {
          index_.tenancies.push_back(rec.tenancy.empty()
                                         ? nullptr
                                         : std::make_shared<const tenancy::Tenancy>(rec.tenancy));
          index_.pools.push_back(rec.pool);
        }
        tenancy_index = t->second;
      }
      std::uint16_t small = static_cast<std::uint16_t>(tenancy_index);
      if (tenancy_index >= kTenancyOverflow) {
        small = kTenancyOverflow;
        index_.tenancy_overflow.emplace(index_.entries.size(), tenancy_index);
      }
      index_.entries.push_back(
          IndexEntry{id, pos->second, rec.tls, small, rec.next_attempt_ms, rec.size});
      if (!have_last || last != id) {
        last = id;
        have_last = true;
        messages_.store(++messages, std::memory_order_relaxed);
      }
      records_.store(++records, std::memory_order_relaxed);
    }
    if (quarantined > 10) note(std::to_string(quarantined) + " dest records quarantined in all");
    if (quarantine.Count() > 0) {
      auto s = db->Write(synced, &quarantine);
      if (!s.ok()) note("moving records to quarantine failed: " + s.ToString());
    }
    store_.set_quarantined_messages(count_quarantined(db, store_.quarantine()));
    if (!it->status().ok()) {
      note("dest scan failed: " + it->status().ToString());
      failed = true;
    }
    auto& e = index_.entries;
    if (e.capacity() > e.size() + e.size() / 4 + 1024) e.shrink_to_fit();
  }

  // --- 2. orphaned body chunks ---
  if (!failed && !cancel_.load()) {
    std::unique_ptr<rocksdb::Iterator> body(db->NewIterator(ro, store_.body()));
    std::unique_ptr<rocksdb::Iterator> meta(db->NewIterator(ro, store_.meta()));
    // Not the snapshot: records moved there by this scan count too.
    std::unique_ptr<rocksdb::Iterator> quarantined_it(
        db->NewIterator(rocksdb::ReadOptions(), store_.quarantine()));
    const auto& entries = index_.entries;
    auto has_dest = [&](const MessageId& id) {
      auto e = std::lower_bound(entries.begin(), entries.end(), id,
                                [](const IndexEntry& a, const MessageId& b) { return a.id < b; });
      if ((e != entries.end() && e->id == id) ||
          std::binary_search(undecodable.begin(), undecodable.end(), id))
        return true;
      std::string prefix(kQuarantineDest);
      prefix += id.key();
      quarantined_it->Seek(prefix);
      return quarantined_it->Valid() && quarantined_it->key().starts_with(prefix);
    };
    auto has_meta = [&](const MessageId& id) {
      if (!meta->Valid() || meta->key().compare(slice(id)) < 0) meta->Seek(slice(id));
      return meta->Valid() && meta->key() == slice(id);
    };
    rocksdb::WriteBatch batch;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    std::uint64_t orphans = 0;
    auto flush = [&] {
      if (batch.Count() == 0) return true;
      auto s = db->Write(wo, &batch);
      batch.Clear();
      if (!s.ok()) note("deleting orphaned body chunks failed: " + s.ToString());
      return s.ok();
    };
    body->SeekToFirst();
    while (body->Valid() && !cancel_.load(std::memory_order_relaxed)) {
      auto k = body->key();
      auto id = MessageId::from_key({k.data(), k.size()});
      if (!id) {  // not a body key we wrote: leave it alone
        body->Next();
        continue;
      }
      MessageId after;
      bool more = next_id(*id, after);
      if (id->counter() < live_counter_start_ && !has_dest(*id) && !has_meta(*id)) {
        if (more)
          batch.DeleteRange(store_.body(), slice(*id), slice(after));
        else  // the very last possible id: no upper bound key exists
          for (; body->Valid() && body->key().starts_with(slice(*id)); body->Next())
            batch.Delete(store_.body(), body->key());
        orphans_.store(++orphans, std::memory_order_relaxed);
        if (batch.Count() >= 256 && !flush()) {
          failed = true;
          break;
        }
      }
      if (!more) break;
      // Skip this message's other chunks without reading their values; a
      // plain Next() first, since most messages have a single chunk.
      body->Next();
      if (body->Valid() && body->key().starts_with(slice(*id))) body->Seek(slice(after));
    }
    if (!failed && !flush()) failed = true;
    if (!failed && !body->status().ok()) note("body scan failed: " + body->status().ToString());
    if (!failed && !meta->status().ok()) note("meta scan failed: " + meta->status().ToString());
  }
  db->ReleaseSnapshot(snap);

  if (cancel_.load()) {
    note("cancelled");
    end_ns_.store(now_ns());
    return;
  }
  end_ns_.store(now_ns());
  done_.store(true);
  if (on_done_) on_done_(index_);
}

}  // namespace mailgate::spool
