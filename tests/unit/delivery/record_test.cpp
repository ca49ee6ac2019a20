// Tests of delivery/record: what the one WriteSet of a settled attempt holds,
// read back from a real spool::Store after a real SpoolWriter wrote it; and
// that the results and the DSN are written together or not at all.
#include "delivery/record.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "../spool/temp_dir.hpp"
#include "delivery/classify.hpp"
#include "smtp/params.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"

namespace mailgate::delivery {
namespace {

using namespace std::chrono_literals;
using spool::testing::TempDir;

constexpr std::int64_t kReceived = 1'800'000'000'000;
const std::string kBody = "Received: by gw.test\r\nSubject: hello\r\n\r\nthe body\r\n";

struct Spool {
  TempDir tmp;
  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  std::atomic<bool> fail_writes{false};  // read by the writer thread

  // `failure_switch`: writes go through a function that fails while
  // fail_writes is set (otherwise the writer's own write is used).
  explicit Spool(bool failure_switch = false) {
    std::string err;
    store = spool::Store::open(tmp.sub("spool"), err);
    if (!store) throw std::runtime_error(err);
    writer = std::make_unique<spool::SpoolWriter>(*store, 64 << 20, 0);
    if (failure_switch) install_failure_switch();
    writer->start();
  }
  ~Spool() { writer->stop(); }

  void install_failure_switch() {
    writer->set_write_fn([this](rocksdb::WriteBatch& b, bool sync, std::string& e) {
      if (fail_writes) {
        e = "injected failure";
        return false;
      }
      rocksdb::WriteOptions o;
      o.sync = sync;
      const auto st = store->db()->Write(o, &b);
      if (!st.ok()) e = st.ToString();
      return st.ok();
    });
    writer->set_error_log([](const std::string&) {});
  }

  // Submits `set` synced, as settle() does, and waits for the result.
  std::error_code write(spool::WriteSet set) {
    auto done = std::make_shared<std::promise<std::error_code>>();
    auto result = done->get_future();
    writer->submit(std::move(set), true, [done](std::error_code ec) { done->set_value(ec); });
    if (result.wait_for(20s) != std::future_status::ready)
      return std::make_error_code(std::errc::timed_out);
    return result.get();
  }
};

// A stored message with two destinations, each with two recipients.
struct Stored {
  spool::MessageId id = spool::MessageId::make(kReceived, 1, 42);
  spool::Envelope env;
  spool::DestRecord dest;

  explicit Stored(Spool& s) {
    env.sender = "sender@origin.test";
    env.recipients = {{"a@dest.test", smtp::kNotifyFailure, "rfc822;a@dest.test"},
                      {"b@dest.test", 0, ""},
                      {"c@other.test", 0, ""},
                      {"d@other.test", 0, ""}};
    env.size = kBody.size();
    env.received_ms = kReceived;
    env.body_chunks = 1;
    dest.recipients = {{0, spool::RcptState::Pending, {}}, {1, spool::RcptState::Pending, {}}};
    dest.size = kBody.size();
    spool::DestRecord other;
    other.recipients = {{2, spool::RcptState::Pending, {}}, {3, spool::RcptState::Pending, {}}};
    spool::WriteSet set(*s.store);
    set.put_body_chunk(id, 0, kBody);
    set.put_envelope(id, env);
    set.put_dest(id, "dest.test", dest);
    set.put_dest(id, "other.test", other);
    EXPECT_FALSE(s.write(std::move(set)));
  }
};

DsnMessage failure_dsn(const Stored& m, const spool::MessageId& dsn_id) {
  dsn::RecipientReport rep;
  rep.final_recipient = "a@dest.test";
  rep.original_recipient = "rfc822;a@dest.test";
  rep.action = dsn::Action::Failed;
  rep.status = "5.1.1";
  rep.remote_mta = "mx.dest.test";
  rep.diagnostic = "550 5.1.1 no such user";
  rep.last_attempt_ms = kReceived + 5000;
  return make_dsn({m.env, kBody, kReceived}, {rep}, dsn_id, "gw.test", kReceived + 5000);
}

TEST(Record, PendingDestinationKeepsItsRecordWithTheNewStates) {
  Spool s;
  Stored m(s);
  spool::DestRecord next = m.dest;
  next.recipients[0].state = spool::RcptState::Delivered;
  next.recipients[0].last_reply = "250 2.0.0 ok";
  next.recipients[1].last_reply = "451 4.2.0 later";
  next.attempts = 1;
  next.next_attempt_ms = kReceived + 60'000;
  next.delay_notified = true;
  ASSERT_FALSE(s.write(record(*s.store, {.id = m.id,
                                         .destination = "dest.test",
                                         .dest = next,
                                         .pending = true,
                                         .closes_message = false,
                                         .body_chunks = 1,
                                         .dsn = nullptr})));
  spool::DestRecord back;
  ASSERT_TRUE(s.store->read_dest(m.id, "dest.test", back));
  EXPECT_EQ(spool::encode(back), spool::encode(next));
  EXPECT_EQ(back.recipients[0].state, spool::RcptState::Delivered);
  EXPECT_EQ(back.recipients[1].state, spool::RcptState::Pending);
  EXPECT_EQ(back.attempts, 1u);
  EXPECT_EQ(back.next_attempt_ms, kReceived + 60'000);
  EXPECT_TRUE(back.delay_notified);
  // Nothing else changed: the other destination, envelope and body are there.
  EXPECT_EQ(s.store->read_dests(m.id).size(), 2u);
  spool::Envelope env;
  EXPECT_TRUE(s.store->read_envelope(m.id, env));
  std::string body;
  EXPECT_TRUE(s.store->read_body(m.id, 1, body));
  EXPECT_EQ(body, kBody);
  // And no DSN was queued.
  EXPECT_EQ(s.store->read_dests(spool::MessageId::make(kReceived, 9, 1)).size(), 0u);
}

TEST(Record, DoneDestinationIsRemovedAndTheMessageStaysForTheOthers) {
  Spool s;
  Stored m(s);
  ASSERT_FALSE(s.write(record(*s.store, {.id = m.id,
                                         .destination = "dest.test",
                                         .dest = m.dest,
                                         .pending = false,
                                         .closes_message = false,
                                         .body_chunks = 1})));
  const auto dests = s.store->read_dests(m.id);
  ASSERT_EQ(dests.size(), 1u);
  EXPECT_EQ(dests[0].first, "other.test");
  spool::Envelope env;
  EXPECT_TRUE(s.store->read_envelope(m.id, env));
  std::string body;
  EXPECT_TRUE(s.store->read_body(m.id, 1, body));
}

TEST(Record, TheLastDestinationTakesBodyAndEnvelopeWithIt) {
  Spool s;
  Stored m(s);
  spool::Envelope env;
  std::string body;
  for (const char* d : {"other.test", "dest.test"}) {
    const bool last = std::string_view(d) == "dest.test";
    ASSERT_FALSE(s.write(record(*s.store, {.id = m.id,
                                           .destination = d,
                                           .dest = m.dest,
                                           .pending = false,
                                           .closes_message = last,
                                           .body_chunks = 1})));
    EXPECT_EQ(s.store->read_envelope(m.id, env), !last) << d;
    EXPECT_EQ(s.store->read_body(m.id, 1, body), !last) << d;
  }
  EXPECT_TRUE(s.store->read_dests(m.id).empty());
}

TEST(Record, TheDsnIsStoredWithTheResultsAndWaitsForTheSubmissionStage) {
  Spool s;
  Stored m(s);
  const auto dsn_id = spool::MessageId::make(kReceived + 5000, 9, 1);
  const auto dsn = failure_dsn(m, dsn_id);
  ASSERT_FALSE(s.write(record(*s.store, {.id = m.id,
                                         .destination = "dest.test",
                                         .dest = m.dest,
                                         .pending = false,
                                         .closes_message = false,
                                         .body_chunks = 1,
                                         .dsn = &dsn})));
  EXPECT_EQ(s.store->read_dests(m.id).size(), 1u);  // dest.test is done

  spool::Envelope denv;
  ASSERT_TRUE(s.store->read_envelope(dsn_id, denv));
  EXPECT_EQ(denv.sender, "");
  ASSERT_EQ(denv.recipients.size(), 1u);
  EXPECT_EQ(denv.recipients[0].address, "sender@origin.test");
  EXPECT_EQ(denv.recipients[0].notify, 0);
  EXPECT_EQ(denv.body_type, static_cast<std::uint8_t>(smtp::BodyType::EightBitMime));
  EXPECT_FALSE(denv.smtputf8);
  EXPECT_EQ(denv.received_ms, kReceived + 5000);
  EXPECT_EQ(denv.helo, "gw.test");
  EXPECT_EQ(denv.body_chunks, 1u);
  std::string body;
  ASSERT_TRUE(s.store->read_body(dsn_id, 1, body));
  EXPECT_EQ(body, dsn.body);
  EXPECT_EQ(denv.size, body.size());
  EXPECT_NE(body.find("Action: failed"), std::string::npos) << body;
  EXPECT_NE(body.find("Final-Recipient: rfc822; a@dest.test"), std::string::npos) << body;
  EXPECT_NE(body.find("Diagnostic-Code: smtp; 550 5.1.1 no such user"), std::string::npos) << body;
  EXPECT_NE(body.find("Reporting-MTA: dns; gw.test"), std::string::npos) << body;
  EXPECT_NE(body.find(dsn_id.hex()), std::string::npos);      // its Message-ID
  EXPECT_NE(body.find("Subject: hello"), std::string::npos);  // the original, returned

  const auto queued = s.store->read_dests(dsn_id);
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(queued[0].first, spool::kSubmitPending);
  const auto& q = queued[0].second;
  ASSERT_EQ(q.recipients.size(), 1u);
  EXPECT_EQ(q.recipients[0].index, 0u);
  EXPECT_EQ(q.recipients[0].state, spool::RcptState::Pending);
  EXPECT_EQ(q.next_attempt_ms, kReceived + 5000);
  EXPECT_EQ(q.size, body.size());
  EXPECT_EQ(q.attempts, 0u);
}

TEST(Record, AFailedWriteKeepsNeitherTheResultsNorTheDsn) {
  Spool s(true);
  Stored m(s);
  const auto dsn_id = spool::MessageId::make(kReceived + 5000, 9, 1);
  const auto dsn = failure_dsn(m, dsn_id);
  s.fail_writes = true;
  EXPECT_TRUE(s.write(record(*s.store, {.id = m.id,
                                        .destination = "dest.test",
                                        .dest = m.dest,
                                        .pending = false,
                                        .closes_message = true,
                                        .body_chunks = 1,
                                        .dsn = &dsn})));
  s.fail_writes = false;
  EXPECT_EQ(s.store->read_dests(m.id).size(), 2u);
  spool::Envelope env;
  EXPECT_TRUE(s.store->read_envelope(m.id, env));
  EXPECT_FALSE(s.store->read_envelope(dsn_id, env));
  EXPECT_TRUE(s.store->read_dests(dsn_id).empty());
}

TEST(Record, ADelayWarningRidesWithAPendingRecord) {
  Spool s;
  Stored m(s);
  dsn::RecipientReport rep;
  rep.final_recipient = "b@dest.test";
  rep.action = dsn::Action::Delayed;
  rep.status = "4.2.0";
  rep.will_retry_until_ms = kReceived + 86'400'000;
  const auto dsn_id = spool::MessageId::make(kReceived + 1, 9, 2);
  const auto dsn = make_dsn({m.env, kBody, kReceived}, {rep}, dsn_id, "gw.test", kReceived + 1);
  auto next = m.dest;
  next.delay_notified = true;
  next.attempts = 3;
  ASSERT_FALSE(s.write(record(*s.store, {.id = m.id,
                                         .destination = "dest.test",
                                         .dest = next,
                                         .pending = true,
                                         .closes_message = false,
                                         .body_chunks = 1,
                                         .dsn = &dsn})));
  spool::DestRecord back;
  ASSERT_TRUE(s.store->read_dest(m.id, "dest.test", back));
  EXPECT_TRUE(back.delay_notified);
  EXPECT_EQ(back.attempts, 3u);
  std::string body;
  ASSERT_TRUE(s.store->read_body(dsn_id, 1, body));
  EXPECT_NE(body.find("Action: delayed"), std::string::npos) << body;
  // A delay report returns the headers only (RFC 3461 §4.3: full only for failures).
  EXPECT_EQ(body.find("the body"), std::string::npos);
}

TEST(MakeDsn, UnicodeAddressesMakeAGlobalDsn) {
  spool::Envelope env;
  env.sender = "sender@origin.test";
  env.recipients = {{"jörg@dest.test", 0, ""}};
  dsn::RecipientReport rep;
  rep.final_recipient = "jörg@dest.test";
  rep.action = dsn::Action::Failed;
  const auto m = make_dsn({env, kBody, kReceived}, {rep}, spool::MessageId::make(kReceived, 9, 3),
                          "gw.test", kReceived);
  EXPECT_TRUE(m.envelope.smtputf8);
  EXPECT_NE(m.body.find("message/global-delivery-status"), std::string::npos);
}

}  // namespace
}  // namespace mailgate::delivery
