// End-to-end delivery through the real DeliveryEngine (queue shards, worker
// pool, SmtpClient, spool reader and writer, delivery log, submission stage
// for DSNs) against an in-process fake remote SMTP server on 127.0.0.1.
// Messages go to the address literal [127.0.0.1], so no DNS is involved;
// delivery.port is the fake server's port. Every wait has a deadline.
#include "delivery/delivery_engine.hpp"
#include "dns/resolver.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../spool/temp_dir.hpp"
#include "eventlog/delivery_log.hpp"
#include "fake_smtp_server.hpp"
#include "net/worker_pool.hpp"
#include "policy/config.hpp"
#include "smtp/params.hpp"
#include "spool/message_id.hpp"
#include "spool/spool_reader.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "submit/submitter.hpp"

namespace mailgate::delivery {
namespace {

using namespace std::chrono_literals;
using spool::testing::TempDir;
using testing::FakeSmtpServer;

constexpr auto kDeadline = 30s;  // generous: a loaded 2-core machine
const std::string kDest = "[127.0.0.1]";

// Polls `pred` until it holds or `deadline` passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline = kDeadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A port nothing listens on (bound once, then closed).
std::uint16_t closed_port() {
  FakeSmtpServer probe;
  return probe.port();
}

// The gateway's delivery half, assembled and torn down as app/gateway does.
struct Gateway {
  TempDir tmp;
  policy::Config cfg;
  std::unique_ptr<spool::Store> store;
  std::unique_ptr<spool::SpoolWriter> writer;
  std::unique_ptr<spool::SpoolReader> reader;
  std::unique_ptr<eventlog::DeliveryLog> log;
  std::unique_ptr<net::WorkerPool> workers;
  std::vector<std::unique_ptr<dns::Resolver>> resolvers;  // one per worker, as app/gateway
  std::unique_ptr<DeliveryEngine> engine;
  std::vector<std::unique_ptr<submit::Submitter>> submitters;
  spool::IdGenerator ids{50, 1};  // test messages: a worker number nobody else uses
  bool running = false;

  // `port`: where [127.0.0.1] is delivered.
  explicit Gateway(std::uint16_t port, const std::function<void(policy::Config&)>& tweak = {}) {
    cfg.hostname = "gw.test";
    cfg.workers = 2;
    cfg.delivery.port = port;
    cfg.delivery.retry.first = policy::Duration(300);
    cfg.delivery.retry.max = policy::Duration(1000);
    cfg.log.deliveries = tmp.sub("deliveries.jsonl");
    cfg.metrics.destinations = {kDest};
    if (tweak) tweak(cfg);
    std::string err;
    store = spool::Store::open(tmp.sub("spool"), err);
    if (!store) throw std::runtime_error(err);
    writer = std::make_unique<spool::SpoolWriter>(*store, 64 << 20, 0);
    writer->start();
    reader = std::make_unique<spool::SpoolReader>(*store, 2);
    reader->start();
    log = std::make_unique<eventlog::DeliveryLog>(cfg.log.deliveries, cfg.workers);
    log->start();
    workers = std::make_unique<net::WorkerPool>(cfg.workers);
    for (unsigned i = 0; i < workers->size(); ++i) {
      dns::ResolverOptions opts;
      opts.servers = cfg.dns.servers;
      resolvers.push_back(std::make_unique<dns::Resolver>(workers->context(i), opts));
    }
    workers->start();
    running = true;
    EngineDeps deps;
    for (auto& r : resolvers) deps.resolvers.push_back(r.get());
    deps.config = &cfg;
    deps.workers = workers.get();
    deps.store = store.get();
    deps.writer = writer.get();
    deps.reader = reader.get();
    deps.log = log.get();
    deps.id_counter_start = 1;
    engine = std::make_unique<DeliveryEngine>(deps);
    std::vector<submit::Submitter*> ptrs;
    for (unsigned i = 0; i < workers->size(); ++i) {
      submit::Submitter::Deps sd;
      sd.worker = i;
      sd.context = &workers->context(i);
      sd.config = &cfg;
      sd.writer = writer.get();
      sd.reader = reader.get();
      sd.store = store.get();
      sd.log = log.get();
      sd.labels = &engine->labels();
      sd.queue = [e = engine.get()](const spool::MessageId& id,
                                    const std::vector<spool::QueuedDest>& dests,
                                    std::uint64_t size) { e->enqueue(id, dests, size); };
      submitters.push_back(std::make_unique<submit::Submitter>(
          std::move(sd), spool::IdGenerator(static_cast<std::uint16_t>(i), 1)));
      ptrs.push_back(submitters.back().get());
    }
    engine->set_submitters(ptrs);
    if (auto e = engine->start(); !e.empty()) throw std::runtime_error(e);
  }

  ~Gateway() {
    engine->stop();
    workers->run_on_all([this](unsigned i) { resolvers[i]->shutdown(); });
    engine->drain(10s);
    workers->stop();
    writer->stop();
    reader->stop();
    engine->release_io();
    resolvers.clear();
    workers->destroy();
    log->stop();
  }

  struct Rcpt {
    std::string address;
    std::uint8_t notify = 0;
  };
  // Stores a message for [127.0.0.1] (as the submission stage would) and
  // hands it to the engine.
  spool::MessageId send(const std::string& sender, const std::vector<Rcpt>& rcpts,
                        const std::string& body, std::optional<spool::MessageId> id = {}) {
    return send_to(kDest, std::nullopt, sender, rcpts, body, id);
  }
  // The same for any destination, with the smarthost AUTH a route gave.
  spool::MessageId send_to(const std::string& dest, std::optional<spool::RouteAuth> auth,
                           const std::string& sender, const std::vector<Rcpt>& rcpts,
                           const std::string& body, std::optional<spool::MessageId> id = {}) {
    if (!id) id = ids.next();
    spool::Envelope env;
    env.sender = sender;
    for (const auto& r : rcpts) env.recipients.push_back({r.address, r.notify, ""});
    env.size = body.size();
    env.received_ms = static_cast<std::int64_t>(id->millis());
    env.body_chunks = 1;
    env.meta = {{"tenant", "t1"}};
    spool::DestRecord rec;
    for (std::uint32_t i = 0; i < rcpts.size(); ++i)
      rec.recipients.push_back({i, spool::RcptState::Pending, {}});
    rec.size = body.size();
    rec.next_attempt_ms = env.received_ms;
    rec.auth = auth;
    spool::WriteSet set(*store);
    set.put_body_chunk(*id, 0, body);
    set.put_envelope(*id, env);
    set.put_dest(*id, dest, rec);
    auto done = std::make_shared<std::promise<std::error_code>>();
    auto result = done->get_future();
    writer->submit(std::move(set), true, [done](std::error_code ec) { done->set_value(ec); });
    EXPECT_EQ(result.wait_for(kDeadline), std::future_status::ready);
    EXPECT_FALSE(result.get());
    engine->enqueue(*id, {{dest, std::nullopt, auth}}, body.size());
    return *id;
  }

  // Commits `set` with a synced write and waits for it.
  void commit(spool::WriteSet set) {
    auto done = std::make_shared<std::promise<std::error_code>>();
    auto result = done->get_future();
    writer->submit(std::move(set), true, [done](std::error_code ec) { done->set_value(ec); });
    ASSERT_EQ(result.wait_for(kDeadline), std::future_status::ready);
    EXPECT_FALSE(result.get());
  }

  // The delivery log's records once it holds at least `n` of them.
  std::vector<nlohmann::json> log_records(std::size_t n) {
    std::vector<nlohmann::json> out;
    eventually([&] {
      out.clear();
      std::ifstream in(cfg.log.deliveries);
      for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(nlohmann::json::parse(line));
      return out.size() >= n;
    });
    return out;
  }

  // Nothing of [127.0.0.1] waits or is being settled (every attempt has
  // been requeued, so everything it publishes is counted).
  bool idle() {
    auto summary = engine->queue_summary(10s);
    if (!summary) return false;
    for (const auto& d : *summary)
      if (d.name == kDest && d.ready + d.scheduled + d.in_flight > 0) return false;
    return true;
  }

  std::uint64_t outcome(metrics::Outcome o) {
    return engine->metrics().outcomes[engine->labels().index(kDest)][static_cast<std::size_t>(o)];
  }
};

std::vector<nlohmann::json> with_event(const std::vector<nlohmann::json>& records,
                                       const std::string& event) {
  std::vector<nlohmann::json> out;
  for (const auto& r : records)
    if (r.value("event", "") == event) out.push_back(r);
  return out;
}

const FakeSmtpServer::Transaction* from_null_sender(
    const std::vector<FakeSmtpServer::Transaction>& txs) {
  for (const auto& t : txs)
    if (t.mail_from.starts_with("FROM:<>")) return &t;
  return nullptr;
}

TEST(DeliveryEngine, DeliversDefersAndBouncesThenRetriesAndSendsTheDsn) {
  FakeSmtpServer remote;
  remote.script_rcpt("gone@[127.0.0.1]", {"550 5.1.1 no such user"});
  remote.script_rcpt("later@[127.0.0.1]", {"451 4.2.0 try later"});
  Gateway gw(remote.port());
  const std::string body =
      "Received: by gw.test\r\nSubject: hello\r\n\r\nline one\r\n.dot line\r\n";
  const auto id = gw.send("sender@[127.0.0.1]",
                          {{"ok@[127.0.0.1]"}, {"gone@[127.0.0.1]"}, {"later@[127.0.0.1]"}}, body);

  // ok now; later on the retry; the DSN about gone to the sender.
  ASSERT_TRUE(remote.wait_transactions(3, kDeadline));
  ASSERT_TRUE(eventually([&] { return gw.engine->stats().delivered >= 3; }));
  const auto txs = remote.transactions();
  ASSERT_EQ(txs.size(), 3u);
  EXPECT_EQ(txs[0].mail_from, "FROM:<sender@[127.0.0.1]>");
  EXPECT_EQ(txs[0].rcpts, std::vector<std::string>{"ok@[127.0.0.1]"});
  EXPECT_EQ(txs[0].refused, (std::vector<std::string>{"gone@[127.0.0.1]", "later@[127.0.0.1]"}));
  EXPECT_EQ(txs[0].data, body);  // dot-stuffed on the wire, exact at the other end
  const auto* dsn = from_null_sender(txs);
  ASSERT_NE(dsn, nullptr);
  EXPECT_EQ(dsn->rcpts, std::vector<std::string>{"sender@[127.0.0.1]"});
  EXPECT_NE(dsn->data.find("Action: failed"), std::string::npos) << dsn->data;
  EXPECT_NE(dsn->data.find("Final-Recipient: rfc822; gone@[127.0.0.1]"), std::string::npos);
  EXPECT_NE(dsn->data.find("Diagnostic-Code: smtp; 550 5.1.1 no such user"), std::string::npos);
  EXPECT_EQ(dsn->data.find("later@"), std::string::npos);  // no delay warning yet
  bool retried = false;
  for (const auto& t : txs)
    retried = retried || t.rcpts == std::vector<std::string>{"later@[127.0.0.1]"};
  EXPECT_TRUE(retried);

  const auto s = gw.engine->stats();
  EXPECT_EQ(s.delivered, 3u);
  EXPECT_EQ(s.bounced, 1u);
  EXPECT_EQ(s.deferred, 1u);
  EXPECT_EQ(s.expired, 0u);
  EXPECT_EQ(s.dsns, 1u);
  EXPECT_EQ(gw.outcome(metrics::Outcome::Delivery), 3u);
  EXPECT_EQ(gw.outcome(metrics::Outcome::Bounce), 1u);
  EXPECT_EQ(gw.outcome(metrics::Outcome::TransientFailure), 1u);
  EXPECT_EQ(gw.engine->metrics().dsns, 1u);

  const auto records = gw.log_records(5);
  const auto deliveries = with_event(records, "delivery");
  const auto bounces = with_event(records, "bounce");
  const auto deferrals = with_event(records, "transient_failure");
  ASSERT_EQ(deliveries.size(), 3u);
  ASSERT_EQ(bounces.size(), 1u);
  ASSERT_EQ(deferrals.size(), 1u);
  const auto& b = bounces[0];
  EXPECT_EQ(b["id"], id.hex());
  EXPECT_EQ(b["sender"], "sender@[127.0.0.1]");
  EXPECT_EQ(b["recipient"], "gone@[127.0.0.1]");
  EXPECT_EQ(b["destination"], kDest);
  EXPECT_EQ(b["mx"], kDest);
  EXPECT_EQ(b["code"], 550);
  EXPECT_EQ(b["enhanced"], "5.1.1");
  EXPECT_EQ(b["text"], "no such user");
  EXPECT_EQ(b["bounce_class"], "bad-mailbox");
  EXPECT_EQ(b["attempt"], 1);
  EXPECT_EQ(b["tls"], false);
  EXPECT_EQ(b["size"], body.size());
  EXPECT_EQ(b["meta"]["tenant"], "t1");
  EXPECT_EQ(deferrals[0]["recipient"], "later@[127.0.0.1]");
  EXPECT_EQ(deferrals[0]["bounce_class"], "transient");
  int later_attempt = 0;
  for (const auto& d : deliveries)
    if (d["recipient"] == "later@[127.0.0.1]") later_attempt = d["attempt"].get<int>();
  EXPECT_EQ(later_attempt, 2);

  // Everything is done: the message and the DSN are gone from the spool.
  ASSERT_TRUE(eventually([&] { return gw.store->read_dests(id).empty(); }));
  spool::Envelope env;
  EXPECT_FALSE(gw.store->read_envelope(id, env));
  bool anything_left = false;
  gw.store->for_each_message([&](const spool::MessageId&, const spool::Envelope&,
                                 const spool::Store::DestList&) { anything_left = true; },
                             [](std::string_view) {});
  EXPECT_FALSE(anything_left);
}

TEST(DeliveryEngine, TheNullSenderGetsNoDsnAndNextHopDsnMeansNoRelayedReport) {
  FakeSmtpServer remote({"8BITMIME", "DSN"});
  remote.script_rcpt("gone@[127.0.0.1]", {"550 5.1.1 no such user"});
  Gateway gw(remote.port());
  gw.send("", {{"gone@[127.0.0.1]"}}, "Subject: bounce\r\n\r\nx\r\n");
  gw.send("s@[127.0.0.1]", {{"ok@[127.0.0.1]", smtp::kNotifySuccess}}, "Subject: y\r\n\r\ny\r\n");
  ASSERT_TRUE(eventually([&] {
    const auto s = gw.engine->stats();
    return s.bounced == 1 && s.delivered == 1 && gw.idle();
  }));
  const auto records = gw.log_records(2);
  EXPECT_EQ(with_event(records, "bounce").size(), 1u);
  // NOTIFY went to the next hop, which reports the success itself.
  const auto cmds = remote.commands();
  EXPECT_NE(std::find(cmds.begin(), cmds.end(), "RCPT TO:<ok@[127.0.0.1]> NOTIFY=SUCCESS"),
            cmds.end());
  EXPECT_EQ(gw.engine->stats().dsns, 0u);
  EXPECT_EQ(from_null_sender(remote.transactions()), nullptr);
}

TEST(DeliveryEngine, ARefusedConnectionDefersTheDestinationWithoutCountingAnAttempt) {
  Gateway gw(closed_port(), [](policy::Config& c) { c.delivery.retry.first = 1h; });
  const auto id = gw.send("sender@origin.test", {{"a@[127.0.0.1]"}}, "Subject: z\r\n\r\nz\r\n");
  const auto records = gw.log_records(1);
  ASSERT_EQ(records.size(), 1u);
  const auto& r = records[0];
  EXPECT_EQ(r["event"], "transient_failure");
  EXPECT_EQ(r["destination"], kDest);
  EXPECT_EQ(r["bounce_class"], "routing");
  EXPECT_EQ(r["code"], 421);
  EXPECT_EQ(r["enhanced"], "4.4.1");
  EXPECT_FALSE(r.contains("recipient"));
  EXPECT_FALSE(r.contains("attempt"));
  ASSERT_TRUE(eventually([&] { return gw.outcome(metrics::Outcome::TransientFailure) == 1; }));
  EXPECT_EQ(gw.engine->stats().deferred, 0u);  // a destination, not a recipient
  spool::DestRecord rec;
  ASSERT_TRUE(gw.store->read_dest(id, kDest, rec));
  EXPECT_EQ(rec.attempts, 0u);
  EXPECT_EQ(rec.recipients[0].state, spool::RcptState::Pending);
}

TEST(DeliveryEngine, SmarthostAuthPerAccountAndARefusedLoginDefersWithoutThePassword) {
  FakeSmtpServer remote({"AUTH PLAIN LOGIN", "8BITMIME"});
  remote.accept_login("alice", "alice-pw", "535 5.7.8 bad credentials: {}");
  Gateway gw(remote.port(), [](policy::Config& c) { c.delivery.retry.first = 1h; });
  const auto at = "@[127.0.0.1]:" + std::to_string(remote.port());
  const std::string alice = "alice" + at, bob = "bob" + at;
  // plaintext: the fake server speaks no TLS.
  gw.send_to(alice, spool::RouteAuth{"alice", "alice-pw", true}, "s@origin.test",
             {{"a@partner.test"}}, "Subject: a\r\n\r\na\r\n");
  const auto bob_id = gw.send_to(bob, spool::RouteAuth{"bob", "bobs-secret-pw", true},
                                 "s@origin.test", {{"b@partner.test"}}, "Subject: b\r\n\r\nb\r\n");
  ASSERT_TRUE(remote.wait_transactions(1, kDeadline));
  ASSERT_TRUE(eventually([&] {
    for (const auto& r : gw.log_records(1))
      if (r.value("event", "") == "transient_failure") return true;
    return false;
  }));
  const auto txs = remote.transactions();
  ASSERT_EQ(txs.size(), 1u);
  EXPECT_EQ(txs[0].auth, "alice");
  EXPECT_EQ(txs[0].rcpts, std::vector<std::string>{"a@partner.test"});

  const auto records = gw.log_records(2);
  const auto deferred = with_event(records, "transient_failure");
  ASSERT_EQ(deferred.size(), 1u);
  EXPECT_EQ(deferred[0]["destination"], bob);
  EXPECT_EQ(deferred[0]["code"], 454);
  EXPECT_EQ(deferred[0]["enhanced"], "4.7.8");
  const std::string text = deferred[0]["text"];
  EXPECT_NE(text.find("smarthost authentication failed"), std::string::npos) << text;
  EXPECT_NE(text.find("535 5.7.8 bad credentials: ***"), std::string::npos) << text;
  EXPECT_TRUE(with_event(records, "bounce").empty());
  // Not a word of the password (nor of its base64 forms) in the log.
  std::ifstream in(gw.cfg.log.deliveries);
  const std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(whole.find("bobs-secret-pw"), std::string::npos);
  EXPECT_EQ(whole.find("Ym9icy1zZWNyZXQtcHc"), std::string::npos);  // base64("bobs-secret-pw")
  // Bob's message waits in the spool with its credentials.
  spool::DestRecord rec;
  ASSERT_TRUE(gw.store->read_dest(bob_id, bob, rec));
  EXPECT_EQ(rec.recipients[0].state, spool::RcptState::Pending);
  ASSERT_TRUE(rec.auth);
  EXPECT_EQ(rec.auth->user, "bob");
}

// A message that is in the spool but cannot be read (here: its envelope
// names two body chunks and the second is missing) stays queued and is
// retried with the backoff; once it reads, it is delivered. It used to be
// dropped from the queue until the next restart.
TEST(DeliveryEngine, AnUnreadableMessageIsRetriedNeverDropped) {
  FakeSmtpServer remote;
  Gateway gw(remote.port());
  const auto id = gw.ids.next();
  const std::string part1 = "Subject: chunks\r\n\r\nfirst half\r\n";
  const std::string part2 = "second half\r\n";
  spool::Envelope env;
  env.sender = "s@[127.0.0.1]";
  env.recipients.push_back({"a@[127.0.0.1]", 0, ""});
  env.size = part1.size() + part2.size();
  env.received_ms = static_cast<std::int64_t>(id.millis());
  env.body_chunks = 2;
  spool::DestRecord rec;
  rec.recipients.push_back({0, spool::RcptState::Pending, {}});
  rec.size = env.size;
  rec.next_attempt_ms = env.received_ms;
  {
    spool::WriteSet set(*gw.store);
    set.put_body_chunk(id, 0, part1);
    set.put_envelope(id, env);
    set.put_dest(id, kDest, rec);
    gw.commit(std::move(set));
  }
  gw.engine->enqueue(id, {{kDest, std::nullopt, std::nullopt}}, env.size);
  // Two failed loads: it was requeued after the first.
  ASSERT_TRUE(eventually([&] { return gw.reader->failed_reads() >= 2; }));
  EXPECT_EQ(remote.transactions().size(), 0u);
  {
    spool::WriteSet set(*gw.store);
    set.put_body_chunk(id, 1, part2);
    gw.commit(std::move(set));
  }
  ASSERT_TRUE(remote.wait_transactions(1, kDeadline));
  EXPECT_EQ(remote.transactions()[0].data, part1 + part2);
  ASSERT_TRUE(eventually([&] { return gw.engine->stats().delivered == 1 && gw.idle(); }));
}

TEST(DeliveryEngine, AnExpiredMessageBouncesWith447) {
  FakeSmtpServer remote;
  Gateway gw(remote.port(), [](policy::Config& c) { c.delivery.retry.max_age = 1h; });
  const auto old = spool::MessageId::make(
      static_cast<std::uint64_t>(spool::wall_clock_ms() - 2 * 3'600'000), 50, 99);
  gw.send("sender@[127.0.0.1]", {{"x@[127.0.0.1]"}}, "Subject: old\r\n\r\nold\r\n", old);
  ASSERT_TRUE(remote.wait_transactions(1, kDeadline));  // the DSN; the message never went out
  const auto txs = remote.transactions();
  ASSERT_EQ(txs.size(), 1u);
  ASSERT_NE(from_null_sender(txs), nullptr);
  EXPECT_NE(txs[0].data.find("Status: 4.4.7"), std::string::npos) << txs[0].data;
  const auto records = gw.log_records(2);
  const auto expired = with_event(records, "expiration");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]["code"], 451);
  EXPECT_EQ(expired[0]["enhanced"], "4.4.7");
  EXPECT_FALSE(expired[0].contains("mx"));  // no connection was used
  ASSERT_TRUE(eventually([&] { return gw.engine->stats().expired == 1; }));
  EXPECT_EQ(gw.outcome(metrics::Outcome::Expiration), 1u);
}

TEST(DeliveryEngine, AnAdminBounceFailsWaitingMessagesWithADsn) {
  FakeSmtpServer remote;
  Gateway gw(remote.port());
  std::string error;
  ASSERT_EQ(gw.engine->act(DeliveryEngine::Action::Suspend, kDest, 10s, error),
            DeliveryEngine::ActResult::Done)
      << error;
  // Kept in the spool (synced before act() returns): a restart reloads it.
  EXPECT_EQ(gw.store->read_suspensions(), std::vector<std::string>{kDest});
  const auto id = gw.send("sender@[127.0.0.1]", {{"a@[127.0.0.1]"}, {"b@[127.0.0.1]"}},
                          "Subject: held\r\n\r\nheld\r\n");
  ASSERT_TRUE(eventually([&] {
    auto items = gw.engine->queued_items(kDest, 10s);
    return items && items->size() == 1;
  }));
  EXPECT_EQ(gw.engine->bounce(kDest, nullptr, "spam run", 10s), 1u);
  const auto records = gw.log_records(2);
  const auto admin = with_event(records, "admin_bounce");
  ASSERT_EQ(admin.size(), 2u);
  EXPECT_EQ(admin[0]["code"], 550);
  EXPECT_EQ(admin[0]["text"], "message bounced by the administrator: spam run");
  ASSERT_TRUE(eventually([&] { return gw.outcome(metrics::Outcome::AdminBounce) == 2; }));
  EXPECT_EQ(gw.engine->stats().bounced, 2u);
  ASSERT_TRUE(eventually([&] { return gw.store->read_dests(id).empty(); }));
  // The DSN waits behind the suspension like any message, then goes out.
  ASSERT_TRUE(eventually([&] { return gw.engine->stats().dsns == 1; }));
  EXPECT_EQ(remote.transactions().size(), 0u);
  ASSERT_EQ(gw.engine->act(DeliveryEngine::Action::Resume, kDest, 10s, error),
            DeliveryEngine::ActResult::Done)
      << error;
  EXPECT_TRUE(gw.store->read_suspensions().empty());
  ASSERT_TRUE(remote.wait_transactions(1, kDeadline));
  const auto txs = remote.transactions();
  ASSERT_NE(from_null_sender(txs), nullptr);
  EXPECT_NE(txs[0].data.find("message bounced by the administrator"), std::string::npos);
}

// Issue 15: a body over SpoolReader::stream_above is sent chunk by chunk from
// the spool. Stores `chunks` as the message's body chunks (a null entry: that
// chunk is missing) and enqueues it for [127.0.0.1].
spool::MessageId store_chunked(Gateway& gw, const std::vector<const std::string*>& chunks) {
  const auto id = gw.ids.next();
  spool::Envelope env;
  env.sender = "s@[127.0.0.1]";
  env.recipients.push_back({"a@[127.0.0.1]", 0, ""});
  for (const auto* c : chunks) env.size += c ? c->size() : 100;
  env.received_ms = static_cast<std::int64_t>(id.millis());
  env.body_chunks = static_cast<std::uint32_t>(chunks.size());
  spool::DestRecord rec;
  rec.recipients.push_back({0, spool::RcptState::Pending, {}});
  rec.size = env.size;
  rec.next_attempt_ms = env.received_ms;
  spool::WriteSet set(*gw.store);
  for (std::uint32_t i = 0; i < chunks.size(); ++i)
    if (chunks[i]) set.put_body_chunk(id, i, *chunks[i]);
  set.put_envelope(id, env);
  set.put_dest(id, kDest, rec);
  gw.commit(std::move(set));
  gw.engine->enqueue(id, {{kDest, std::nullopt, std::nullopt}}, env.size);
  return id;
}

TEST(DeliveryEngine, ALargeBodyIsStreamedChunkByChunkByteExact) {
  FakeSmtpServer remote;
  Gateway gw(remote.port());
  gw.reader->set_stream_above(64);  // every body below is "large"
  // Dot-stuffing and CRLF state must carry across chunk boundaries: a line
  // starting with "." at a chunk's start, and a CRLF split between chunks.
  std::string c0 = "Subject: streamed\r\n\r\n";
  for (int i = 0; i < 2000; ++i) c0 += "line " + std::to_string(i) + " of the first chunk\r\n";
  const std::string c1 = ".a dot line at a chunk start\r\n..two dots\r\nends with CR\r";
  const std::string c2 = "\n.\r\nlast line\r\n";
  store_chunked(gw, {&c0, &c1, &c2});
  ASSERT_TRUE(remote.wait_transactions(1, kDeadline));
  EXPECT_TRUE(remote.transactions()[0].data == c0 + c1 + c2);  // (no 70 KB diff on failure)
  ASSERT_TRUE(eventually([&] { return gw.engine->stats().delivered == 1 && gw.idle(); }));
}

TEST(DeliveryEngine, AChunkUnreadableMidBodyDefersWithoutATruncatedMessage) {
  FakeSmtpServer remote;
  Gateway gw(remote.port());
  gw.reader->set_stream_above(64);
  std::string c0 = "Subject: half\r\n\r\n";
  for (int i = 0; i < 200; ++i) c0 += "first part line " + std::to_string(i) + "\r\n";
  const std::string c1 = "middle part\r\n", c2 = "last part\r\n";
  // The head (chunk 0) loads, so the transaction starts; chunk 1 is missing.
  const auto id = store_chunked(gw, {&c0, nullptr, &c2});
  ASSERT_TRUE(eventually([&] { return gw.reader->failed_reads() >= 2; }));
  EXPECT_GE(remote.connections(), 2u);          // retried, on a new connection each time
  EXPECT_EQ(remote.transactions().size(), 0u);  // no end of data was ever sent
  const auto deferrals = with_event(gw.log_records(1), "transient_failure");
  ASSERT_FALSE(deferrals.empty());
  EXPECT_EQ(deferrals[0]["code"], 451);
  EXPECT_EQ(deferrals[0]["enhanced"], "4.3.0");
  {
    spool::WriteSet set(*gw.store);
    set.put_body_chunk(id, 1, c1);
    gw.commit(std::move(set));
  }
  ASSERT_TRUE(remote.wait_transactions(1, kDeadline));
  EXPECT_EQ(remote.transactions()[0].data, c0 + c1 + c2);
  ASSERT_TRUE(eventually([&] { return gw.engine->stats().delivered == 1 && gw.idle(); }));
}

}  // namespace
}  // namespace mailgate::delivery
