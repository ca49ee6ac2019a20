// feedback/reports: DSN and ARF parsing of real shapes (RFC 3464 and RFC 5965
// examples, Postfix-, Exim- and qmail-style bounces, mailgate's own DSN) and
// of malformed or hostile input.
#include "feedback/reports.hpp"

#include <gtest/gtest.h>

#include "dsn/dsn.hpp"
#include "feedback/report_mime.hpp"

using namespace mailgate::feedback;

namespace {

// RFC 3464 appendix-style report: one failed recipient, one delayed.
constexpr std::string_view kRfc3464 =
    "From: Mail Delivery Subsystem <MAILER-DAEMON@cs.utk.edu>\r\n"
    "Message-Id: <199407072116.RAA14128@CS.UTK.EDU>\r\n"
    "Subject: Returned mail: Cannot send message for 5 days\r\n"
    "To: <owner-info-mime@cs.utk.edu>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
    "    boundary=\"RAA14128.773615765/CS.UTK.EDU\"\r\n"
    "\r\n"
    "--RAA14128.773615765/CS.UTK.EDU\r\n"
    "\r\n"
    "The original message was received at Sat, 2 Jul 1994 17:10:28 -0400\r\n"
    "\r\n"
    "--RAA14128.773615765/CS.UTK.EDU\r\n"
    "content-type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; cs.utk.edu\r\n"
    "\r\n"
    "Original-Recipient: rfc822;arathib@vnet.ibm.com\r\n"
    "Final-Recipient: rfc822;arathib@vnet.ibm.com\r\n"
    "Action: failed\r\n"
    "Status: 5.0.0 (permanent failure)\r\n"
    "Diagnostic-Code: smtp; 550 'arathib@vnet.IBM.COM' is not a\r\n"
    "    registered gateway user\r\n"
    "Remote-MTA: dns; vnet.ibm.com\r\n"
    "\r\n"
    "Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com\r\n"
    "Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com\r\n"
    "Action: delayed\r\n"
    "Status: 4.0.0 (hpnjld.njd.jp.com: host name lookup failure)\r\n"
    "\r\n"
    "--RAA14128.773615765/CS.UTK.EDU\r\n"
    "content-type: message/rfc822\r\n"
    "\r\n"
    "Message-ID: < 199407021710.AA1234 @cs.utk.edu >\r\n"
    "Subject: original\r\n"
    "\r\n"
    "body\r\n"
    "--RAA14128.773615765/CS.UTK.EDU--\r\n";

constexpr std::string_view kExim =
    "From: Mail Delivery System <Mailer-Daemon@mx.example.com>\r\n"
    "To: b+x@bounces.example.com\r\n"
    "Subject: Mail delivery failed: returning message to sender\r\n"
    "\r\n"
    "This message was created automatically by mail delivery software.\r\n"
    "\r\n"
    "A message that you sent could not be delivered to one or more of its\r\n"
    "recipients. This is a permanent error. The following address(es) failed:\r\n"
    "\r\n"
    "  nobody@example.com\r\n"
    "    host mx.example.com [192.0.2.5]\r\n"
    "    SMTP error from remote mail server after RCPT TO:<nobody@example.com>:\r\n"
    "    550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n"
    "\r\n"
    "------ This is a copy of the message, including all the headers. ------\r\n"
    "\r\n"
    "Message-ID: <abc@example.org>\r\n"
    "To: victim@example.com\r\n"
    "\r\n"
    "  victim@example.com\r\n"
    "    550 5.1.1 quoted text is not a report\r\n";

constexpr std::string_view kQmail =
    "From: MAILER-DAEMON@mail.example.com\r\n"
    "Subject: failure notice\r\n"
    "\r\n"
    "Hi. This is the qmail-send program at mail.example.com.\r\n"
    "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
    "This is a permanent error; I've given up. Sorry it didn't work out.\r\n"
    "\r\n"
    "<gone@example.com>:\r\n"
    "Sorry, no mailbox here by that name. (#5.1.1)\r\n"
    "\r\n"
    "<full@example.com>:\r\n"
    "192.0.2.9 does not like recipient.\r\n"
    "Remote host said: 452 4.2.2 mailbox full, try later\r\n"
    "\r\n"
    "--- Below this line is a copy of the message.\r\n";

// RFC 5965 appendix B.2 style.
constexpr std::string_view kArf =
    "From: <abusedesk@example.com>\r\n"
    "Date: Thu, 8 Mar 2005 17:40:36 EDT\r\n"
    "Subject: FW: Earn money\r\n"
    "To: <abuse@example.net>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=feedback-report;\r\n"
    "     boundary=\"part1_13d.2e68ed54_boundary\"\r\n"
    "\r\n"
    "--part1_13d.2e68ed54_boundary\r\n"
    "Content-Type: text/plain; charset=\"US-ASCII\"\r\n"
    "\r\n"
    "This is an email abuse report.\r\n"
    "\r\n"
    "--part1_13d.2e68ed54_boundary\r\n"
    "Content-Type: message/feedback-report\r\n"
    "\r\n"
    "Feedback-Type: Abuse\r\n"
    "User-Agent: SomeGenerator/1.0\r\n"
    "Version: 1\r\n"
    "Original-Mail-From: <somespammer@example.net>\r\n"
    "Original-Rcpt-To: <user@example.com>\r\n"
    "Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n"
    "Reporting-MTA: dns; mail.example.com\r\n"
    "Source-IP: 192.0.2.1\r\n"
    "Reported-Domain: example.net\r\n"
    "\r\n"
    "--part1_13d.2e68ed54_boundary\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Disposition: inline\r\n"
    "\r\n"
    "From: <somespammer@example.net>\r\n"
    "To: Some User <user@example.com>, other@example.com\r\n"
    "Subject: Earn money\r\n"
    "Message-ID: <8787KJKJ3K4J3K4J3K4J3.mail@example.net>\r\n"
    "\r\n"
    "Spam Spam Spam\r\n"
    "--part1_13d.2e68ed54_boundary--\r\n";

}  // namespace

TEST(ParseDsn, Rfc3464ReportsOnlyTheFailedRecipient) {
  DsnReport r;
  std::string why;
  ASSERT_TRUE(parse_dsn(kRfc3464, r, why)) << why;
  EXPECT_TRUE(r.standard);
  EXPECT_EQ(r.reporting_mta, "dns; cs.utk.edu");
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_EQ(r.failed[0].recipient, "arathib@vnet.ibm.com");
  EXPECT_EQ(r.failed[0].code, 550);
  EXPECT_EQ(r.failed[0].status, "5.0.0");
  EXPECT_EQ(r.failed[0].text, "'arathib@vnet.IBM.COM' is not a registered gateway user");
  EXPECT_EQ(r.failed[0].remote_mta, "vnet.ibm.com");
  EXPECT_EQ(r.original_message_id, "<199407021710.AA1234@cs.utk.edu>");
}

TEST(ParseDsn, MailgatesOwnDsn) {
  mailgate::dsn::DsnInput in;
  in.reporting_mta = "gw.example.com";
  in.message_id_domain = "gw.example.com";
  in.original_sender = "sender@example.org";
  in.arrival_ms = 1795876089000;
  in.now_ms = 1795879689000;
  in.dsn_id = "0123456789abcdef0123456789abcdef";
  in.original_message =
      "From: sender@example.org\r\nMessage-ID: <orig-1@example.org>\r\n\r\nhello\r\n";
  mailgate::dsn::RecipientReport f;
  f.final_recipient = "nobody@example.net";
  f.status = "5.1.1";
  f.remote_mta = "mx.example.net";
  f.diagnostic = "550 5.1.1 <nobody@example.net>: no such user";
  in.recipients.push_back(f);
  mailgate::dsn::RecipientReport d = f;
  d.final_recipient = "later@example.net";
  d.action = mailgate::dsn::Action::Delayed;
  d.status = "4.4.1";
  in.recipients.push_back(d);
  DsnReport r;
  std::string why;
  ASSERT_TRUE(parse_dsn(mailgate::dsn::build(in), r, why)) << why;
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_EQ(r.failed[0].recipient, "nobody@example.net");
  EXPECT_EQ(r.failed[0].code, 550);
  EXPECT_EQ(r.failed[0].status, "5.1.1");
  EXPECT_EQ(r.original_message_id, "<orig-1@example.org>");
}

TEST(ParseDsn, EximPlainTextTakesTheAddressLineNotTheQuotedMessage) {
  DsnReport r;
  std::string why;
  ASSERT_TRUE(parse_dsn(kExim, r, why)) << why;
  EXPECT_FALSE(r.standard);
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_EQ(r.failed[0].recipient, "nobody@example.com");
  EXPECT_EQ(r.failed[0].code, 550);
  EXPECT_EQ(r.failed[0].status, "5.1.1");
}

TEST(ParseDsn, QmailTakesPermanentFailuresOnly) {
  DsnReport r;
  std::string why;
  ASSERT_TRUE(parse_dsn(kQmail, r, why)) << why;
  ASSERT_EQ(r.failed.size(), 1u);  // the 452 is not a bounce
  EXPECT_EQ(r.failed[0].recipient, "gone@example.com");
  EXPECT_EQ(r.failed[0].code, 550);
  EXPECT_EQ(r.failed[0].status, "5.1.1");
}

TEST(ParseDsn, NeverGuessesAnAddress) {
  DsnReport r;
  std::string why;
  // An address in prose with a code, but no address line.
  EXPECT_FALSE(
      parse_dsn("Subject: x\r\n\r\nDelivery to bob@example.com failed: 550 5.1.1\r\n", r, why));
  EXPECT_FALSE(why.empty());
  // An address line without any status.
  EXPECT_FALSE(
      parse_dsn("Subject: x\r\n\r\n  bob@example.com\r\n  could not be delivered\r\n", r, why));
  // A delivery-status part whose recipient is not an address.
  std::string bad(kRfc3464);
  bad.replace(bad.find("rfc822;arathib@vnet.ibm.com\r\nAction"), 27, "x400; C=us;A=att;P=ibm   ");
  ASSERT_TRUE(parse_dsn(bad, r, why)) << why;
  EXPECT_TRUE(r.failed.empty());
  // Not a report at all.
  EXPECT_FALSE(parse_dsn("", r, why));
  EXPECT_FALSE(parse_dsn("garbage without headers", r, why));
}

TEST(ParseArf, Rfc5965Example) {
  ComplaintReport c;
  std::string why;
  ASSERT_TRUE(parse_arf(kArf, c, why)) << why;
  EXPECT_EQ(c.feedback_type, "abuse");
  EXPECT_EQ(c.user_agent, "SomeGenerator/1.0");
  EXPECT_EQ(c.original_mail_from, "somespammer@example.net");
  ASSERT_EQ(c.original_rcpt_to.size(), 1u);
  EXPECT_EQ(c.original_rcpt_to[0], "user@example.com");
  EXPECT_EQ(c.returned_to, (std::vector<std::string>{"user@example.com", "other@example.com"}));
  EXPECT_EQ(c.original_message_id, "<8787KJKJ3K4J3K4J3K4J3.mail@example.net>");
  EXPECT_EQ(c.source_ip, "192.0.2.1");
}

TEST(ParseArf, RefusesWhatIsNotAFeedbackReport) {
  ComplaintReport c;
  std::string why;
  EXPECT_FALSE(parse_arf(kRfc3464, c, why));  // a DSN
  std::string no_type(kArf);
  no_type.replace(no_type.find("Feedback-Type: Abuse"), 20, "X-Feedback: Abuse   ");
  EXPECT_FALSE(parse_arf(no_type, c, why));
  EXPECT_EQ(why, "no Feedback-Type");
  std::string no_part(kArf);
  no_part.replace(no_part.find("message/feedback-report"), 23, "text/plain             ");
  EXPECT_FALSE(parse_arf(no_part, c, why));
}

TEST(ReportMime, HostileNestingAndPartsStayBounded) {
  // 10,000 nested multiparts: walked without recursion, at most kMaxDepth deep.
  std::string m;
  for (int i = 0; i < 10000; ++i)
    m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\r\n\r\n--b" +
         std::to_string(i) + "\r\n";
  auto w = walk(m);
  EXPECT_LE(w.leaves.size(), kMaxParts);
  // 100,000 parts: at most kMaxParts read.
  std::string many =
      "Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n";
  for (int i = 0; i < 100000; ++i) many += "--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
  many += "--x--\r\n";
  EXPECT_LE(walk(many).leaves.size(), kMaxParts);
  DsnReport r;
  std::string why;
  EXPECT_FALSE(parse_dsn(many, r, why));
  // A field value of 1 MB is cut to kMaxValue.
  auto f = read_fields("Subject: " + std::string(1 << 20, 'a') + "\r\n");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_LE(f[0].second.size(), kMaxValue);
  // Unterminated boundaries, quotes and brackets.
  EXPECT_NO_FATAL_FAILURE(walk("Content-Type: multipart/report; boundary=\"abc\r\n\r\n--abc"));
  EXPECT_EQ(normalize_message_id("<unterminated"), "");
  EXPECT_EQ(report_address("rfc822; <a@b@c>"), "");
  EXPECT_EQ(report_address("rfc822; <a b@c>"), "");
  EXPECT_EQ(report_address("rfc822;user@example.com"), "user@example.com");
}
