// Tests of the submission stage without sockets: MessageDraft (scanning,
// spilling to a real RocksDB spool, header hold-back, discard) and Submitter
// (commit layout, grouping by destination, refusals leaving nothing behind,
// spool failures, generated messages leaving spool::kSubmitPending).
#include "submit/submitter.hpp"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <optional>

#include "../spool/temp_dir.hpp"
#include "metrics/outcome_counters.hpp"
#include "policy/config.hpp"
#include "spool/records.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "submit/message_draft.hpp"

namespace mailgate::submit {
namespace {

using spool::testing::TempDir;

struct Queued {
  spool::MessageId id;
  std::vector<spool::QueuedDest> dests;
  std::uint64_t size = 0;
};

struct Fixture {
  TempDir tmp;
  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  asio::io_context ctx;
  policy::Config config;
  metrics::DestinationLabels labels{{"big.test"}};
  std::vector<Queued> queued;
  std::unique_ptr<Submitter> submitter;

  explicit Fixture(bool fail_synced_writes = false) {
    std::string err;
    store = spool::Store::open(tmp.sub("spool"), err);
    if (!store) throw std::runtime_error(err);
    writer = std::make_unique<spool::SpoolWriter>(*store, 64 << 20, 0);
    if (fail_synced_writes) {
      writer->set_write_fn([this](rocksdb::WriteBatch& b, bool sync, std::string& e) {
        if (sync) {
          e = "injected failure";
          return false;
        }
        return store->db()->Write(rocksdb::WriteOptions(), &b).ok();
      });
      writer->set_error_log([](const std::string&) {});
    }
    writer->start();
    config.hostname = "gw.test";
    config.delivery.retry.first = policy::Duration(50);
    config.delivery.retry.max = policy::Duration(100);
    Submitter::Deps d;
    d.context = &ctx;
    d.config = &config;
    d.writer = writer.get();
    d.store = store.get();
    d.labels = &labels;
    d.queue = [this](const spool::MessageId& id, const std::vector<spool::QueuedDest>& dests,
                     std::uint64_t size) {
      queued.push_back({id, dests, size});
    };
    submitter = std::make_unique<Submitter>(std::move(d), spool::IdGenerator(0, 1));
  }
  ~Fixture() { writer->stop(); }

  // Runs `co` on the io_context to completion (bounded: the spool writer
  // completes every request).
  template <class T>
  T run(asio::awaitable<T> co) {
    std::optional<T> out;
    asio::co_spawn(ctx, std::move(co), [&](std::exception_ptr e, T v) {
      if (e) std::rethrow_exception(e);
      out = std::move(v);
    });
    ctx.restart();
    while (!out) ctx.run_one_for(std::chrono::seconds(10));
    return std::move(*out);
  }
  void run_void(asio::awaitable<void> co) {
    bool done = false;
    asio::co_spawn(ctx, std::move(co), [&](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
      done = true;
    });
    ctx.restart();
    while (!done) ctx.run_one_for(std::chrono::seconds(10));
  }

  bool has_chunk(const spool::MessageId& id, std::uint32_t n) {
    std::string v;
    return store->db()->Get(rocksdb::ReadOptions(), store->body(), spool::body_key(id, n), &v).ok();
  }
  std::string body_of(const spool::MessageId& id) {
    spool::Envelope env;
    EXPECT_TRUE(store->read_envelope(id, env));
    std::string body;
    EXPECT_TRUE(store->read_body(id, env.body_chunks, body));
    return body;
  }
};

asio::awaitable<bool> feed(MessageDraft& d, std::string data, std::size_t block) {
  for (std::size_t pos = 0; pos < data.size(); pos += block) {
    auto step = co_await d.absorb(std::string_view(data).substr(pos, block));
    if (step.done) co_return true;
  }
  co_return false;
}

Submission make_submission(MessageDraft& draft, const spool::MessageId& id,
                           std::vector<std::string> rcpts) {
  Submission s;
  s.id = id;
  s.origin.helo = "client.test";
  s.origin.client_ip = "192.0.2.7";
  s.sender = "app@sender.test";
  for (auto& r : rcpts) s.recipients.push_back({r, 0, ""});
  s.body = &draft;
  return s;
}

TEST(Submitter, SmallMessageIsCommittedGroupedByDestinationAndQueued) {
  Fixture f;
  MessageDraft draft(*f.writer, *f.store, 256 * 1024);
  const auto id = f.submitter->next_id();
  draft.begin(id, smtp::DataScanner::Mode::Dot, 1 << 20);
  EXPECT_TRUE(f.run(feed(draft, "Subject: hi\r\n\r\nbody\r\n..dot\r\n.\r\n", 7)));
  auto s = make_submission(draft, id, {"a@one.test", "b@two.test", "c@ONE.test"});
  auto r = f.run(f.submitter->submit(s));
  ASSERT_EQ(r.kind, SubmitResult::Kind::Queued);
  EXPECT_EQ(r.reply.code, 250);
  EXPECT_EQ(r.reply.text, "OK id=" + id.hex());
  const auto body = f.body_of(id);
  EXPECT_TRUE(
      body.starts_with("Received: from client.test ([192.0.2.7] [192.0.2.7])\r\n"
                       "\tby gw.test (mailgate) with ESMTP id " +
                       id.hex() + ";"))
      << body;
  EXPECT_TRUE(body.ends_with("\r\nSubject: hi\r\n\r\nbody\r\n.dot\r\n")) << body;
  spool::Envelope env;
  ASSERT_TRUE(f.store->read_envelope(id, env));
  EXPECT_EQ(env.size, body.size());
  EXPECT_EQ(env.body_chunks, 1u);
  EXPECT_EQ(env.client_ip, "192.0.2.7");
  auto dests = f.store->read_dests(id);
  ASSERT_EQ(dests.size(), 2u);
  EXPECT_EQ(dests[0].first, "one.test");
  ASSERT_EQ(dests[0].second.recipients.size(), 2u);
  EXPECT_EQ(dests[0].second.recipients[0].index, 0u);
  EXPECT_EQ(dests[0].second.recipients[1].index, 2u);
  EXPECT_EQ(dests[1].first, "two.test");
  ASSERT_EQ(f.queued.size(), 1u);
  EXPECT_EQ(f.queued[0].id, id);
  EXPECT_EQ(f.queued[0].dests.size(), 2u);
  EXPECT_EQ(f.queued[0].size, body.size());
  EXPECT_EQ(f.submitter->stats().received[0].load(), 1u);
}

TEST(Submitter, SpilledBodyKeepsHeadersForHooksAndIsStoredExactly) {
  Fixture f;
  MessageDraft draft(*f.writer, *f.store, 1024);
  const auto id = f.submitter->next_id();
  draft.begin(id, smtp::DataScanner::Mode::Chunk, 1 << 20);
  std::string content = "From: a@b.test\r\nSubject: big\r\n\r\n";
  for (int i = 0; i < 200; ++i) content += std::string(70, 'a' + i % 26) + "\r\n";
  f.run(feed(draft, content, 333));
  draft.finish_chunks();
  ASSERT_FALSE(draft.refusal());
  ASSERT_TRUE(draft.header_section());
  EXPECT_EQ(*draft.header_section(), "From: a@b.test\r\nSubject: big\r\n");
  EXPECT_GT(draft.chunk_count(), 3u);
  auto s = make_submission(draft, id, {"a@one.test"});
  ASSERT_EQ(f.run(f.submitter->submit(s)).kind, SubmitResult::Kind::Queued);
  const auto body = f.body_of(id);
  EXPECT_TRUE(body.starts_with("Received: ")) << body.substr(0, 80);
  EXPECT_TRUE(body.ends_with(content));
  EXPECT_EQ(body.find("\r\n\tfor <a@one.test>;"), body.find("\r\n\tfor"));
}

TEST(Submitter, HeadersLargerThanTheBufferAreNotOfferedButTheBodyIsExact) {
  Fixture f;
  MessageDraft draft(*f.writer, *f.store, 512);
  const auto id = f.submitter->next_id();
  draft.begin(id, smtp::DataScanner::Mode::Chunk, 1 << 20);
  std::string content;
  for (int i = 0; i < 40; ++i)
    content += "X-H" + std::to_string(i) + ": " + std::string(40, 'h') + "\r\n";
  content += "\r\nbody\r\n";
  f.run(feed(draft, content, 100));
  draft.finish_chunks();
  EXPECT_FALSE(draft.header_section());
  auto s = make_submission(draft, id, {"a@one.test"});
  ASSERT_EQ(f.run(f.submitter->submit(s)).kind, SubmitResult::Kind::Queued);
  const auto body = f.body_of(id);
  EXPECT_TRUE(body.starts_with("Received: "));
  EXPECT_TRUE(body.ends_with(content));
}

TEST(Submitter, RefusedMessageLeavesNoChunkBehind) {
  Fixture f;
  MessageDraft draft(*f.writer, *f.store, 256);
  const auto id = f.submitter->next_id();
  draft.begin(id, smtp::DataScanner::Mode::Chunk, 1 << 20);
  // Spills first, then a bare LF: refused (550 5.5.2) once complete.
  std::string content = "Subject: x\r\n\r\n" + std::string(600, 'z') + "\r\nbare\nlf\r\n";
  f.run(feed(draft, content, 200));
  draft.finish_chunks();
  ASSERT_TRUE(f.has_chunk(id, 1));
  auto s = make_submission(draft, id, {"a@one.test", "b@one.test"});
  auto r = f.run(f.submitter->submit(s));
  EXPECT_EQ(r.kind, SubmitResult::Kind::Refused);
  EXPECT_EQ(r.reply.code, 550);
  EXPECT_EQ(r.reply.enhanced, "5.5.2");
  for (std::uint32_t c = 0; c < 6; ++c) EXPECT_FALSE(f.has_chunk(id, c)) << c;
  spool::Envelope env;
  EXPECT_FALSE(f.store->read_envelope(id, env));
  EXPECT_TRUE(f.queued.empty());
  EXPECT_EQ(f.submitter->stats().recipients_rejected_data.load(), 2u);
  EXPECT_EQ(f.submitter->stats().bare_lf_rejected.load(), 1u);
}

TEST(Submitter, OversizeMessageStopsStoringAndIsRefused) {
  Fixture f;
  MessageDraft draft(*f.writer, *f.store, 256);
  const auto id = f.submitter->next_id();
  draft.begin(id, smtp::DataScanner::Mode::Chunk, 1000);
  f.run(feed(draft, std::string(5000, 'y') + "\r\n", 100));
  EXPECT_TRUE(draft.too_big());
  auto r = draft.refusal();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 552);
  EXPECT_EQ(r->enhanced, "5.3.4");
}

TEST(Submitter, AbandonedDraftDropsItsSpilledChunks) {
  Fixture f;
  MessageDraft draft(*f.writer, *f.store, 256);
  const auto id = f.submitter->next_id();
  draft.begin(id, smtp::DataScanner::Mode::Chunk, 1 << 20);
  f.run(feed(draft, "Subject: x\r\n\r\n" + std::string(2000, 'q'), 300));
  ASSERT_TRUE(f.has_chunk(id, 1));
  ASSERT_TRUE(draft.receiving());
  f.run_void(draft.discard());
  EXPECT_FALSE(draft.receiving());
  for (std::uint32_t c = 0; c < 12; ++c) EXPECT_FALSE(f.has_chunk(id, c)) << c;
}

TEST(Submitter, FailedCommitIsA451AndDropsEveryChunk) {
  Fixture f(/*fail_synced_writes=*/true);
  MessageDraft draft(*f.writer, *f.store, 256);
  const auto id = f.submitter->next_id();
  draft.begin(id, smtp::DataScanner::Mode::Chunk, 1 << 20);
  std::string content = "Subject: x\r\n\r\n";
  for (int i = 0; i < 20; ++i) content += std::string(60, 'w') + "\r\n";
  f.run(feed(draft, content, 300));
  draft.finish_chunks();
  ASSERT_TRUE(f.has_chunk(id, 1));  // spills are unsynced: they succeed
  auto s = make_submission(draft, id, {"a@one.test"});
  auto r = f.run(f.submitter->submit(s));
  EXPECT_EQ(r.kind, SubmitResult::Kind::Refused);
  EXPECT_EQ(r.reply.code, 451);
  EXPECT_EQ(r.reply.enhanced, "4.3.0");
  for (std::uint32_t c = 0; c < 8; ++c) EXPECT_FALSE(f.has_chunk(id, c)) << c;
  EXPECT_TRUE(f.queued.empty());
  EXPECT_EQ(f.submitter->stats().messages_tempfailed.load(), 1u);
}

TEST(Submitter, GeneratedMessageLeavesSubmitPendingForItsDestination) {
  Fixture f;
  const auto id = spool::MessageId::make(spool::wall_clock_ms(), 9, 1);
  spool::Envelope env;
  env.sender = "";
  env.recipients.push_back({"app@Sender.test", 0, ""});
  const std::string body = "Subject: Delivery Status Notification\r\n\r\nreport\r\n";
  env.size = body.size();
  env.body_chunks = 1;
  spool::DestRecord pending;
  pending.recipients.push_back({0, spool::RcptState::Pending, {}});
  spool::WriteSet set(*f.store);
  set.put_body_chunk(id, 0, body);
  set.put_envelope(id, env);
  set.put_dest(id, spool::kSubmitPending, pending);
  bool written = false;
  f.writer->submit(std::move(set), true, [&](std::error_code ec) { written = !ec; });
  // The writer completes on its own thread; wait for the record to be readable.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  spool::DestRecord check;
  while (!f.store->read_dest(id, spool::kSubmitPending, check) &&
         std::chrono::steady_clock::now() < deadline) {
  }
  ASSERT_TRUE(f.store->read_dest(id, spool::kSubmitPending, check));

  f.submitter->submit_generated({id, env, body, true});
  f.ctx.restart();
  while (f.queued.empty() && std::chrono::steady_clock::now() < deadline)
    f.ctx.run_one_for(std::chrono::milliseconds(100));
  ASSERT_EQ(f.queued.size(), 1u);
  ASSERT_EQ(f.queued[0].dests.size(), 1u);
  EXPECT_EQ(f.queued[0].dests[0].name, "sender.test");
  auto dests = f.store->read_dests(id);
  ASSERT_EQ(dests.size(), 1u);
  EXPECT_EQ(dests[0].first, "sender.test");
  EXPECT_EQ(f.body_of(id), body);  // no trace header on generated mail
  EXPECT_EQ(f.submitter->stats().received[2].load(), 1u);
}

}  // namespace
}  // namespace mailgate::submit
