// Unit tests for smtp/bounce_class: a table of real-world rejection replies
// (Gmail, Outlook/Office 365, Yahoo, Postfix, Exim, Exchange, Sendmail) parsed
// from the wire with ReplyParser, built-in precedence (enhanced code, then
// text, then basic code), conservative bad-mailbox decisions, operator rules
// (order, code ranges, enhanced prefixes on component boundaries, text) and
// the string names.
#include "smtp/bounce_class.hpp"

#include <gtest/gtest.h>

#include <string>

#include "smtp/reply_parser.hpp"

namespace mailgate::smtp {
namespace {

using BC = BounceClass;

struct Case {
  const char* name;
  std::string wire;
  BC cls;
};

class BuiltinClass : public ::testing::TestWithParam<Case> {};

TEST_P(BuiltinClass, FromWire) {
  ReplyParser p;
  const std::string& w = GetParam().wire;
  ASSERT_EQ(p.feed(w), w.size());
  ASSERT_TRUE(p.done()) << w;
  const Reply r = p.take();
  BounceClassifier c;
  EXPECT_STREQ(to_string(c.classify(r.code, r.enhanced, r.text)), to_string(GetParam().cls)) << w;
}

INSTANTIATE_TEST_SUITE_P(
    RealWorld, BuiltinClass,
    ::testing::Values(
        // Bad mailbox.
        Case{"gmail_no_such_user",
             "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
             "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
             "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
             "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser x1si - gsmtp\r\n",
             BC::BadMailbox},
        Case{"gmail_disabled",
             "550-5.2.1 The email account that you tried to reach is disabled.\r\n"
             "550 5.2.1  https://support.google.com/mail/?p=DisabledUser x1si - gsmtp\r\n",
             BC::BadMailbox},
        Case{"o365_recipient_not_found",
             "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address "
             "lookup\r\n",
             BC::BadMailbox},
        Case{"postfix_unknown_local",
             "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in "
             "local recipient table\r\n",
             BC::BadMailbox},
        Case{"exchange_unknown", "550 5.1.1 User unknown\r\n", BC::BadMailbox},
        Case{"yahoo_no_mailbox", "554 5.1.3 Invalid recipient\r\n", BC::BadMailbox},
        Case{"mailbox_moved", "550 5.1.6 Recipient addresses have moved\r\n", BC::BadMailbox},
        Case{"no_enhanced_user_unknown", "550 <x@y>... User unknown\r\n", BC::BadMailbox},
        Case{"no_enhanced_no_such_user", "550 No such user here\r\n", BC::BadMailbox},
        Case{"generic_enhanced_text_decides",
             "550 5.0.0 Requested action not taken: mailbox unavailable\r\n", BC::BadMailbox},
        // Bad domain.
        Case{"null_mx", "556 5.1.10 Recipient address has null MX\r\n", BC::BadDomain},
        Case{"null_mx_no_enhanced", "556 Domain does not accept mail\r\n", BC::BadDomain},
        Case{"bad_destination_system", "550 5.1.2 Bad destination system address\r\n",
             BC::BadDomain},
        Case{"postfix_host_not_found",
             "550 5.4.4 Host or domain name not found. Name service error for "
             "name=nx.example type=A: Host not found\r\n",
             BC::BadDomain},
        Case{"no_enhanced_domain_not_found", "550 Domain does not exist\r\n", BC::BadDomain},
        // Policy / reputation.
        Case{"outlook_spamhaus",
             "550 5.7.1 Service unavailable, Client host [203.0.113.9] blocked using Spamhaus. "
             "To request removal from this list see https://www.spamhaus.org/query/ip/"
             "203.0.113.9 (AS3130). [BN8NAM12FT023.eop-nam12.prod.protection.outlook.com]\r\n",
             BC::PolicyReputation},
        Case{"rejected_as_spam", "554 5.7.1 Message rejected as spam\r\n", BC::PolicyReputation},
        Case{"gmail_unauthenticated",
             "550-5.7.26 This mail has been blocked because the sender is unauthenticated.\r\n"
             "550 5.7.26 Gmail requires all senders to authenticate - gsmtp\r\n",
             BC::PolicyReputation},
        Case{"postfix_relay_denied", "554 5.7.1 <x@other.example>: Relay access denied\r\n",
             BC::PolicyReputation},
        Case{"no_enhanced_rbl",
             "554 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org\r\n",
             BC::PolicyReputation},
        Case{"no_enhanced_listed", "550 Your IP is listed at bl.example.net\r\n",
             BC::PolicyReputation},
        Case{"policy_wins_over_mailbox_words",
             "550 Requested action not taken: mailbox unavailable (blocked by policy)\r\n",
             BC::PolicyReputation},
        Case{"yahoo_554_policy",
             "554 5.7.9 Message not accepted for policy reasons.  See "
             "https://postmaster.yahooinc.com/error-codes\r\n",
             BC::PolicyReputation},
        // Quota.
        Case{"gmail_over_quota_4xx",
             "452-4.2.2 The email account that you tried to reach is over quota. Please direct\r\n"
             "452 4.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaTemp - "
             "gsmtp\r\n",
             BC::Quota},
        Case{"mailbox_full_5xx", "552 5.2.2 Mailbox full\r\n", BC::Quota},
        Case{"552_storage", "552 Requested mail action aborted: exceeded storage allocation\r\n",
             BC::Quota},
        Case{"no_enhanced_quota", "550 Mailbox quota exceeded\r\n", BC::Quota},
        Case{"4xx_no_enhanced_mailbox_full", "452 Mailbox full, try later\r\n", BC::Quota},
        // Content.
        Case{"too_big_enhanced", "552 5.3.4 Message size exceeds fixed maximum message size\r\n",
             BC::Content},
        Case{"too_big_523", "552 5.2.3 Message length exceeds administrative limit\r\n",
             BC::Content},
        Case{"media", "554 5.6.0 Message content rejected\r\n", BC::Content},
        Case{"552_no_enhanced", "552 Message too large\r\n", BC::Content},
        Case{"552_bare", "552 Requested action aborted\r\n", BC::Content},
        // Routing.
        Case{"loop", "554 5.4.6 Routing loop detected\r\n", BC::Routing},
        Case{"too_many_hops", "554 5.4.0 too many hops\r\n", BC::Routing},
        // Transient.
        Case{"greylist", "451 4.7.1 Greylisted, please try again later\r\n", BC::Transient},
        Case{"gmail_rate_limit",
             "421-4.7.28 Our system has detected an unusual rate of unsolicited mail\r\n"
             "421 4.7.28 originating from your IP address. - gsmtp\r\n",
             BC::Transient},
        Case{"4xx_user_unknown_stays_transient",
             "450 4.1.1 <x@y>: Recipient address rejected: User unknown in local recipient "
             "table\r\n",
             BC::Transient},
        Case{"4xx_connection", "421 4.4.2 Connection dropped\r\n", BC::Transient},
        Case{"4xx_storage_system", "452 4.3.1 Insufficient system storage\r\n", BC::Transient},
        Case{"4xx_plain", "450 Try again later\r\n", BC::Transient},
        // Other (conservative: no clear evidence about the recipient).
        Case{"550_bare", "550 Requested action not taken\r\n", BC::Other},
        Case{"550_bare_enhanced", "550 5.0.0 Rejected\r\n", BC::Other},
        Case{"554_transaction_failed", "554 Transaction failed\r\n", BC::Other},
        Case{"syntax", "501 5.5.4 Syntax error in parameters\r\n", BC::Other},
        Case{"sender_rejected_postfix",
             "550 5.1.0 <bounce@example.com>: Sender address rejected: User unknown in virtual "
             "mailbox table\r\n",
             BC::Other},
        Case{"sender_domain",
             "553 5.1.8 <a@nx.example>: Sender address rejected: Domain not "
             "found\r\n",
             BC::Other},
        Case{"sender_no_enhanced", "553 Sender address rejected: user unknown\r\n", BC::Other},
        Case{"mismatched_enhanced_class_ignored", "550 4.2.2 odd\r\n", BC::Other}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(BounceClassifier, NotFailures) {
  BounceClassifier c;
  EXPECT_EQ(c.classify(250, "2.0.0", "OK"), BC::None);
  EXPECT_EQ(c.classify(354, "", "go ahead"), BC::None);
  EXPECT_EQ(c.classify(0, "", "connection refused"), BC::None);
  EXPECT_EQ(c.classify(600, "", "user unknown"), BC::None);
}

TEST(BounceClassifier, EnhancedCodeAsGiven) {
  BounceClassifier c;
  // The caller may pass codes straight from a stored record.
  EXPECT_EQ(c.classify(550, "5.1.1", ""), BC::BadMailbox);
  EXPECT_EQ(c.classify(550, "5.1.10", "null MX"), BC::BadDomain);
  EXPECT_EQ(c.classify(550, "5.1.10", ""), BC::BadMailbox);
  EXPECT_EQ(c.classify(550, "5.7.1", "whatever"), BC::PolicyReputation);
  EXPECT_EQ(c.classify(550, "5.7.999", ""), BC::PolicyReputation);
  EXPECT_EQ(c.classify(452, "4.2.2", ""), BC::Quota);
  EXPECT_EQ(c.classify(550, "garbage", "user unknown"), BC::BadMailbox);  // text decides
  EXPECT_EQ(c.classify(550, "5.1.1.1", ""), BC::Other);                   // not a code
  EXPECT_EQ(c.classify(550, "5.9.9", "no such user"), BC::BadMailbox);    // unknown subject
  EXPECT_EQ(c.classify(550, "5.1.4", ""), BC::Other);                     // ambiguous: no evidence
}

TEST(BounceClassifier, CaseInsensitiveText) {
  BounceClassifier c;
  EXPECT_EQ(c.classify(550, "", "USER UNKNOWN"), BC::BadMailbox);
  EXPECT_EQ(c.classify(550, "", "Blocked By SpamCop"), BC::PolicyReputation);
  EXPECT_EQ(c.classify(550, "", "MAILBOX FULL"), BC::Quota);
}

TEST(BounceClassifier, OperatorRulesFirstInOrder) {
  BounceClassifier c;
  c.add_rule({500, 599, "5.1.1", "Mailbox Temporarily Suspended", BC::Transient});
  c.add_rule({500, 599, "5.1.1", "", BC::Other});        // shadowed for the text above
  c.add_rule({500, 599, "", "suspended", BC::Routing});  // any enhanced / none
  EXPECT_EQ(c.classify(550, "5.1.1", "mailbox temporarily suspended"), BC::Transient);
  EXPECT_EQ(c.classify(550, "5.1.1", "user unknown"), BC::Other);
  EXPECT_EQ(c.classify(550, "", "account suspended"), BC::Routing);
  EXPECT_EQ(c.classify(550, "5.7.1", "account suspended"), BC::Routing);
  EXPECT_EQ(c.classify(450, "4.1.1", "account suspended"), BC::Transient);  // out of range
  EXPECT_EQ(c.classify(550, "5.2.2", "mailbox full"), BC::Quota);           // built-in
}

TEST(BounceClassifier, OperatorPrefixOnComponentBoundary) {
  BounceClassifier c;
  c.add_rule({500, 599, "5.1.1", "", BC::Content});
  c.add_rule({500, 599, "5.7.", "", BC::Other});
  c.add_rule({500, 599, "5.6", "", BC::Routing});
  EXPECT_EQ(c.classify(550, "5.1.1", ""), BC::Content);
  EXPECT_EQ(c.classify(550, "5.1.10", ""), BC::BadMailbox);  // not "5.1.1"
  EXPECT_EQ(c.classify(550, "5.7.1", ""), BC::Other);
  EXPECT_EQ(c.classify(550, "5.7.26", ""), BC::Other);
  EXPECT_EQ(c.classify(550, "5.6.0", ""), BC::Routing);
  EXPECT_EQ(c.classify(550, "5.60.0", ""), BC::Other);  // not "5.6"; built-in: no evidence
  EXPECT_EQ(c.classify(550, "", ""), BC::Other);        // a prefix needs an enhanced code
}

TEST(BounceClassifier, OperatorRuleCanCoverAnyCode) {
  BounceClassifier c;
  c.add_rule({421, 421, "", "", BC::Routing});
  EXPECT_EQ(c.classify(421, "4.7.0", "closing"), BC::Routing);
  EXPECT_EQ(c.classify(451, "4.7.0", "closing"), BC::Transient);
}

TEST(BounceClass, Names) {
  const std::pair<BC, const char*> names[] = {{BC::None, ""},
                                              {BC::BadMailbox, "bad-mailbox"},
                                              {BC::BadDomain, "bad-domain"},
                                              {BC::PolicyReputation, "policy"},
                                              {BC::Content, "content"},
                                              {BC::Quota, "quota"},
                                              {BC::Routing, "routing"},
                                              {BC::Transient, "transient"},
                                              {BC::Other, "other"}};
  for (const auto& [cls, name] : names) {
    EXPECT_STREQ(to_string(cls), name);
    if (cls != BC::None) {
      EXPECT_EQ(bounce_class_from_string(name), cls) << name;
    }
  }
  EXPECT_FALSE(bounce_class_from_string("").has_value());
  EXPECT_FALSE(bounce_class_from_string("Policy").has_value());
  EXPECT_FALSE(bounce_class_from_string("spam").has_value());
}

}  // namespace
}  // namespace mailgate::smtp
