// Tests for webhooks/webhooks over a real spool: staged rows exist only in
// the commit that holds them, survive a restart in order, a full backlog
// turns new events into dead letters (counted), replay requeues them, and
// an abandoned commit releases its backlog reservation. The sender is not
// started where it would POST (no receiver here: tests/integration has one).
#include <gtest/gtest.h>

#include <future>

#include "../spool/temp_dir.hpp"
#include "eventlog/delivery_log.hpp"
#include "httpclient/http_client.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "webhooks/webhooks.hpp"

using namespace mailgate;
using spool::testing::TempDir;

namespace {

eventlog::LogRecord event(const char* name, std::string id) {
  eventlog::LogRecord r;
  r.event = name;
  r.time_ms = 1700000000000;
  r.id = std::move(id);
  r.sender = "a@example.com";
  r.recipient = "b@example.net";
  return r;
}

struct Rig {
  TempDir tmp;
  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  httpclient::Client http;
  webhooks::WebhooksConfig cfg;

  Rig() {
    webhooks::TargetConfig t;
    t.name = "app";
    t.url = "http://127.0.0.1:1/hook";  // nobody listens
    t.secret = "s3cr3t";
    t.events = {"reception", "delivery"};
    t.retry_first = std::chrono::minutes(1);
    t.retry_max = std::chrono::minutes(1);
    cfg.targets.push_back(t);
    open();
  }
  void open() {
    std::string err;
    store = spool::Store::open(tmp.path(), err);
    if (!store) throw std::runtime_error(err);
    writer = std::make_unique<spool::SpoolWriter>(*store, 1 << 20, 0);
    writer->start();
  }
  void close() {
    writer.reset();
    store.reset();
  }
  std::unique_ptr<webhooks::Webhooks> make() {
    return std::make_unique<webhooks::Webhooks>(
        webhooks::Webhooks::Deps{&cfg, store.get(), writer.get(), &http});
  }
  std::error_code write(spool::WriteSet&& set) {
    std::promise<std::error_code> p;
    auto f = p.get_future();
    writer->submit(std::move(set), true, [&p](std::error_code ec) { p.set_value(ec); });
    return f.get();
  }
  std::vector<std::pair<char, std::uint64_t>> rows() {
    std::vector<std::pair<char, std::uint64_t>> out;
    store->for_each_webhook_row(
        [&](spool::WebhookRow k, const std::string&, std::uint64_t s, std::string_view) {
          out.emplace_back(static_cast<char>(k), s);
          return true;
        });
    return out;
  }
};

}  // namespace

TEST(WebhookQueue, StagedRowsAreFilteredCommittedAndSurviveARestart) {
  Rig rig;
  {
    auto w = rig.make();
    spool::WriteSet set(*rig.store);
    std::vector<eventlog::LogRecord> records{event("reception", "m1"), event("bounce", "m1"),
                                             event("delivery", "m1")};
    auto staged = w->stage(set, records);
    EXPECT_TRUE(rig.rows().empty());  // nothing before the commit
    ASSERT_FALSE(rig.write(std::move(set)));
    w->committed(std::move(staged));
    const auto st = w->status();
    ASSERT_EQ(st.size(), 1u);
    EXPECT_EQ(st[0].backlog_events, 2u);  // "bounce" is not for this target
    EXPECT_EQ(st[0].queued, 2u);
  }
  EXPECT_EQ(rig.rows(), (std::vector<std::pair<char, std::uint64_t>>{{'q', 1}, {'q', 2}}));
  rig.close();
  rig.open();
  auto w = rig.make();
  ASSERT_EQ(w->start(), "");
  const auto st = w->status();
  EXPECT_EQ(st[0].backlog_events, 2u);
  EXPECT_GT(st[0].backlog_bytes, 0u);
  // New events continue above the kept sequences.
  spool::WriteSet set(*rig.store);
  std::vector<eventlog::LogRecord> more{event("delivery", "m2")};
  auto staged = w->stage(set, more);
  ASSERT_FALSE(rig.write(std::move(set)));
  w->committed(std::move(staged));
  w->stop();
  EXPECT_EQ(rig.rows().back(), (std::pair<char, std::uint64_t>{'q', 3}));
}

TEST(WebhookQueue, FullBacklogMakesDeadLettersAndReplayRequeuesThem) {
  Rig rig;
  rig.cfg.max_backlog = 150;  // room for one event
  auto w = rig.make();
  spool::WriteSet set(*rig.store);
  std::vector<eventlog::LogRecord> records{event("reception", "m1"), event("reception", "m2"),
                                           event("reception", "m3")};
  auto staged = w->stage(set, records);
  ASSERT_FALSE(rig.write(std::move(set)));
  w->committed(std::move(staged));
  auto st = w->status();
  EXPECT_EQ(st[0].backlog_events, 1u);
  EXPECT_EQ(st[0].dead_letters, 2u);
  EXPECT_EQ(st[0].dead, 2u);
  auto dead = w->dead_letters("app", 100);
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 2u);
  EXPECT_NE((*dead)[0].reason.find("backlog full"), std::string::npos);
  EXPECT_NE((*dead)[0].json.find("\"m2\""), std::string::npos);
  EXPECT_FALSE(w->dead_letters("nope", 10));

  std::string error;
  EXPECT_FALSE(w->replay("nope", error));
  EXPECT_NE(error.find("no webhook target"), std::string::npos);
  auto n = w->replay("app", error);
  ASSERT_TRUE(n) << error;
  EXPECT_EQ(*n, 2u);
  st = w->status();
  EXPECT_EQ(st[0].dead_letters, 0u);
  EXPECT_EQ(st[0].backlog_events, 3u);
  // Requeued behind the queue, with new sequences.
  EXPECT_EQ(rig.rows(),
            (std::vector<std::pair<char, std::uint64_t>>{{'q', 1}, {'q', 4}, {'q', 5}}));
}

TEST(WebhookQueue, AbandonedCommitReleasesTheBacklog) {
  Rig rig;
  auto w = rig.make();
  spool::WriteSet set(*rig.store);
  std::vector<eventlog::LogRecord> records{event("reception", "m1")};
  auto staged = w->stage(set, records);
  EXPECT_EQ(w->status()[0].backlog_events, 1u);  // reserved at stage time
  w->abandoned(std::move(staged));
  EXPECT_EQ(w->status()[0].backlog_events, 0u);
  EXPECT_EQ(w->status()[0].backlog_bytes, 0u);
}
