// Tests of metrics/outcome_counters: outcome names are the delivery log's
// event names (and parse back); DestinationLabels keeps a label only for the
// configured destinations (lower-cased) and folds every other one into
// "other"; OutcomeCounters counts per outcome and label, folding an
// out-of-range label into the last one ("other").
#include "metrics/outcome_counters.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailgate::metrics {
namespace {

constexpr Outcome kAll[] = {Outcome::Delivery,   Outcome::TransientFailure, Outcome::Bounce,
                            Outcome::Expiration, Outcome::AdminBounce,      Outcome::Discard};

TEST(Outcome, NamesAreTheDeliveryLogEvents) {
  EXPECT_EQ(outcome_name(Outcome::Delivery), "delivery");
  EXPECT_EQ(outcome_name(Outcome::TransientFailure), "transient_failure");
  EXPECT_EQ(outcome_name(Outcome::Bounce), "bounce");
  EXPECT_EQ(outcome_name(Outcome::Expiration), "expiration");
  EXPECT_EQ(outcome_name(Outcome::AdminBounce), "admin_bounce");
  EXPECT_EQ(outcome_name(Outcome::Discard), "discard");
  EXPECT_EQ(std::size(kAll), kOutcomeCount);
}

TEST(Outcome, ParseRoundTripsAndRefusesOtherEvents) {
  for (Outcome o : kAll) {
    Outcome parsed = o == Outcome::Delivery ? Outcome::Discard : Outcome::Delivery;
    ASSERT_TRUE(parse_outcome(outcome_name(o), parsed)) << outcome_name(o);
    EXPECT_EQ(parsed, o);
  }
  Outcome untouched = Outcome::Bounce;
  for (const char* event : {"reception", "rejection", "", "Delivery", "delivery ", "bounces"}) {
    EXPECT_FALSE(parse_outcome(event, untouched)) << event;
    EXPECT_EQ(untouched, Outcome::Bounce);
  }
}

TEST(DestinationLabels, KeepsConfiguredDestinationsAndFoldsTheRestIntoOther) {
  DestinationLabels labels({"gmail.com", "outlook.com"});
  ASSERT_EQ(labels.size(), 3u);
  EXPECT_EQ(labels.index("gmail.com"), 0u);
  EXPECT_EQ(labels.index("outlook.com"), 1u);
  EXPECT_EQ(labels.index("example.com"), 2u);
  EXPECT_EQ(labels.index(""), 2u);
  EXPECT_EQ(labels.index("mail.gmail.com"), 2u);  // exact names, not suffixes
  EXPECT_EQ(labels.index("[10.0.0.1]:25"), 2u);
  EXPECT_EQ(labels.name(0), "gmail.com");
  EXPECT_EQ(labels.name(1), "outlook.com");
  EXPECT_EQ(labels.name(2), "other");
  EXPECT_EQ(labels.name(99), "other");
}

TEST(DestinationLabels, ConfiguredNamesAreLowerCased) {
  DestinationLabels labels({"GMail.COM"});
  EXPECT_EQ(labels.name(0), "gmail.com");
  EXPECT_EQ(labels.index("gmail.com"), 0u);
}

TEST(DestinationLabels, NoneConfiguredMeansEverythingIsOther) {
  DestinationLabels labels({});
  ASSERT_EQ(labels.size(), 1u);
  EXPECT_EQ(labels.index("gmail.com"), 0u);
  EXPECT_EQ(labels.name(0), "other");
}

TEST(OutcomeCounters, CountsPerOutcomeAndLabel) {
  DestinationLabels labels({"gmail.com", "outlook.com"});
  OutcomeCounters c(labels.size());
  ASSERT_EQ(c.labels(), 3u);
  for (Outcome o : kAll)
    for (std::size_t l = 0; l < c.labels(); ++l) EXPECT_EQ(c.get(o, l), 0u);

  c.add(Outcome::Delivery, labels.index("gmail.com"));
  c.add(Outcome::Delivery, labels.index("gmail.com"));
  c.add(Outcome::Bounce, labels.index("outlook.com"), 5);
  c.add(Outcome::Delivery, labels.index("example.com"));
  c.add(Outcome::Delivery, labels.index("example.net"));
  c.add(Outcome::TransientFailure, labels.index("example.org"), 3);

  EXPECT_EQ(c.get(Outcome::Delivery, 0), 2u);
  EXPECT_EQ(c.get(Outcome::Bounce, 1), 5u);
  EXPECT_EQ(c.get(Outcome::Delivery, 2), 2u);  // both unknown destinations: "other"
  EXPECT_EQ(c.get(Outcome::TransientFailure, 2), 3u);
  // Nothing leaked into other cells.
  std::uint64_t total = 0;
  for (Outcome o : kAll)
    for (std::size_t l = 0; l < c.labels(); ++l) total += c.get(o, l);
  EXPECT_EQ(total, 2u + 5u + 2u + 3u);
}

TEST(OutcomeCounters, OutOfRangeLabelFoldsIntoTheLast) {
  OutcomeCounters c(2);
  c.add(Outcome::Discard, 7);
  c.add(Outcome::Discard, 2);
  EXPECT_EQ(c.get(Outcome::Discard, 1), 2u);
  EXPECT_EQ(c.get(Outcome::Discard, 0), 0u);
}

}  // namespace
}  // namespace mailgate::metrics
