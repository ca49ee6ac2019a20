// Tests for the spool's `webhook` family: key layout (a target's rows sort
// by sequence, kinds and targets apart), WriteSet puts/removes through the
// group-commit writer, scans (all, one kind+target, early stop), survival
// across reopen, and a read-only open of a spool made without the family.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <future>

#include "old_spool.hpp"
#include "spool/records.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "temp_dir.hpp"

using namespace mailgate::spool;
using mailgate::spool::testing::TempDir;

namespace {

struct Seen {
  WebhookRow kind;
  std::string target;
  std::uint64_t seq;
  std::string value;
};

std::vector<Seen> all_rows(const Store& store) {
  std::vector<Seen> out;
  store.for_each_webhook_row(
      [&](WebhookRow k, const std::string& t, std::uint64_t s, std::string_view v) {
        out.push_back({k, t, s, std::string(v)});
        return true;
      });
  return out;
}

void write(SpoolWriter& w, WriteSet&& set) {
  std::promise<std::error_code> p;
  auto f = p.get_future();
  w.submit(std::move(set), true, [&p](std::error_code ec) { p.set_value(ec); });
  ASSERT_FALSE(f.get());
}

}  // namespace

TEST(WebhookRows, KeysSplitBackAndSortBySequence) {
  const auto a = webhook_key(WebhookRow::Queued, "app", 255);
  const auto b = webhook_key(WebhookRow::Queued, "app", 256);
  const auto c = webhook_key(WebhookRow::Queued, "app2", 1);
  EXPECT_LT(a, b);  // big-endian sequence: numeric order is key order
  EXPECT_LT(b, c);  // NUL after the name: "app" rows before "app2" rows
  WebhookRow kind;
  std::string target;
  std::uint64_t seq = 0;
  ASSERT_TRUE(split_webhook_key(b, kind, target, seq));
  EXPECT_EQ(kind, WebhookRow::Queued);
  EXPECT_EQ(target, "app");
  EXPECT_EQ(seq, 256u);
  EXPECT_FALSE(split_webhook_key("x", kind, target, seq));
  EXPECT_FALSE(split_webhook_key("zapp" + std::string(9, '\0'), kind, target, seq));
}

TEST(WebhookRows, WrittenThroughTheWriterScannedInOrderAndSurviveReopen) {
  TempDir tmp;
  std::string err;
  {
    auto store = Store::open(tmp.path(), err);
    ASSERT_TRUE(store) << err;
    SpoolWriter writer(*store, 1 << 20, 0);
    writer.start();
    WriteSet set(*store);
    for (std::uint64_t s : {3, 1, 2})
      set.put_webhook(WebhookRow::Queued, "app", s, "q" + std::to_string(s));
    set.put_webhook(WebhookRow::Queued, "other", 7, "o7");
    set.put_webhook(WebhookRow::Dead, "app", 9, "d9");
    write(writer, std::move(set));
    WriteSet del(*store);
    del.remove_webhook(WebhookRow::Queued, "app", 2);
    write(writer, std::move(del));
    writer.stop();
  }
  auto store = Store::open(tmp.path(), err);
  ASSERT_TRUE(store) << err;
  const auto rows = all_rows(*store);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].kind, WebhookRow::Dead);  // 'd' < 'q'
  EXPECT_EQ(rows[1].value, "q1");
  EXPECT_EQ(rows[2].value, "q3");
  EXPECT_EQ(rows[3].target, "other");

  std::vector<std::uint64_t> app;
  store->for_each_webhook_row(
      WebhookRow::Queued, "app",
      [&](WebhookRow, const std::string&, std::uint64_t s, std::string_view) {
        app.push_back(s);
        return true;
      });
  EXPECT_EQ(app, (std::vector<std::uint64_t>{1, 3}));
  int visited = 0;
  store->for_each_webhook_row([&](WebhookRow, const std::string&, std::uint64_t, std::string_view) {
    ++visited;
    return false;  // stop at once
  });
  EXPECT_EQ(visited, 1);
}

TEST(WebhookRows, ReadOnlyOpenOfASpoolWithoutTheFamily) {
  TempDir tmp;
  ASSERT_TRUE(mailgate::spool::testing::make_spool_without_new_families(tmp.path()).ok());
  std::string err;
  auto ro = Store::open_read_only(tmp.path(), err);
  ASSERT_TRUE(ro) << err;
  EXPECT_EQ(ro->webhook(), nullptr);
  EXPECT_TRUE(all_rows(*ro).empty());
  ro.reset();
  auto rw = Store::open(tmp.path(), err);  // adds the family
  ASSERT_TRUE(rw) << err;
  ASSERT_NE(rw->webhook(), nullptr);
}
