// Tests for spool/recovery: index rebuild, interning, orphan removal, corrupt
// records moved to the quarantine family (kept, counted, not retried).
#include "spool/recovery.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <algorithm>
#include <atomic>
#include <optional>
#include <set>
#include <thread>

#include "spool/records.hpp"
#include "spool/store.hpp"
#include "temp_dir.hpp"

using namespace mailgate::spool;
using mailgate::spool::testing::TempDir;

namespace {

struct Spool {
  TempDir tmp;
  std::unique_ptr<Store> store;
  rocksdb::WriteOptions wo;
  Spool() {
    std::string err;
    store = Store::open(tmp.path(), err);
    if (!store) throw std::runtime_error(err);
  }
  void put(rocksdb::ColumnFamilyHandle* cf, const std::string& k, const std::string& v) {
    ASSERT_TRUE(store->db()->Put(wo, cf, k, v).ok());
  }
  bool has(rocksdb::ColumnFamilyHandle* cf, const std::string& k) {
    std::string v;
    return store->db()->Get(rocksdb::ReadOptions(), cf, k, &v).ok();
  }
  void body(const MessageId& id, int chunks, std::size_t size = 1100) {
    for (int c = 0; c < chunks; ++c) put(store->body(), body_key(id, c), std::string(size, 'b'));
  }
  void meta(const MessageId& id) {
    Envelope e;
    e.sender = "s@x.test";
    put(store->meta(), std::string(id.key()), encode(e));
  }
  void dest(const MessageId& id, const std::string& d, std::int64_t next, std::uint64_t size,
            std::optional<RouteAuth> auth = std::nullopt) {
    DestRecord r;
    r.recipients.push_back({0, RcptState::Pending, ""});
    r.next_attempt_ms = next;
    r.size = size;
    r.auth = std::move(auth);
    put(store->dest(), dest_key(id, d), encode(r));
  }
};

const std::vector<std::string> kDomains = {"a.test", "b.test", "[192.0.2.1]:25", "c.test",
                                           "d.test"};

}  // namespace

TEST(Recovery, RebuildsIndexAndRemovesOnlyOrphans) {
  Spool s;
  constexpr int kMessages = 2000;
  std::uint64_t dest_records = 0;
  std::vector<MessageId> ids;
  for (int i = 0; i < kMessages; ++i) {
    auto id = MessageId::make(1000 + i, i % 3, 10 + i);
    ids.push_back(id);
    s.body(id, 1 + i % 2);
    s.meta(id);
    for (int d = 0; d <= i % 3; ++d) {
      s.dest(id, kDomains[(i + d) % kDomains.size()], 5000 + i, 1100 * (1 + i % 2));
      ++dest_records;
    }
    if (i == kMessages / 2) s.store->db()->Flush(rocksdb::FlushOptions(), s.store->dest());
  }
  // Orphans: body chunks without meta and dest; one with blob-sized chunks,
  // one at each end of the key space and some interleaved.
  std::vector<MessageId> orphans = {MessageId::make(0, 0, 0), MessageId::make(1500, 9, 1),
                                    MessageId::make(1500, 9, 2), MessageId::make(999999, 0, 0)};
  for (auto& o : orphans) s.body(o, 3);
  auto big_orphan = MessageId::make(1700, 1, 1);
  s.body(big_orphan, 2, 100000);
  orphans.push_back(big_orphan);
  auto last = MessageId::make((1ull << 48) - 1, 0xffff, 5);
  s.body(last, 2);
  orphans.push_back(last);
  // Not orphans: body + meta only, body + dest only.
  auto meta_only = MessageId::make(1600, 7, 1);
  s.body(meta_only, 2);
  s.meta(meta_only);
  auto dest_only = MessageId::make(1600, 7, 2);
  s.body(dest_only, 2);
  s.dest(dest_only, "a.test", 1, 2);
  ++dest_records;
  s.store->db()->Flush(rocksdb::FlushOptions(), s.store->body());

  Recovery r(*s.store);
  EXPECT_FALSE(r.done());
  EXPECT_EQ(r.seconds(), 0.0);
  std::atomic<bool> called{false};
  std::thread::id on_done_thread;
  std::size_t seen_entries = 0;
  r.start([&](const RecoveredIndex& idx) {
    on_done_thread = std::this_thread::get_id();
    seen_entries = idx.entries.size();
    called = true;
  });
  r.join();
  ASSERT_TRUE(r.done());
  EXPECT_TRUE(called.load());
  EXPECT_NE(on_done_thread, std::this_thread::get_id());
  EXPECT_EQ(r.error(), "");

  const auto& idx = r.index();
  EXPECT_EQ(seen_entries, idx.entries.size());
  EXPECT_EQ(idx.entries.size(), dest_records);
  EXPECT_EQ(r.records(), dest_records);
  EXPECT_EQ(r.messages(), std::uint64_t{kMessages + 1});
  EXPECT_GT(r.estimated_total(), 0u);
  EXPECT_GT(r.seconds(), 0.0);
  auto t = r.seconds();
  EXPECT_EQ(r.seconds(), t);  // frozen once done
  EXPECT_EQ(r.skipped(), 0u);

  // Destinations are interned: one name each.
  std::set<std::string> names(idx.destinations.begin(), idx.destinations.end());
  EXPECT_EQ(names.size(), idx.destinations.size());
  EXPECT_EQ(names, std::set<std::string>(kDomains.begin(), kDomains.end()));
  EXPECT_TRUE(std::is_sorted(idx.entries.begin(), idx.entries.end(),
                             [](const IndexEntry& a, const IndexEntry& b) { return a.id < b.id; }));
  for (const auto& e : idx.entries) {
    ASSERT_LT(e.destination, idx.destinations.size());
    if (e.id == dest_only) continue;
    auto i = e.id.counter() - 10;
    EXPECT_EQ(e.next_attempt_ms, std::int64_t(5000 + i));
    EXPECT_EQ(e.size, 1100u * (1 + i % 2));
  }
  static_assert(sizeof(IndexEntry) <= 40);

  EXPECT_EQ(r.orphans_removed(), orphans.size());
  for (auto& o : orphans)
    for (int c = 0; c < 3; ++c) EXPECT_FALSE(s.has(s.store->body(), body_key(o, c))) << o.hex();
  for (auto& id : ids) EXPECT_TRUE(s.has(s.store->body(), body_key(id, 0))) << id.hex();
  EXPECT_TRUE(s.has(s.store->body(), body_key(ids[1], 1)));
  for (int c = 0; c < 2; ++c) {
    EXPECT_TRUE(s.has(s.store->body(), body_key(meta_only, c)));
    EXPECT_TRUE(s.has(s.store->body(), body_key(dest_only, c)));
  }

  // A second pass finds nothing more to remove.
  Recovery again(*s.store);
  again.start();
  again.join();
  EXPECT_EQ(again.orphans_removed(), 0u);
  EXPECT_EQ(again.records(), dest_records);
}

TEST(Recovery, CorruptDestRecordsAreQuarantinedTheRestRecovers) {
  TempDir tmp;
  auto good = MessageId::make(1, 0, 1);
  auto bad = MessageId::make(2, 0, 2);
  auto truncated = MessageId::make(3, 0, 3);
  std::string good_record;
  {
    std::string err;
    auto store = Store::open(tmp.path(), err);
    ASSERT_TRUE(store) << err;
    rocksdb::WriteOptions wo;
    auto put = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& k, const std::string& v) {
      ASSERT_TRUE(store->db()->Put(wo, cf, k, v).ok());
    };
    Envelope e;
    e.sender = "s@x.test";
    DestRecord r;
    r.recipients.push_back({0, RcptState::Pending, ""});
    r.next_attempt_ms = 7;
    r.size = 1100;
    good_record = encode(r);
    put(store->body(), body_key(good, 0), "good body");
    put(store->meta(), std::string(good.key()), encode(e));
    put(store->dest(), dest_key(good, "a.test"), good_record);
    // Hand-corrupted: an unknown version byte; a record cut short; an empty
    // value; a key too short to hold an id.
    put(store->body(), body_key(bad, 0), "bad body");  // no meta: only the dest record vouches
    std::string bad_version = good_record;
    bad_version[0] = '\x7f';
    put(store->dest(), dest_key(bad, "b.test"), bad_version);
    put(store->dest(), dest_key(bad, "c.test"), "");
    put(store->body(), body_key(truncated, 0), "truncated body");
    put(store->meta(), std::string(truncated.key()), encode(e));
    put(store->dest(), dest_key(truncated, "d.test"),
        good_record.substr(0, good_record.size() / 2));
    put(store->dest(), "short", "\x01");
  }
  // A real reopen of the RocksDB spool, as at a restart.
  std::string err;
  auto store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  Recovery r(*store);
  r.start();
  r.join();
  ASSERT_TRUE(r.done());
  // The rest recovers.
  EXPECT_EQ(r.records(), 1u);
  ASSERT_EQ(r.index().entries.size(), 1u);
  EXPECT_EQ(r.index().entries[0].id, good);
  EXPECT_EQ(r.index().destinations, std::vector<std::string>{"a.test"});
  // The corrupt ones are set aside as found, not deleted, and counted.
  EXPECT_EQ(r.skipped(), 4u);
  EXPECT_EQ(r.quarantined(), 4u);
  EXPECT_NE(r.error().find("moved to quarantine"), std::string::npos) << r.error();
  EXPECT_EQ(store->quarantined_messages(), 3u);  // bad, truncated, and the malformed key
  auto get = [&](rocksdb::ColumnFamilyHandle* cf, const std::string& k) {
    std::string v;
    return store->db()->Get(rocksdb::ReadOptions(), cf, k, &v).ok() ? std::optional(v)
                                                                    : std::nullopt;
  };
  EXPECT_FALSE(get(store->dest(), dest_key(bad, "b.test")));
  EXPECT_FALSE(get(store->dest(), "short"));
  EXPECT_EQ(get(store->quarantine(), "dest/" + dest_key(bad, "b.test")), [&] {
    auto v = good_record;
    v[0] = '\x7f';
    return std::optional(v);
  }());
  EXPECT_EQ(get(store->quarantine(), "dest/" + dest_key(bad, "c.test")), std::string());
  EXPECT_EQ(get(store->quarantine(), "dest/" + dest_key(truncated, "d.test")),
            good_record.substr(0, good_record.size() / 2));
  EXPECT_EQ(get(store->quarantine(), "dest/short"), std::string("\x01"));
  // Their bodies are kept, now and at the next start (no dest record is left
  // for `bad`, and it has no envelope: its quarantined record vouches for it).
  EXPECT_EQ(r.orphans_removed(), 0u);
  EXPECT_TRUE(get(store->body(), body_key(bad, 0)));
  store.reset();
  store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  Recovery again(*store);
  again.start();
  again.join();
  EXPECT_EQ(again.skipped(), 0u);  // not retried
  EXPECT_EQ(again.records(), 1u);
  EXPECT_EQ(again.orphans_removed(), 0u);
  EXPECT_TRUE(get(store->body(), body_key(bad, 0)));
  EXPECT_TRUE(get(store->body(), body_key(truncated, 0)));
  EXPECT_EQ(store->quarantined_messages(), 3u);
}

TEST(Recovery, ThisRunsMessagesAreNeitherIndexedNorOrphaned) {
  Spool s;
  auto old_msg = MessageId::make(1, 0, 5);
  auto old_orphan = MessageId::make(1, 0, 6);
  auto live_dest = MessageId::make(2, 0, 100);
  auto live_partial = MessageId::make(2, 1, 100);  // body chunks written before its envelope
  s.body(old_msg, 1);
  s.meta(old_msg);
  s.dest(old_msg, "a.test", 1, 1);
  s.body(old_orphan, 1);
  s.dest(live_dest, "b.test", 1, 1);
  s.body(live_partial, 2);

  Recovery r(*s.store);
  r.set_live_counter_start(100);
  r.start();
  r.join();
  EXPECT_EQ(r.records(), 1u);
  ASSERT_EQ(r.index().entries.size(), 1u);
  EXPECT_EQ(r.index().entries[0].id, old_msg);
  EXPECT_EQ(r.orphans_removed(), 1u);
  EXPECT_FALSE(s.has(s.store->body(), body_key(old_orphan, 0)));
  EXPECT_TRUE(s.has(s.store->body(), body_key(live_partial, 0)));
  EXPECT_TRUE(s.has(s.store->body(), body_key(live_partial, 1)));
}

TEST(Recovery, SmarthostCredentialsComeBackPerDestinationNewestFirst) {
  Spool s;
  const std::string relay = "app@[192.0.2.7]:587";
  for (std::uint64_t i = 1; i <= 3; ++i) {
    auto id = MessageId::make(i, 0, i);
    s.body(id, 1);
    s.meta(id);
    // The password changed (a reload) before the third message was routed.
    s.dest(id, relay, 1, 1, RouteAuth{"app", i < 3 ? "old-pw" : "new-pw", i == 3});
    s.dest(id, "a.test", 1, 1);
  }
  Recovery r(*s.store);
  r.start();
  r.join();
  const auto& idx = r.index();
  ASSERT_EQ(idx.destination_auth.size(), idx.destinations.size());
  for (std::size_t i = 0; i < idx.destinations.size(); ++i) {
    if (idx.destinations[i] == relay) {
      ASSERT_TRUE(idx.destination_auth[i]);
      EXPECT_EQ(*idx.destination_auth[i], (RouteAuth{"app", "new-pw", true}));
    } else {
      EXPECT_FALSE(idx.destination_auth[i]) << idx.destinations[i];
    }
  }
  EXPECT_EQ(idx.entries.size(), 6u);
}

TEST(Recovery, EmptySpoolAndDestructorWithoutStart) {
  Spool s;
  { Recovery unused(*s.store); }
  Recovery r(*s.store);
  r.start();
  r.join();
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.records(), 0u);
  EXPECT_EQ(r.messages(), 0u);
  EXPECT_EQ(r.orphans_removed(), 0u);
  EXPECT_TRUE(r.index().entries.empty());
}
