// Tests for spool/store: open/close/reopen, column families, lock, counter floor.
#include "spool/store.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <algorithm>
#include <fstream>

#include "old_spool.hpp"
#include "temp_dir.hpp"

using mailgate::spool::Store;
using mailgate::spool::testing::TempDir;

TEST(Store, OpensCreatingParentsWithAllFamilies) {
  TempDir tmp;
  auto path = tmp.sub("a/b/spool");
  std::string err;
  {
    auto store = Store::open(path, err);
    ASSERT_TRUE(store) << err;
    EXPECT_EQ(store->path(), path);
    EXPECT_EQ(store->default_cf()->GetName(), "default");
    EXPECT_EQ(store->body()->GetName(), "body");
    EXPECT_EQ(store->meta()->GetName(), "meta");
    EXPECT_EQ(store->dest()->GetName(), "dest");
    EXPECT_EQ(store->suppress()->GetName(), "suppress");
    EXPECT_EQ(store->webhook()->GetName(), "webhook");
    EXPECT_EQ(store->quarantine()->GetName(), "quarantine");
    EXPECT_EQ(store->sent()->GetName(), "sent");
    EXPECT_EQ(store->family_by_id(store->dest()->GetID()), store->dest());
    EXPECT_EQ(store->family_by_id(12345), nullptr);
  }
  std::vector<std::string> families;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &families).ok());
  std::sort(families.begin(), families.end());
  EXPECT_EQ(families, (std::vector<std::string>{"body", "default", "dest", "meta", "quarantine",
                                                "sent", "suppress", "webhook"}));
}

// A spool written before the quarantine family existed: a read-only view
// opens what it has; a read-write open adds the family.
TEST(Store, SpoolWithoutQuarantineFamilyOpens) {
  TempDir tmp;
  const auto path = tmp.sub("old");
  ASSERT_TRUE(mailgate::spool::testing::make_spool_without_new_families(path).ok());
  std::string err;
  {
    auto view = Store::open_read_only(path, err);
    ASSERT_TRUE(view) << err;
    EXPECT_EQ(view->quarantine(), nullptr);
    EXPECT_EQ(view->webhook(), nullptr);
    EXPECT_EQ(view->dest()->GetName(), "dest");
  }
  auto store = Store::open(path, err);
  ASSERT_TRUE(store) << err;
  EXPECT_EQ(store->quarantine()->GetName(), "quarantine");
  EXPECT_EQ(store->webhook()->GetName(), "webhook");
  EXPECT_EQ(store->sent()->GetName(), "sent");  // the sent-message index, added at open
}

TEST(Store, DataSurvivesReopenIncludingBlobs) {
  TempDir tmp;
  std::string err;
  std::string big(100000, 'x');
  big[5] = '\0';
  {
    auto store = Store::open(tmp.path(), err);
    ASSERT_TRUE(store) << err;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    ASSERT_TRUE(store->db()->Put(wo, store->body(), "big", big).ok());
    ASSERT_TRUE(store->db()->Put(wo, store->meta(), "m", "meta").ok());
    // Push the body to an SST (and its value to a blob file).
    ASSERT_TRUE(store->db()->Flush(rocksdb::FlushOptions(), store->body()).ok());
  }
  auto store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  std::string v;
  ASSERT_TRUE(store->db()->Get(rocksdb::ReadOptions(), store->body(), "big", &v).ok());
  EXPECT_EQ(v, big);
  ASSERT_TRUE(store->db()->Get(rocksdb::ReadOptions(), store->meta(), "m", &v).ok());
  EXPECT_EQ(v, "meta");
  std::string blobs;
  ASSERT_TRUE(store->db()->GetProperty(store->body(), "rocksdb.num-blob-files", &blobs));
  EXPECT_EQ(blobs, "1");
}

TEST(Store, SecondOpenOfSamePathFails) {
  TempDir tmp;
  std::string err;
  auto first = Store::open(tmp.path(), err);
  ASSERT_TRUE(first) << err;
  std::string err2;
  auto second = Store::open(tmp.path(), err2);
  EXPECT_FALSE(second);
  EXPECT_NE(err2.find("lock"), std::string::npos) << err2;
  first.reset();
  // Closing releases the lock.
  auto third = Store::open(tmp.path(), err);
  EXPECT_TRUE(third) << err;
}

TEST(Store, PathThatIsAFileFails) {
  TempDir tmp;
  auto file = tmp.sub("file");
  std::ofstream(file) << "not a directory";
  std::string err;
  EXPECT_FALSE(Store::open(file, err));
  EXPECT_FALSE(err.empty());
  err.clear();
  EXPECT_FALSE(Store::open(file + "/below", err));
  EXPECT_FALSE(err.empty());
}

TEST(Store, CounterFloorStrictlyIncreasesAcrossReopens) {
  TempDir tmp;
  std::uint64_t prev = 0;
  for (int run = 0; run < 4; ++run) {
    std::string err;
    auto store = Store::open(tmp.path(), err);
    ASSERT_TRUE(store) << err;
    auto start = store->reserve_counter_floor(err);
    ASSERT_TRUE(err.empty()) << err;
    if (run == 0) {
      EXPECT_EQ(start, 1u);
    }
    // Each run may use 2^40 counters: the next run starts above all of them.
    if (run > 0) {
      EXPECT_GE(start, prev + (std::uint64_t{1} << 40));
    }
    EXPECT_GT(start, prev);
    prev = start;
  }
}
