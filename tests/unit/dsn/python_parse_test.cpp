// Cross-check with a real MIME parser: DSNs written to temp files are parsed by
// Debian's /usr/bin/python3 `email` package (policy=email.policy.default), which
// reads message/delivery-status as a list of header blocks. The script (run by
// tests/support/python_email) prints key/value lines that the tests compare.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "dsn/dsn.hpp"
#include "support/python_email.hpp"

namespace mailgate::dsn {
namespace {

// Run after support/python_email's prelude (msg, defects, out).
constexpr std::string_view kScript = R"PY(
def blocks_of(part):
    # message/delivery-status: a list of header blocks. Python does not know
    # message/global-delivery-status (RFC 6533): it parses it as one nested
    # message whose body holds the remaining blocks.
    payload = part.get_payload()
    if part.get_content_type() == "message/delivery-status":
        return payload
    first = payload[0]
    rest = first.get_payload(decode=True).decode("utf-8")
    blocks = [first]
    for chunk in rest.replace("\r\n", "\n").split("\n\n"):
        if chunk.strip():
            blocks.append(email.message_from_string(chunk + "\n", policy=email.policy.default))
    return blocks

out("type", msg.get_content_type())
out("report-type", msg.get_param("report-type"))
out("boundary", msg.get_boundary())
for name in ("from", "to", "subject", "message-id", "auto-submitted", "date", "bcc"):
    out(name, msg[name])
out("date.year", msg["date"].datetime.year)
out("is_multipart", msg.is_multipart())
parts = msg.get_payload()
out("parts", len(parts))
for i, p in enumerate(parts):
    defects += len(p.defects)
    out(f"part{i}.type", p.get_content_type())
out("text", parts[0].get_content())
blocks = blocks_of(parts[1])
out("blocks", len(blocks))
for j, b in enumerate(blocks):
    defects += len(b.defects)
    out(f"block{j}.names", ",".join(k.lower() for k in b.keys()))
    for k, v in b.items():
        out(f"block{j}.{k.lower()}", v)
if len(parts) > 2:
    orig = parts[2]
    if orig.get_content_maintype() == "message":
        inner = orig.get_payload(0)
        defects += len(inner.defects)
        out("original.subject", inner["subject"])
        out("original.message-id", inner["message-id"])
        out("original.body", inner.get_payload())
    else:
        out("original.text", orig.get_content())
out("defects", defects)
)PY";

class PythonParse : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!mailgate::test::PythonEmail::available())
      GTEST_SKIP() << mailgate::test::PythonEmail::kPython << " is missing";
  }
  std::map<std::string, std::string> parse(const std::string& message) {
    return script_.parse(message);
  }

 private:
  mailgate::test::PythonEmail script_{kScript};
};

constexpr std::string_view kOriginal =
    "Received: from client.example ([192.0.2.7] [192.0.2.7])\r\n"
    "\tby gw.example.com (mailgate) with ESMTP id 0123456789abcdef0123456789abcdee;\r\n"
    "\tSat, 28 Nov 2026 14:28:09 +0000\r\n"
    "From: Sender <sender@example.com>\r\n"
    "To: a@example.org, b@example.net\r\n"
    "Subject: quarterly report\r\n"
    "Message-ID: <m1@example.com>\r\n"
    "\r\n"
    "Hello there.\r\n";

DsnInput base() {
  DsnInput in;
  in.reporting_mta = "gw.example.com";
  in.original_sender = "sender@example.com";
  in.envid = "QQ314159";
  in.arrival_ms = 1795876089000;
  in.now_ms = 1795879689000;
  in.dsn_id = "00112233445566778899aabbccddeeff";
  in.original_message = kOriginal;
  RecipientReport a;
  a.final_recipient = "a@example.org";
  a.original_recipient = "rfc822;alias@example.org";
  a.action = Action::Failed;
  a.status = "5.1.1";
  a.remote_mta = "mx.example.org";
  a.diagnostic = "550 5.1.1 <a@example.org>: user unknown";
  a.last_attempt_ms = 1795879680000;
  RecipientReport b;
  b.final_recipient = "b@example.net";
  b.action = Action::Failed;
  b.status = "5.4.4";
  b.diagnostic = "Host or domain name not found";
  in.recipients = {a, b};
  return in;
}

TEST_F(PythonParse, FailureWithFullOriginal) {
  auto in = base();
  in.ret = smtp::Ret::Full;
  auto kv = parse(build(in));
  EXPECT_EQ(kv["type"], "multipart/report");
  EXPECT_EQ(kv["report-type"], "delivery-status");
  EXPECT_EQ(kv["boundary"], "=_mailgate-dsn-00112233445566778899aabbccddeeff");
  EXPECT_EQ(kv["from"], "Mail Delivery System <MAILER-DAEMON@gw.example.com>");
  EXPECT_EQ(kv["to"], "sender@example.com");
  EXPECT_EQ(kv["subject"], "Undelivered Mail Returned to Sender");
  EXPECT_EQ(kv["message-id"], "<00112233445566778899aabbccddeeff@gw.example.com>");
  EXPECT_EQ(kv["auto-submitted"], "auto-replied");
  EXPECT_EQ(kv["date.year"], "2026");
  EXPECT_EQ(kv["parts"], "3");
  EXPECT_EQ(kv["part0.type"], "text/plain");
  EXPECT_EQ(kv["part1.type"], "message/delivery-status");
  EXPECT_EQ(kv["part2.type"], "message/rfc822");
  EXPECT_NE(kv["text"].find("<a@example.org>: delivery failed"), std::string::npos);
  ASSERT_EQ(kv["blocks"], "3");
  EXPECT_EQ(kv["block0.names"], "original-envelope-id,reporting-mta,arrival-date");
  EXPECT_EQ(kv["block0.original-envelope-id"], "QQ314159");
  EXPECT_EQ(kv["block0.reporting-mta"], "dns; gw.example.com");
  EXPECT_EQ(kv["block1.names"],
            "original-recipient,final-recipient,action,status,remote-mta,diagnostic-code,"
            "last-attempt-date");
  EXPECT_EQ(kv["block1.original-recipient"], "rfc822;alias@example.org");
  EXPECT_EQ(kv["block1.final-recipient"], "rfc822; a@example.org");
  EXPECT_EQ(kv["block1.action"], "failed");
  EXPECT_EQ(kv["block1.status"], "5.1.1");
  EXPECT_EQ(kv["block1.remote-mta"], "dns; mx.example.org");
  EXPECT_EQ(kv["block1.diagnostic-code"], "smtp; 550 5.1.1 <a@example.org>: user unknown");
  EXPECT_EQ(kv["block2.names"], "final-recipient,action,status,diagnostic-code");
  EXPECT_EQ(kv["block2.final-recipient"], "rfc822; b@example.net");
  EXPECT_EQ(kv["block2.status"], "5.4.4");
  EXPECT_EQ(kv["block2.diagnostic-code"], "X-mailgate; Host or domain name not found");
  EXPECT_EQ(kv["original.subject"], "quarterly report");
  EXPECT_EQ(kv["original.message-id"], "<m1@example.com>");
  EXPECT_EQ(kv["original.body"], "Hello there.\r\n");
}

TEST_F(PythonParse, DelayWithHeadersOnly) {
  auto in = base();
  in.recipients.resize(1);
  in.recipients[0].action = Action::Delayed;
  in.recipients[0].status = "4.4.1";
  in.recipients[0].diagnostic = "421 4.4.1 connection timed out";
  in.recipients[0].will_retry_until_ms = 1796308089000;
  auto kv = parse(build(in));
  EXPECT_EQ(kv["subject"], "Delayed Mail (still being retried)");
  EXPECT_EQ(kv["part2.type"], "text/rfc822-headers");
  ASSERT_EQ(kv["blocks"], "2");
  EXPECT_EQ(kv["block1.action"], "delayed");
  EXPECT_EQ(kv["block1.will-retry-until"], "Thu, 03 Dec 2026 14:28:09 +0000");
  EXPECT_NE(kv["original.text"].find("Subject: quarterly report"), std::string::npos);
  EXPECT_EQ(kv["original.text"].find("Hello there."), std::string::npos);
}

TEST_F(PythonParse, RelayedSuccessWithoutOriginal) {
  auto in = base();
  in.recipients.resize(1);
  in.recipients[0].action = Action::Relayed;
  in.recipients[0].status = "2.0.0";
  in.recipients[0].diagnostic = "250 2.0.0 Ok: queued as 4F2";
  in.original_message = {};
  auto kv = parse(build(in));
  EXPECT_EQ(kv["subject"], "Successful Mail Delivery Report");
  EXPECT_EQ(kv["parts"], "2");
  EXPECT_EQ(kv["block1.action"], "relayed");
  EXPECT_EQ(kv["block1.status"], "2.0.0");
}

TEST_F(PythonParse, GlobalDsnForUtf8Recipient) {
  auto in = base();
  const std::string rcpt = "j\xC3\xBCrgen@example.org";
  in.recipients.resize(1);
  in.recipients[0].final_recipient = rcpt;
  in.recipients[0].original_recipient = "utf-8;" + rcpt;
  in.smtputf8 = true;
  auto kv = parse(build(in));
  EXPECT_EQ(kv["type"], "multipart/report");
  EXPECT_EQ(kv["report-type"], "delivery-status");
  EXPECT_EQ(kv["part0.type"], "text/plain");
  EXPECT_NE(kv["text"].find("<" + rcpt + ">"), std::string::npos);  // decoded as UTF-8
  EXPECT_EQ(kv["part1.type"], "message/global-delivery-status");
  ASSERT_EQ(kv["blocks"], "2");
  EXPECT_EQ(kv["block0.reporting-mta"], "dns; gw.example.com");
  EXPECT_EQ(kv["block1.final-recipient"], "utf-8; " + rcpt);
  EXPECT_EQ(kv["block1.action"], "failed");
  EXPECT_EQ(kv["part2.type"], "message/rfc822");  // the original's headers are ASCII
}

TEST_F(PythonParse, InjectionAndLongDiagnosticStayInTheirFields) {
  auto in = base();
  in.recipients.resize(1);
  std::string diag = "550 5.7.1 rejected\r\nBcc: victim@evil.example\r\n\r\n--x";
  while (diag.size() < 5000) diag += " because";
  in.recipients[0].diagnostic = diag;
  in.recipients[0].final_recipient = "a@example.org\r\nX-Evil: 1";
  in.original_sender = "sender@example.com\r\nBcc: victim@evil.example";
  auto kv = parse(build(in));
  EXPECT_EQ(kv["parts"], "3");
  EXPECT_EQ(kv["bcc"], "None");  // the CRLF became a space inside To:
  EXPECT_EQ(kv["to"].rfind("sender@example.com", 0), 0u);
  EXPECT_EQ(kv["blocks"], "2");
  EXPECT_EQ(kv["block1.names"],
            "original-recipient,final-recipient,action,status,remote-mta,diagnostic-code,"
            "last-attempt-date");
  EXPECT_EQ(kv["block1.final-recipient"], "rfc822; a@example.org X-Evil: 1");
  EXPECT_EQ(kv["block1.diagnostic-code"].rfind("smtp; 550 5.7.1 rejected Bcc: victim", 0), 0u);
  EXPECT_GT(kv["block1.diagnostic-code"].size(), 5000u);
}

}  // namespace
}  // namespace mailgate::dsn
