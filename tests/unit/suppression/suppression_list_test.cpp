// Tests of the suppression list over a real spool: case-insensitive lookups,
// add/remove visible at once, paging in address order, and persistence
// across a reopen of the spool (write-through by the spool writer).
#include "suppression/suppression_list.hpp"

#include <gtest/gtest.h>

#include "../spool/temp_dir.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"

namespace mailgate::suppression {
namespace {

using spool::testing::TempDir;

struct Spool {
  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  explicit Spool(const std::string& path) {
    std::string err;
    store = spool::Store::open(path, err);
    if (!store) throw std::runtime_error(err);
    writer = std::make_unique<spool::SpoolWriter>(*store, 1 << 20, 0);
    writer->start();
  }
  ~Spool() { writer->stop(); }  // drains every write before the store closes
};

TEST(SuppressionList, LookupsIgnoreCaseAndChangesAreVisibleAtOnce) {
  TempDir tmp;
  Spool s(tmp.path());
  SuppressionList list(*s.store, *s.writer);
  EXPECT_FALSE(list.has("User@Example.COM"));
  list.add("User@Example.COM", "5.1.1 no such user");
  EXPECT_TRUE(list.has("user@example.com"));
  EXPECT_TRUE(list.has("USER@EXAMPLE.COM"));
  auto e = list.get("user@EXAMPLE.com");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->address, "user@example.com");
  EXPECT_EQ(e->reason, "5.1.1 no such user");
  EXPECT_GT(e->added_ms, 0);
  EXPECT_TRUE(list.remove("USER@example.com"));
  EXPECT_FALSE(list.has("user@example.com"));
  EXPECT_FALSE(list.remove("user@example.com"));
}

TEST(SuppressionList, PagesInAddressOrder) {
  TempDir tmp;
  Spool s(tmp.path());
  SuppressionList list(*s.store, *s.writer);
  for (const char* a : {"d@x.test", "a@x.test", "c@x.test", "b@x.test", "e@x.test"})
    list.add(a, "r");
  auto first = list.list("", 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].address, "a@x.test");
  EXPECT_EQ(first[1].address, "b@x.test");
  auto next = list.list(first.back().address, 10);
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0].address, "c@x.test");
  EXPECT_EQ(next[2].address, "e@x.test");
  EXPECT_EQ(list.size(), 5u);
}

TEST(SuppressionList, SurvivesAReopenOfTheSpool) {
  TempDir tmp;
  {
    Spool s(tmp.path());
    SuppressionList list(*s.store, *s.writer);
    list.add("kept@x.test", "5.1.1 gone");
    list.add("removed@x.test", "5.1.1 gone");
    list.remove("removed@x.test");
    list.add("reason@x.test", "text with spaces: 550 5.1.1");
  }
  Spool s(tmp.path());
  SuppressionList list(*s.store, *s.writer);
  EXPECT_TRUE(list.has("kept@x.test"));
  EXPECT_FALSE(list.has("removed@x.test"));
  auto e = list.get("reason@x.test");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->reason, "text with spaces: 550 5.1.1");
  EXPECT_EQ(list.size(), 2u);
}

TEST(SuppressionList, LongInputsAreBounded) {
  TempDir tmp;
  Spool s(tmp.path());
  SuppressionList list(*s.store, *s.writer);
  const std::string address(2000, 'a');
  list.add(address, std::string(5000, 'r'));
  auto e = list.get(address);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->address.size(), 512u);
  EXPECT_EQ(e->reason.size(), 512u);
}

// In a cluster: local writes are reported to the listener, other nodes'
// changes are applied without being reported, and the newer change wins.
TEST(SuppressionList, ListenerSeesLocalWritesAndApplyKeepsTheNewer) {
  TempDir tmp;
  Spool s(tmp.path());
  SuppressionList list(*s.store, *s.writer);
  std::vector<Change> seen;
  list.set_listener([&](const Change& c) { seen.push_back(c); });
  list.add("A@Example.com", "5.1.1");
  ASSERT_TRUE(list.remove("a@example.com"));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].removed);
  EXPECT_EQ(seen[0].address, "a@example.com");
  EXPECT_EQ(seen[0].reason, "5.1.1");
  EXPECT_TRUE(seen[1].removed);
  EXPECT_GE(seen[1].ms, seen[0].ms);

  EXPECT_TRUE(list.apply({false, "b@example.com", "remote", 1000}));
  EXPECT_TRUE(list.has("b@example.com"));
  EXPECT_EQ(seen.size(), 2u);                                          // not reported back
  EXPECT_FALSE(list.apply({false, "b@example.com", "remote", 1000}));  // already so
  EXPECT_FALSE(list.apply({true, "b@example.com", "", 999}));          // older removal
  EXPECT_TRUE(list.has("b@example.com"));
  EXPECT_TRUE(list.apply({true, "b@example.com", "", 1001}));
  EXPECT_FALSE(list.has("b@example.com"));
  EXPECT_FALSE(list.apply({true, "b@example.com", "", 1002}));  // nothing to remove
  EXPECT_EQ(list.all().size(), 0u);
}

// What another node sent through Redis (anyone may write there): only what
// this list could itself hold is accepted.
TEST(SuppressionList, CheckAcceptsOnlyChangesTheListCouldHold) {
  EXPECT_EQ(SuppressionList::check({false, "a@example.com", "5.1.1", 1000}), "");
  EXPECT_EQ(SuppressionList::check({true, "a@example.com", "", 1000}), "");
  EXPECT_NE(SuppressionList::check({false, "", "r", 1000}), "");
  EXPECT_NE(SuppressionList::check({false, "A@Example.com", "r", 1000}), "");  // not normalised
  EXPECT_NE(SuppressionList::check({false, std::string("a\0b@example.com", 15), "r", 1}), "");
  EXPECT_NE(SuppressionList::check({false, "a\r\n@example.com", "r", 1}), "");
  EXPECT_NE(SuppressionList::check({false, std::string(600, 'a'), "r", 1}), "");
  EXPECT_NE(SuppressionList::check({false, "a@example.com", std::string(600, 'r'), 1}), "");
}

}  // namespace
}  // namespace mailgate::suppression
