// Who gets a DSN: the RFC 3461 NOTIFY decision table, never a bounce to the
// null sender, and the envelope → DsnInput mapping.
#include <gtest/gtest.h>

#include "dsn/dsn.hpp"

namespace mailgate::dsn {
namespace {

using smtp::kNotifyDelay;
using smtp::kNotifyFailure;
using smtp::kNotifyNever;
using smtp::kNotifySuccess;
using smtp::kNotifyUnspecified;

TEST(WantsReport, DecisionTable) {
  struct Row {
    std::uint8_t notify;
    bool failed, delayed, delivered, relayed;
  } rows[] = {
      {kNotifyUnspecified, true, true, false, false},
      {kNotifyNever, false, false, false, false},
      {kNotifySuccess, false, false, true, true},
      {kNotifyFailure, true, false, false, false},
      {kNotifyDelay, false, true, false, false},
      {kNotifySuccess | kNotifyFailure, true, false, true, true},
      {kNotifyFailure | kNotifyDelay, true, true, false, false},
      {kNotifySuccess | kNotifyDelay, false, true, true, true},
      {kNotifySuccess | kNotifyFailure | kNotifyDelay, true, true, true, true},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(static_cast<int>(r.notify));
    EXPECT_EQ(wants_report(r.notify, Action::Failed), r.failed);
    EXPECT_EQ(wants_report(r.notify, Action::Delayed), r.delayed);
    EXPECT_EQ(wants_report(r.notify, Action::Delivered), r.delivered);
    EXPECT_EQ(wants_report(r.notify, Action::Relayed), r.relayed);
  }
}

TEST(WantsReport, NeverWinsOverAnyOtherBit) {
  // The parser never produces NEVER with other bits; a corrupt value must still
  // not produce a report.
  for (Action a : {Action::Failed, Action::Delayed, Action::Delivered, Action::Relayed}) {
    EXPECT_FALSE(wants_report(kNotifyNever | kNotifySuccess | kNotifyFailure | kNotifyDelay, a));
  }
}

TEST(MaySendDsn, NeverBounceABounce) {
  EXPECT_FALSE(may_send_dsn(""));
  EXPECT_FALSE(may_send_dsn("<>"));
  EXPECT_TRUE(may_send_dsn("sender@example.com"));
  EXPECT_TRUE(may_send_dsn("MAILER-DAEMON@example.com"));  // only the null path is special
}

TEST(Build, NothingForTheNullSenderOrNoRecipients) {
  DsnInput in;
  in.reporting_mta = "gw.example.com";
  in.dsn_id = "00ff";
  RecipientReport r;
  r.final_recipient = "rcpt@example.org";
  r.status = "5.1.1";
  in.recipients.push_back(r);
  in.original_sender = "";
  EXPECT_EQ(build(in), "");
  in.original_sender = "<>";
  EXPECT_EQ(build(in), "");
  in.original_sender = "s@example.com";
  EXPECT_NE(build(in), "");
  in.recipients.clear();
  EXPECT_EQ(build(in), "");
}

TEST(InputFromEnvelope, CopiesThePerMessageFields) {
  spool::Envelope env;
  env.sender = "s@example.com";
  env.recipients.push_back({"r@example.org", kNotifyFailure, "rfc822;orig@example.org"});
  env.ret = static_cast<std::uint8_t>(smtp::Ret::Hdrs);
  env.envid = "QQ314159";
  env.smtputf8 = true;
  env.received_ms = 1795876089000;
  const DsnInput in = input_from_envelope(env);
  EXPECT_EQ(in.original_sender, "s@example.com");
  EXPECT_EQ(in.ret, smtp::Ret::Hdrs);
  EXPECT_EQ(in.envid, "QQ314159");
  EXPECT_TRUE(in.smtputf8);
  EXPECT_EQ(in.arrival_ms, 1795876089000);
  EXPECT_TRUE(in.recipients.empty());  // the caller picks the recipients it reports

  env.ret = 77;  // corrupt: treated as unspecified
  EXPECT_EQ(input_from_envelope(env).ret, smtp::Ret::Unspecified);
}

}  // namespace
}  // namespace mailgate::dsn
