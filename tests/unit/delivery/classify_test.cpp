// Tests of delivery/classify: the pure rules that turn an attempt's replies
// into events, recipient states and DSN reports (RFC 3461 NOTIFY, RFC 3464
// actions, delay warnings, expiry, the null sender, admin bounces).
#include "delivery/classify.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "smtp/params.hpp"

namespace mailgate::delivery {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t kReceived = 1'800'000'000'000;  // ms since the epoch
constexpr std::uint8_t kNever = smtp::kNotifyNever;
constexpr std::uint8_t kSuccess = smtp::kNotifySuccess;
constexpr std::uint8_t kFailure = smtp::kNotifyFailure;
constexpr std::uint8_t kDelay = smtp::kNotifyDelay;

const smtp::Reply k250{250, "2.0.0", "ok"};
const smtp::Reply k451{451, "4.2.0", "try later\nplease"};
const smtp::Reply k550{550, "5.1.1", "no such user"};

// One attempt's inputs, with defaults a test overrides field by field.
struct Attempt {
  spool::Envelope env;
  spool::DestRecord dest;
  std::vector<RecipientReply> replies;
  AttemptContext at;
  queue::RetryPolicy retry{1min, 1h, 24h};
  std::chrono::milliseconds delay_warning{4h};
  smtp::BounceClassifier classifier;
  FailedBy failed_by = FailedBy::Delivery;

  Attempt() {
    env.sender = "sender@origin.test";
    at.id = spool::MessageId::make(kReceived, 1, 7);
    at.destination = "dest.test";
    at.mx = "mx1.dest.test";
    at.now_ms = kReceived + 10'000;
  }
  // Adds recipient `address` (NOTIFY bits `notify`) with reply `r`.
  Attempt& rcpt(const std::string& address, smtp::Reply r, std::uint8_t notify = 0) {
    const auto i = static_cast<std::uint32_t>(env.recipients.size());
    env.recipients.push_back({address, notify, "rfc822;" + address});
    dest.recipients.push_back({i, spool::RcptState::Pending, {}});
    replies.push_back({i, std::move(r)});
    return *this;
  }
  Attempt& age(std::chrono::milliseconds a) {
    at.now_ms = kReceived + a.count();
    return *this;
  }
  DeliveryPlan run() const {
    return classify({.envelope = env,
                     .dest = dest,
                     .replies = replies,
                     .attempt = at,
                     .retry = retry,
                     .delay_warning = delay_warning,
                     .classifier = classifier,
                     .failed_by = failed_by});
  }
};

std::vector<DeliveryEvent> events(const DeliveryPlan& p) {
  std::vector<DeliveryEvent> out;
  for (const auto& o : p.outcomes) out.push_back(o.event);
  return out;
}

std::vector<dsn::Action> actions(const DeliveryPlan& p) {
  std::vector<dsn::Action> out;
  for (const auto& r : p.reports) out.push_back(r.action);
  return out;
}

using E = DeliveryEvent;
using A = dsn::Action;
using S = spool::RcptState;

TEST(DeliveryEvent, NamesAndOutcomesAreTheLogsAndTheMetricsOnes) {
  const std::pair<E, const char*> expected[] = {{E::Delivery, "delivery"},
                                                {E::TransientFailure, "transient_failure"},
                                                {E::Bounce, "bounce"},
                                                {E::Expiration, "expiration"},
                                                {E::AdminBounce, "admin_bounce"}};
  static_assert(std::size(expected) == kDeliveryEventCount);
  for (const auto& [e, name] : expected) {
    EXPECT_STREQ(event_name(e), name);
    // One vocabulary: the metric's result label is the log's event name.
    EXPECT_EQ(metrics::outcome_name(outcome_of(e)), name);
    metrics::Outcome parsed{};
    ASSERT_TRUE(metrics::parse_outcome(name, parsed));
    EXPECT_EQ(parsed, outcome_of(e));
  }
}

TEST(Classify, EachReplyClassDecidesItsRecipientsEventAndState) {
  Attempt a;
  a.rcpt("ok@dest.test", k250).rcpt("later@dest.test", k451).rcpt("gone@dest.test", k550);
  a.dest.attempts = 2;
  const auto p = a.run();
  EXPECT_EQ(events(p), (std::vector{E::Delivery, E::TransientFailure, E::Bounce}));
  ASSERT_EQ(p.dest.recipients.size(), 3u);
  EXPECT_EQ(p.dest.recipients[0].state, S::Delivered);
  EXPECT_EQ(p.dest.recipients[1].state, S::Pending);
  EXPECT_EQ(p.dest.recipients[2].state, S::Failed);
  // The stored last reply is the reply on one line.
  EXPECT_EQ(p.dest.recipients[0].last_reply, "250 2.0.0 ok");
  EXPECT_EQ(p.dest.recipients[1].last_reply, "451 4.2.0 try later please");
  EXPECT_EQ(p.dest.recipients[2].last_reply, "550 5.1.1 no such user");
  EXPECT_TRUE(p.pending);
  EXPECT_EQ(p.attempt, 3u);
  // Attempts and the next attempt are not classify's to set.
  EXPECT_EQ(p.dest.attempts, 2u);
  EXPECT_EQ(p.dest.next_attempt_ms, 0);
  EXPECT_EQ(p.outcomes[0].bounce_class, smtp::BounceClass::None);
  EXPECT_EQ(p.outcomes[1].bounce_class, smtp::BounceClass::Transient);
  EXPECT_EQ(p.outcomes[2].bounce_class, smtp::BounceClass::BadMailbox);
  EXPECT_EQ(p.outcomes[1].reply.text, "try later\nplease");  // as received; the log flattens it
  // Unspecified NOTIFY: failures only (delays only past delay_warning).
  ASSERT_EQ(actions(p), (std::vector{A::Failed}));
  const auto& rep = p.reports[0];
  EXPECT_EQ(rep.final_recipient, "gone@dest.test");
  EXPECT_EQ(rep.original_recipient, "rfc822;gone@dest.test");
  EXPECT_EQ(rep.status, "5.1.1");
  EXPECT_EQ(rep.remote_mta, "mx1.dest.test");
  EXPECT_EQ(rep.diagnostic, "550 5.1.1 no such user");
  EXPECT_EQ(rep.last_attempt_ms, a.at.now_ms);
  EXPECT_EQ(rep.will_retry_until_ms, 0);
}

TEST(Classify, NothingPendingClosesTheDestination) {
  Attempt a;
  a.rcpt("ok@dest.test", k250).rcpt("gone@dest.test", k550);
  EXPECT_FALSE(a.run().pending);
  Attempt none;  // no pending recipient left to try
  const auto p = none.run();
  EXPECT_FALSE(p.pending);
  EXPECT_TRUE(p.outcomes.empty());
  EXPECT_TRUE(p.reports.empty());
}

TEST(Classify, OnlyTheRepliedRecipientsChange) {
  Attempt a;
  a.rcpt("a@dest.test", k250).rcpt("b@dest.test", k250);
  a.dest.recipients[1].state = S::Delivered;  // delivered in an earlier attempt
  a.dest.recipients[1].last_reply = "250 earlier";
  a.replies.pop_back();
  const auto p = a.run();
  ASSERT_EQ(p.outcomes.size(), 1u);
  EXPECT_EQ(p.dest.recipients[1].last_reply, "250 earlier");
  EXPECT_EQ(p.dest.recipients[0].state, S::Delivered);
}

TEST(Classify, A4xxPastMaxAgeExpiresWith447) {
  Attempt a;
  a.rcpt("later@dest.test", k451).rcpt("gone@dest.test", k550);
  a.age(24h);  // max_age reached
  const auto p = a.run();
  EXPECT_EQ(events(p), (std::vector{E::Expiration, E::Bounce}));
  EXPECT_EQ(p.dest.recipients[0].state, S::Failed);
  EXPECT_FALSE(p.pending);
  ASSERT_EQ(actions(p), (std::vector{A::Failed, A::Failed}));
  EXPECT_EQ(p.reports[0].status, "4.4.7");  // not the reply's 4.2.0
  EXPECT_EQ(p.reports[0].diagnostic, "451 4.2.0 try later please");
  EXPECT_EQ(p.reports[1].status, "5.1.1");
  // Just before max_age the same reply is still a transient failure.
  a.age(24h - 1ms);
  EXPECT_EQ(events(a.run()), (std::vector{E::TransientFailure, E::Bounce}));
}

TEST(Classify, TheExpiryReplyItselfIsAnExpiration) {
  // The queue expires a message with 451 4.4.7 once it is past max_age.
  Attempt a;
  a.rcpt("x@dest.test", {451, "4.4.7", "message expired: delivery time limit reached"});
  a.age(25h);
  const auto p = a.run();
  EXPECT_EQ(events(p), (std::vector{E::Expiration}));
  ASSERT_EQ(p.reports.size(), 1u);
  EXPECT_EQ(p.reports[0].status, "4.4.7");
  // A 5xx carrying 4.4.7 (a remote's own expiry) counts as an expiration too.
  Attempt b;
  b.rcpt("x@dest.test", {554, "4.4.7", "timed out"});
  EXPECT_EQ(events(b.run()), (std::vector{E::Expiration}));
}

TEST(Classify, AdminBounceIsItsOwnEvent) {
  Attempt a;
  a.rcpt("a@dest.test", {550, "5.0.0", "message bounced by the administrator"}, kFailure)
      .rcpt("b@dest.test", {550, "5.0.0", "message bounced by the administrator"}, kNever);
  a.failed_by = FailedBy::Administrator;
  const auto p = a.run();
  EXPECT_EQ(events(p), (std::vector{E::AdminBounce, E::AdminBounce}));
  EXPECT_FALSE(p.pending);
  ASSERT_EQ(actions(p), (std::vector{A::Failed}));  // b asked for no DSN
  EXPECT_EQ(p.reports[0].final_recipient, "a@dest.test");
  EXPECT_EQ(p.reports[0].status, "5.0.0");
  EXPECT_EQ(p.reports[0].remote_mta, "mx1.dest.test");
}

TEST(Classify, AdminBounceOfAnExpiredMessageIsStillAnAdminBounce) {
  Attempt a;
  a.rcpt("a@dest.test", {451, "4.4.7", "expired"});
  a.failed_by = FailedBy::Administrator;
  a.age(48h);
  EXPECT_EQ(events(a.run()), (std::vector{E::AdminBounce}));
}

// RFC 3461 NOTIFY against every kind of result, for a next hop without DSN.
TEST(Classify, NotifyDecidesWhichResultsAreReported) {
  struct Row {
    std::uint8_t notify;
    smtp::Reply reply;
    std::vector<A> expected;
  };
  const Row rows[] = {
      {0, k250, {}},
      {0, k550, {A::Failed}},
      {0, k451, {}},  // delays only past delay_warning
      {kNever, k250, {}},
      {kNever, k550, {}},
      {kSuccess, k250, {A::Relayed}},
      {kSuccess, k550, {}},
      {kFailure, k250, {}},
      {kFailure, k550, {A::Failed}},
      {kDelay, k550, {}},
      {kDelay, k250, {}},
      {kSuccess | kFailure, k250, {A::Relayed}},
      {kSuccess | kFailure, k550, {A::Failed}},
      {kSuccess | kFailure | kDelay, k451, {}},
  };
  for (const auto& row : rows) {
    Attempt a;
    a.rcpt("r@dest.test", row.reply, row.notify);
    EXPECT_EQ(actions(a.run()), row.expected)
        << "notify=" << int(row.notify) << " reply=" << row.reply.code;
  }
}

TEST(Classify, DeliveredToADsnSpeakingNextHopIsReportedThereNotHere) {
  Attempt a;
  a.rcpt("ok@dest.test", k250, kSuccess).rcpt("gone@dest.test", k550, kFailure);
  a.at.next_hop_dsn = true;
  auto p = a.run();
  // Failures are still ours to report: the next hop refused them.
  EXPECT_EQ(actions(p), (std::vector{A::Failed}));
  EXPECT_EQ(events(p), (std::vector{E::Delivery, E::Bounce}));
  a.at.next_hop_dsn = false;
  p = a.run();
  ASSERT_EQ(actions(p), (std::vector{A::Relayed, A::Failed}));
  EXPECT_EQ(p.reports[0].status, "2.0.0");
  EXPECT_EQ(p.reports[0].diagnostic, "250 2.0.0 ok");
}

TEST(Classify, OneDelayReportPerRecipientOncePastDelayWarning) {
  Attempt a;
  a.rcpt("later@dest.test", k451, kDelay)
      .rcpt("quiet@dest.test", k451, kFailure)  // asked for failures only
      .rcpt("dflt@dest.test", k451)             // unspecified: delays too
      .rcpt("ok@dest.test", k250, kDelay);
  a.age(4h - 1ms);
  auto p = a.run();
  EXPECT_TRUE(p.reports.empty());
  EXPECT_FALSE(p.dest.delay_notified);

  a.age(4h);
  p = a.run();
  ASSERT_EQ(actions(p), (std::vector{A::Delayed, A::Delayed}));
  EXPECT_EQ(p.reports[0].final_recipient, "later@dest.test");
  EXPECT_EQ(p.reports[1].final_recipient, "dflt@dest.test");
  EXPECT_EQ(p.reports[0].status, "4.2.0");
  EXPECT_EQ(p.reports[0].will_retry_until_ms, kReceived + std::chrono::milliseconds(24h).count());
  EXPECT_EQ(p.reports[0].diagnostic, "451 4.2.0 try later please");
  EXPECT_TRUE(p.dest.delay_notified);

  // The next attempt starts from the stored record: no second warning.
  a.dest = p.dest;
  a.age(5h);
  p = a.run();
  EXPECT_TRUE(p.reports.empty());
  EXPECT_TRUE(p.dest.delay_notified);
}

TEST(Classify, NoDelayWarningWhenDisabledOrNothingIsPending) {
  Attempt a;
  a.rcpt("later@dest.test", k451, kDelay);
  a.delay_warning = 0ms;
  a.age(10h);
  auto p = a.run();
  EXPECT_TRUE(p.reports.empty());
  EXPECT_FALSE(p.dest.delay_notified);

  Attempt b;  // old enough, but everything is done
  b.rcpt("ok@dest.test", k250, kDelay).rcpt("gone@dest.test", k550, kDelay);
  b.age(10h);
  p = b.run();
  EXPECT_TRUE(p.reports.empty());  // kDelay alone asks for no failure report
  EXPECT_FALSE(p.dest.delay_notified);
}

TEST(Classify, DelayAndFailureReportsGoInOneDsn) {
  Attempt a;
  a.rcpt("later@dest.test", k451).rcpt("gone@dest.test", k550);
  a.age(5h);
  const auto p = a.run();
  // Failures first (in reply order), then the delay warnings.
  ASSERT_EQ(actions(p), (std::vector{A::Failed, A::Delayed}));
  EXPECT_EQ(p.reports[0].final_recipient, "gone@dest.test");
  EXPECT_EQ(p.reports[1].final_recipient, "later@dest.test");
}

TEST(Classify, TheNullSenderNeverGetsAReport) {
  for (const char* sender : {"", "<>"}) {
    Attempt a;
    a.env.sender = sender;
    a.rcpt("gone@dest.test", k550, kFailure)
        .rcpt("ok@dest.test", k250, kSuccess)
        .rcpt("later@dest.test", k451, kDelay);
    a.age(5h);
    const auto p = a.run();
    EXPECT_TRUE(p.reports.empty()) << sender;
    EXPECT_EQ(events(p), (std::vector{E::Bounce, E::Delivery, E::TransientFailure}));
    // The warning is still over for this record, as for any sender.
    EXPECT_TRUE(p.dest.delay_notified);
  }
}

TEST(Classify, NoConnectionMeansNoRemoteMta) {
  Attempt a;
  a.at.mx.clear();
  a.rcpt("x@dest.test", {550, "5.4.4", "no address for any MX host of dest.test"});
  const auto p = a.run();
  ASSERT_EQ(p.reports.size(), 1u);
  EXPECT_EQ(p.reports[0].remote_mta, "");
  EXPECT_EQ(p.outcomes[0].bounce_class, smtp::BounceClass::BadDomain);
}

TEST(Classify, OperatorBounceRulesClassifyFailures) {
  Attempt a;
  a.classifier.add_rule({500, 599, "", "blocked by example rbl", smtp::BounceClass::Content});
  a.rcpt("x@dest.test", {554, "5.7.1", "Blocked by Example RBL"});
  EXPECT_EQ(a.run().outcomes[0].bounce_class, smtp::BounceClass::Content);
}

TEST(Classify, IsDeterministic) {
  Attempt a;
  a.rcpt("later@dest.test", k451).rcpt("gone@dest.test", k550).rcpt("ok@dest.test", k250);
  a.age(5h);
  const auto p1 = a.run();
  const auto p2 = a.run();
  ASSERT_EQ(p1.outcomes.size(), p2.outcomes.size());
  for (std::size_t i = 0; i < p1.outcomes.size(); ++i) {
    EXPECT_EQ(p1.outcomes[i].event, p2.outcomes[i].event);
    EXPECT_EQ(p1.outcomes[i].index, p2.outcomes[i].index);
  }
  EXPECT_EQ(spool::encode(p1.dest), spool::encode(p2.dest));
  EXPECT_EQ(actions(p1), actions(p2));
}

TEST(ReplyText, OneLineAndReplyLine) {
  const smtp::Reply r{421, "4.4.2", "a\r\nb\nc"};
  EXPECT_EQ(one_line(r), "a  b c");
  EXPECT_EQ(reply_line(r), "421 4.4.2 a  b c");
  EXPECT_EQ(reply_line({250, "", "ok"}), "250  ok");
}

}  // namespace
}  // namespace mailgate::delivery
