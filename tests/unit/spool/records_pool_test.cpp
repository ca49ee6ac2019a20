// Dest record v5: the egress pool (msg:set_pool) is kept with each queue
// record, written as v5 only when set (with or without smarthost AUTH), so
// records without a pool stay readable by older binaries; every truncation
// and an empty or over-long pool are refused.
#include <gtest/gtest.h>

#include "spool/records.hpp"

using namespace mailgate::spool;

TEST(RecordsPool, DestV5CarriesThePoolAndIsWrittenOnlyWithIt) {
  DestRecord d;
  d.recipients.push_back({0, RcptState::Pending, ""});
  d.attempts = 1;
  EXPECT_EQ(encode(d)[0], 3);
  d.pool = "bulk";
  const auto v5 = encode(d);
  EXPECT_EQ(v5[0], 5);
  DestRecord out;
  ASSERT_TRUE(decode(v5, out));
  EXPECT_EQ(out.pool, "bulk");
  EXPECT_FALSE(out.auth);
  EXPECT_EQ(out.attempts, 1u);
  for (std::size_t n = 1; n < v5.size(); ++n) EXPECT_FALSE(decode(v5.substr(0, n), out)) << n;

  d.auth = RouteAuth{"u", "p", true};
  const auto both = encode(d);
  EXPECT_EQ(both[0], 5);
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
}
