// Tests of delivery/notify: the delivery log records built from a plan (event
// names from the typed event, at the edge), the worker's counters and
// metrics, the DSN hand-off, and the connection-level deferral record.
#include "delivery/notify.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailgate::delivery {
namespace {

constexpr std::int64_t kReceived = 1'800'000'000'000;

struct Fixture {
  spool::Envelope env;
  AttemptContext at;
  DeliveryPlan plan;
  eventlog::DeliveryLog log{"", 1};  // no file: records are counted
  metrics::DestinationLabels labels{{"dest.test"}};
  DeliveryCounters counters{labels.size()};
  std::vector<DsnMessage> handed;
  Listeners to{log, 0, labels, counters, [this](DsnMessage&& m) { handed.push_back(m); }};

  Fixture() {
    env.sender = "s@origin.test";
    env.size = 1234;
    env.meta = {{"tenant", "t1"}};
    at.id = spool::MessageId::make(kReceived, 1, 2);
    at.destination = "dest.test";
    at.mx = "mx.dest.test";
    at.tls = true;
    at.now_ms = kReceived + 3000;
    plan.attempt = 4;
    const std::pair<DeliveryEvent, smtp::Reply> rows[] = {
        {DeliveryEvent::Delivery, {250, "2.0.0", "ok"}},
        {DeliveryEvent::TransientFailure, {451, "4.2.0", "later\nreally"}},
        {DeliveryEvent::Bounce, {550, "5.1.1", "unknown"}},
        {DeliveryEvent::Expiration, {451, "4.4.7", "expired"}},
        {DeliveryEvent::AdminBounce, {550, "5.0.0", "admin"}},
    };
    for (const auto& [event, reply] : rows) {
      const auto i = static_cast<std::uint32_t>(env.recipients.size());
      // Spelled out: GCC 12's -Wrestrict misfires on "lit" + std::string.
      std::string address("r");
      address.append(std::to_string(i)).append("@dest.test");
      env.recipients.push_back({address, 0, ""});
      plan.outcomes.push_back(
          {i, event, reply,
           event == DeliveryEvent::Delivery ? smtp::BounceClass::None : smtp::BounceClass::Other});
    }
    log.start();
  }
  std::uint64_t outcome(metrics::Outcome o) { return counters.outcomes.get(o, 0); }
};

TEST(Notify, LogRecordsCarryTheAttemptAndTheEventNames) {
  Fixture f;
  const auto records = log_records(f.plan, f.env, f.at);
  ASSERT_EQ(records.size(), 5u);
  const char* names[] = {"delivery", "transient_failure", "bounce", "expiration", "admin_bounce"};
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    EXPECT_STREQ(r.event, names[i]);
    EXPECT_EQ(r.time_ms, f.at.now_ms);
    EXPECT_EQ(r.id, f.at.id.hex());
    EXPECT_EQ(r.sender, "s@origin.test");
    EXPECT_EQ(r.recipient, f.env.recipients[i].address);
    EXPECT_EQ(r.destination, "dest.test");
    EXPECT_EQ(r.mx, "mx.dest.test");
    EXPECT_EQ(r.attempt, 4u);
    EXPECT_TRUE(r.tls);
    EXPECT_EQ(r.size, 1234u);
    EXPECT_EQ(r.meta, f.env.meta);
  }
  EXPECT_EQ(records[0].bounce_class, "");
  EXPECT_EQ(records[2].bounce_class, "other");
  EXPECT_EQ(records[1].text, "later really");
  EXPECT_EQ(records[2].code, 550);
  EXPECT_EQ(records[2].enhanced, "5.1.1");
}

TEST(Notify, PublishLogsCountsAndHandsTheDsnOn) {
  Fixture f;
  DsnMessage dsn;
  dsn.id = spool::MessageId::make(kReceived, 9, 1);
  dsn.body = "the dsn";
  publish(f.plan, f.env, f.at, dsn, f.to);
  f.log.stop();  // writes everything queued
  for (const char* e : {"delivery", "transient_failure", "bounce", "expiration", "admin_bounce"})
    EXPECT_EQ(f.log.count(e), 1u) << e;
  EXPECT_EQ(f.counters.delivered.load(), 1u);
  EXPECT_EQ(f.counters.deferred.load(), 1u);
  EXPECT_EQ(f.counters.bounced.load(), 2u);  // bounce and admin_bounce
  EXPECT_EQ(f.counters.expired.load(), 1u);
  EXPECT_EQ(f.counters.dsns.load(), 1u);
  for (auto o :
       {metrics::Outcome::Delivery, metrics::Outcome::TransientFailure, metrics::Outcome::Bounce,
        metrics::Outcome::Expiration, metrics::Outcome::AdminBounce})
    EXPECT_EQ(f.outcome(o), 1u);
  EXPECT_EQ(f.outcome(metrics::Outcome::Discard), 0u);
  metrics::HistogramSnapshot delay;
  f.counters.queue_delay_seconds.add_to(delay);
  EXPECT_EQ(delay.count, 4u);  // final outcomes only
  ASSERT_EQ(f.handed.size(), 1u);
  EXPECT_EQ(f.handed[0].id, dsn.id);
  EXPECT_EQ(f.handed[0].body, "the dsn");
}

TEST(Notify, NoDsnNoHandOff) {
  Fixture f;
  publish(f.plan, f.env, f.at, std::nullopt, f.to);
  f.log.stop();
  EXPECT_TRUE(f.handed.empty());
  EXPECT_EQ(f.counters.dsns.load(), 0u);
}

TEST(Notify, AConnectionLevelDeferralIsOneRoutingRecordForTheDestination) {
  const auto r =
      deferral_record("other.test", {421, "4.4.1", "cannot connect\r\nto x"}, TlsFailure::None, 77);
  EXPECT_STREQ(r.event, "transient_failure");
  EXPECT_EQ(r.time_ms, 77);
  EXPECT_EQ(r.destination, "other.test");
  EXPECT_EQ(r.code, 421);
  EXPECT_EQ(r.enhanced, "4.4.1");
  EXPECT_EQ(r.text, "cannot connect  to x");
  EXPECT_EQ(r.bounce_class, "routing");
  EXPECT_EQ(r.recipient, "");
  EXPECT_EQ(r.attempt, 0u);
  EXPECT_EQ(r.id, "");
  EXPECT_EQ(r.tls_error, "");
  EXPECT_EQ(
      deferral_record("x.test", {421, "4.7.5", "no"}, TlsFailure::CertificateExpired, 1).tls_error,
      "certificate-expired");

  Fixture f;
  publish_deferral("other.test", {421, "4.4.1", "cannot connect\r\nto x"}, TlsFailure::None,
                   kReceived, f.to);
  f.log.stop();
  EXPECT_EQ(f.log.count("transient_failure"), 1u);
  // Counted under the destination's label ("other" here), not as a recipient.
  EXPECT_EQ(f.counters.outcomes.get(metrics::Outcome::TransientFailure, 1), 1u);
  EXPECT_EQ(f.counters.deferred.load(), 0u);
}

}  // namespace
}  // namespace mailgate::delivery

namespace mailgate::delivery {
namespace {

// metrics.tenants: a listed tenant counts under its own label (compared in
// lower case), any other under "other"; the log records carry the tenant.
TEST(Notify, TenantOutcomesAreCountedByAllowListedLabel) {
  Fixture f;
  metrics::DestinationLabels tenants{{"T1"}};
  DeliveryCounters counters{f.labels.size(), tenants.size()};
  Listeners to{f.log, 0, f.labels, counters, [](DsnMessage&&) {}};
  to.tenant_labels = &tenants;
  publish(f.plan, f.env, f.at, std::nullopt, to);
  EXPECT_EQ(counters.tenant_outcomes.get(metrics::Outcome::Delivery, 0), 1u);
  EXPECT_EQ(counters.tenant_outcomes.get(metrics::Outcome::Bounce, 0), 1u);
  EXPECT_EQ(counters.tenant_outcomes.get(metrics::Outcome::Delivery, 1), 0u);
  f.env.meta = {{"tenant", "unlisted"}};
  publish(f.plan, f.env, f.at, std::nullopt, to);
  EXPECT_EQ(counters.tenant_outcomes.get(metrics::Outcome::Delivery, 1), 1u);
  f.env.meta = {};  // no tenant: not counted per tenant
  publish(f.plan, f.env, f.at, std::nullopt, to);
  EXPECT_EQ(counters.tenant_outcomes.get(metrics::Outcome::Delivery, 0) +
                counters.tenant_outcomes.get(metrics::Outcome::Delivery, 1),
            2u);
  f.env.meta = {{"tenant", "t1"}, {"campaign", "c"}};
  const auto records = log_records(f.plan, f.env, f.at);
  const auto line = eventlog::to_json(records[0]);
  EXPECT_NE(line.find("\"tenant\":\"t1\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"campaign\":\"c\""), std::string::npos) << line;
}

}  // namespace
}  // namespace mailgate::delivery
