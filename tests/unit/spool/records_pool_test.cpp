// Dest record v6: the egress pool (msg:set_pool) is kept with each queue
// record, written as v6 (v5's tenancy, empty, then the pool) only when set
// (with or without smarthost AUTH, with or without a tenancy), so records
// without a pool stay readable by older binaries; every truncation and an
// empty pool are refused.
#include <gtest/gtest.h>

#include "spool/records.hpp"

using namespace mailgate::spool;

TEST(RecordsPool, DestV6CarriesThePoolAndIsWrittenOnlyWithIt) {
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  d.attempts = 1;
  EXPECT_EQ(encode(d)[0], 3);
  d.pool = "bulk";
  const auto v5 = encode(d);  // (named for the branch that made it v5)
  EXPECT_EQ(v5[0], 6);
  DestRecord out;
  ASSERT_TRUE(decode(v5, out));
  EXPECT_EQ(out.pool, "bulk");
  EXPECT_FALSE(out.auth);
  EXPECT_EQ(out.attempts, 1u);
  for (std::size_t n = 1; n < v5.size(); ++n) EXPECT_FALSE(decode(v5.substr(0, n), out)) << n;

  d.auth = RouteAuth{"u", "p", true};
  const auto both = encode(d);
  EXPECT_EQ(both[0], 6);
  ASSERT_TRUE(decode(both, out));
  EXPECT_EQ(out.pool, "bulk");
  ASSERT_TRUE(out.auth);
  EXPECT_EQ(*out.auth, *d.auth);

  d.pool.clear();
  EXPECT_EQ(encode(d)[0], 4);  // AUTH without a pool: still v4
  std::string empty_pool = v5;
  empty_pool.resize(v5.size() - 5);  // drop "\x04bulk"
  empty_pool.push_back('\0');        // a pool of length 0
  EXPECT_FALSE(decode(empty_pool, out));

  // With a tenancy too: both come back.
  d.pool = "bulk";
  d.tenancy.tenant = "acme";
  d.tenancy.campaign = "spring";
  const auto all = encode(d);
  EXPECT_EQ(all[0], 6);
  ASSERT_TRUE(decode(all, out));
  EXPECT_EQ(out.pool, "bulk");
  EXPECT_EQ(out.tenancy.tenant, "acme");
  EXPECT_EQ(out.tenancy.campaign, "spring");
  d.pool.clear();
  EXPECT_EQ(encode(d)[0], 5);  // a tenancy without a pool: v5
}
