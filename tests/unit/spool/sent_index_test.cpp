// The sent-message index (spool/sent_index.hpp) on a real RocksDB spool:
// entries by id and by Message-ID, undecodable ones not found, and the sweep
// by age with its per-pass bound.
#include "spool/sent_index.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "temp_dir.hpp"

using namespace mailgate::spool;
using mailgate::spool::testing::TempDir;

namespace {

SentRecord record(std::uint64_t ms, std::uint64_t counter, std::string mid) {
  SentRecord r;
  r.id = MessageId::make(ms, 0, counter);
  r.sender = "s@example.org";
  r.recipients = {"a@example.net", "B@example.net"};
  r.tenant = "acme";
  r.campaign = "spring";
  r.message_id = std::move(mid);
  r.received_ms = static_cast<std::int64_t>(ms);
  return r;
}

void write(Store& store, WriteSet&& set) {
  rocksdb::WriteOptions wo;
  ASSERT_TRUE(store.db()->Write(wo, &set.batch()).ok());
}

}  // namespace

TEST(SentIndex, ReadsByIdAndByMessageId) {
  TempDir tmp;
  std::string err;
  auto store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  const auto r = record(1000, 1, "<m1@example.org>");
  WriteSet set(*store);
  put_sent(set, r);
  write(*store, std::move(set));
  auto got = read_sent(*store, r.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sender, "s@example.org");
  EXPECT_EQ(got->recipients, r.recipients);
  EXPECT_EQ(got->tenant, "acme");
  EXPECT_EQ(got->campaign, "spring");
  EXPECT_EQ(got->message_id, "<m1@example.org>");
  EXPECT_EQ(find_sent_by_message_id(*store, "<m1@example.org>"), r.id);
  EXPECT_FALSE(find_sent_by_message_id(*store, "<other@example.org>"));
  EXPECT_FALSE(find_sent_by_message_id(*store, ""));
  EXPECT_FALSE(read_sent(*store, MessageId::make(1000, 0, 2)));
  // An undecodable value is "not found", not a crash.
  ASSERT_TRUE(store->db()
                  ->Put(rocksdb::WriteOptions(), store->sent(),
                        "i" + std::string(MessageId::make(5, 0, 5).key()), "\x7fjunk")
                  .ok());
  EXPECT_FALSE(read_sent(*store, MessageId::make(5, 0, 5)));
}

TEST(SentIndex, SweepRemovesOnlyOldEntriesAtMostMaxPerPass) {
  TempDir tmp;
  std::string err;
  auto store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  WriteSet set(*store);
  for (std::uint64_t i = 0; i < 5; ++i)
    put_sent(set, record(1000 + i, i, "<old" + std::to_string(i) + "@x>"));
  put_sent(set, record(9000, 9, "<new@x>"));
  write(*store, std::move(set));

  WriteSet sweep1(*store);
  EXPECT_EQ(sweep_sent(*store, 5000, 3, sweep1), 3u);
  write(*store, std::move(sweep1));
  EXPECT_FALSE(read_sent(*store, MessageId::make(1000, 0, 0)));
  EXPECT_FALSE(find_sent_by_message_id(*store, "<old0@x>"));
  EXPECT_TRUE(read_sent(*store, MessageId::make(1003, 0, 3)));

  WriteSet sweep2(*store);
  EXPECT_EQ(sweep_sent(*store, 5000, 100, sweep2), 2u);
  write(*store, std::move(sweep2));
  WriteSet sweep3(*store);
  EXPECT_EQ(sweep_sent(*store, 5000, 100, sweep3), 0u);
  EXPECT_TRUE(read_sent(*store, MessageId::make(9000, 0, 9)));
  EXPECT_EQ(find_sent_by_message_id(*store, "<new@x>"), MessageId::make(9000, 0, 9));
}
