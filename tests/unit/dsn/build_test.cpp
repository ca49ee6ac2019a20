// build(): the multipart/report structure, the delivery-status fields, what is
// returned of the original (RET, size cap), RFC 6533 global types, header
// injection, line lengths, determinism (golden output).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "dsn/dsn.hpp"
#include "mime.hpp"

namespace mailgate::dsn {
namespace {

using test::Dsn;
using test::Entity;
using test::media_type;
using test::param;
using test::parse_dsn;
using test::status_blocks;

constexpr std::string_view kOriginal =
    "Received: from client.example ([192.0.2.7] [192.0.2.7])\r\n"
    "\tby gw.example.com (mailgate) with ESMTP id 0123456789abcdef0123456789abcdee\r\n"
    "\tfor <rcpt@example.org>; Sat, 28 Nov 2026 14:28:09 +0000\r\n"
    "From: Sender <sender@example.com>\r\n"
    "To: rcpt@example.org\r\n"
    "Subject: hello\r\n"
    "Message-ID: <m1@example.com>\r\n"
    "\r\n"
    "Hello there.\r\n"
    "\r\n"
    "Bye.\r\n";

std::string_view original_headers() { return kOriginal.substr(0, kOriginal.find("\r\n\r\n") + 2); }

RecipientReport failed_rcpt() {
  RecipientReport r;
  r.final_recipient = "rcpt@example.org";
  r.action = Action::Failed;
  r.status = "5.1.1";
  r.remote_mta = "mx.example.org";
  r.diagnostic = "550 5.1.1 <rcpt@example.org>: Recipient address rejected: User unknown";
  r.last_attempt_ms = 1795879680000;
  return r;
}

DsnInput base() {
  DsnInput in;
  in.reporting_mta = "gw.example.com";
  in.message_id_domain = "gw.example.com";
  in.original_sender = "sender@example.com";
  in.arrival_ms = 1795876089000;
  in.now_ms = 1795879689000;
  in.dsn_id = "0123456789abcdef0123456789abcdef";
  in.original_message = kOriginal;
  in.recipients.push_back(failed_rcpt());
  return in;
}

// Every line ends with CRLF, none is longer than 998 octets, no NUL.
void expect_wellformed(const std::string& m) {
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.find('\0'), std::string::npos);
  std::size_t pos = 0, longest = 0;
  while (pos < m.size()) {
    const std::size_t eol = m.find_first_of("\r\n", pos);
    ASSERT_NE(eol, std::string::npos) << "unterminated last line";
    ASSERT_EQ(m.compare(eol, 2, "\r\n"), 0) << "bare CR or LF at " << eol;
    longest = std::max(longest, eol - pos);
    pos = eol + 2;
  }
  EXPECT_LE(longest, 998u);
}

std::vector<std::string> field_names(const Entity& e) {
  std::vector<std::string> names;
  for (const auto& f : e.fields) names.push_back(f.first);
  return names;
}

TEST(Build, MultipartReportStructure) {
  const std::string m = build(base());
  expect_wellformed(m);
  const Dsn d = parse_dsn(m);
  EXPECT_EQ(field_names(d.top),
            (std::vector<std::string>{"from", "to", "subject", "date", "message-id",
                                      "auto-submitted", "mime-version", "content-type"}));
  EXPECT_EQ(d.top.get("from"), "Mail Delivery System <MAILER-DAEMON@gw.example.com>");
  EXPECT_EQ(d.top.get("to"), "<sender@example.com>");
  EXPECT_EQ(d.top.get("subject"), "Undelivered Mail Returned to Sender");
  EXPECT_EQ(d.top.get("date"), "Sat, 28 Nov 2026 15:28:09 +0000");
  EXPECT_EQ(d.top.get("message-id"), "<0123456789abcdef0123456789abcdef@gw.example.com>");
  EXPECT_EQ(d.top.get("auto-submitted"), "auto-replied");
  EXPECT_EQ(d.top.get("mime-version"), "1.0");
  const std::string ct = d.top.get("content-type");
  EXPECT_EQ(media_type(ct), "multipart/report");
  EXPECT_EQ(param(ct, "report-type"), "delivery-status");
  const std::string boundary = param(ct, "boundary");
  EXPECT_EQ(boundary, "=_mailgate-dsn-0123456789abcdef0123456789abcdef");
  EXPECT_LE(boundary.size(), 70u);

  ASSERT_TRUE(d.mp.closed);
  EXPECT_EQ(d.mp.epilogue, "\r\n");
  ASSERT_EQ(d.parts.size(), 3u);
  for (const auto& p : d.mp.parts) EXPECT_EQ(p.find(boundary), std::string::npos);
  EXPECT_EQ(media_type(d.parts[0].get("content-type")), "text/plain");
  EXPECT_EQ(param(d.parts[0].get("content-type"), "charset"), "us-ascii");
  EXPECT_EQ(media_type(d.parts[1].get("content-type")), "message/delivery-status");
  EXPECT_EQ(media_type(d.parts[2].get("content-type")), "message/rfc822");
  EXPECT_FALSE(has_8bit(m));
  EXPECT_FALSE(is_global(base()));
}

TEST(Build, HumanReadablePartNamesRecipientAndReason) {
  const Dsn d = parse_dsn(build(base()));
  const std::string& text = d.parts[0].body;
  EXPECT_NE(text.find("gw.example.com"), std::string::npos);
  EXPECT_NE(text.find("<rcpt@example.org>: delivery failed (status 5.1.1)"), std::string::npos);
  EXPECT_NE(text.find("Remote server: mx.example.org"), std::string::npos);
  EXPECT_NE(text.find("It said: 550 5.1.1"), std::string::npos);
  EXPECT_NE(text.find("The original message is attached."), std::string::npos);
  for (const auto& l : test::lines(text)) EXPECT_LE(l.size(), 78u) << l;
}

TEST(Build, DeliveryStatusFields) {
  const Dsn d = parse_dsn(build(base()));
  const auto blocks = status_blocks(d.parts[1].body);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(field_names(blocks[0]), (std::vector<std::string>{"reporting-mta", "arrival-date"}));
  EXPECT_EQ(blocks[0].get("reporting-mta"), "dns; gw.example.com");
  EXPECT_EQ(blocks[0].get("arrival-date"), "Sat, 28 Nov 2026 14:28:09 +0000");
  EXPECT_EQ(field_names(blocks[1]),
            (std::vector<std::string>{"final-recipient", "action", "status", "remote-mta",
                                      "diagnostic-code", "last-attempt-date"}));
  EXPECT_EQ(blocks[1].get("final-recipient"), "rfc822; rcpt@example.org");
  EXPECT_EQ(blocks[1].get("action"), "failed");
  EXPECT_EQ(blocks[1].get("status"), "5.1.1");
  EXPECT_EQ(blocks[1].get("remote-mta"), "dns; mx.example.org");
  EXPECT_EQ(blocks[1].get("diagnostic-code"),
            "smtp; 550 5.1.1 <rcpt@example.org>: Recipient address rejected: User unknown");
  EXPECT_EQ(blocks[1].get("last-attempt-date"), "Sat, 28 Nov 2026 15:28:00 +0000");
}

TEST(Build, OrcptEnvidAndOptionalFields) {
  auto in = base();
  in.envid = "QQ 314+159=";
  in.arrival_ms = 0;
  in.recipients[0].original_recipient = "rfc822;Orig+tag@Example.NET";
  in.recipients[0].remote_mta.clear();
  in.recipients[0].last_attempt_ms = 0;
  in.recipients[0].diagnostic = "connection refused by all MX hosts";
  const auto blocks = status_blocks(parse_dsn(build(in)).parts[1].body);
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(field_names(blocks[0]),
            (std::vector<std::string>{"original-envelope-id", "reporting-mta"}));
  EXPECT_EQ(blocks[0].get("original-envelope-id"), "QQ+20314+2B159+3D");  // xtext
  EXPECT_EQ(field_names(blocks[1]),
            (std::vector<std::string>{"original-recipient", "final-recipient", "action", "status",
                                      "diagnostic-code"}));
  // ORCPT is stored decoded and reported decoded (RFC 3464 §2.3.1 example form).
  EXPECT_EQ(blocks[1].get("original-recipient"), "rfc822;Orig+tag@Example.NET");
  EXPECT_EQ(blocks[1].get("diagnostic-code"), "X-mailgate; connection refused by all MX hosts");

  in.recipients[0].original_recipient = "no-semicolon";  // malformed: omitted
  in.recipients[0].diagnostic.clear();
  const auto b2 = status_blocks(parse_dsn(build(in)).parts[1].body);
  EXPECT_EQ(field_names(b2[1]), (std::vector<std::string>{"final-recipient", "action", "status"}));
}

TEST(Build, StatusDefaultsWhenMissingOrMalformed) {
  struct {
    Action action;
    const char* given;
    const char* reported;
  } cases[] = {{Action::Failed, "", "5.0.0"},        {Action::Failed, "5.1", "5.0.0"},
               {Action::Failed, "5.1.1 x", "5.0.0"}, {Action::Failed, "4.4.7", "4.4.7"},
               {Action::Delayed, "", "4.0.0"},       {Action::Delivered, "", "2.0.0"},
               {Action::Relayed, "9.1.1", "2.0.0"},  {Action::Failed, "5.7.100", "5.7.100"},
               {Action::Failed, "5.7.1000", "5.0.0"}};
  for (const auto& c : cases) {
    auto in = base();
    in.recipients[0].action = c.action;
    in.recipients[0].status = c.given;
    const auto blocks = status_blocks(parse_dsn(build(in)).parts[1].body);
    EXPECT_EQ(blocks[1].get("status"), c.reported) << c.given;
  }
}

TEST(Build, SubjectAndActionsByOutcome) {
  auto delayed = failed_rcpt();
  delayed.final_recipient = "slow@example.net";
  delayed.action = Action::Delayed;
  delayed.status = "4.4.1";
  delayed.diagnostic = "421 4.4.1 try later";
  delayed.will_retry_until_ms = 1796308089000;
  auto delivered = failed_rcpt();
  delivered.final_recipient = "ok@example.net";
  delivered.action = Action::Delivered;
  delivered.status = "2.0.0";
  delivered.diagnostic = "250 2.0.0 queued as 1234";
  auto relayed = delivered;
  relayed.final_recipient = "relayed@example.net";
  relayed.action = Action::Relayed;

  struct {
    std::vector<RecipientReport> rcpts;
    const char* subject;
  } cases[] = {
      {{delayed}, "Delayed Mail (still being retried)"},
      {{delivered}, "Successful Mail Delivery Report"},
      {{relayed}, "Successful Mail Delivery Report"},
      {{delivered, delayed}, "Delayed Mail (still being retried)"},
      {{delivered, delayed, failed_rcpt()}, "Undelivered Mail Returned to Sender"},
  };
  for (const auto& c : cases) {
    auto in = base();
    in.recipients = c.rcpts;
    const std::string m = build(in);
    expect_wellformed(m);
    const Dsn d = parse_dsn(m);
    EXPECT_EQ(d.top.get("subject"), c.subject);
    const auto blocks = status_blocks(d.parts[1].body);
    ASSERT_EQ(blocks.size(), c.rcpts.size() + 1);
    for (std::size_t i = 0; i < c.rcpts.size(); ++i) {
      const auto& b = blocks[i + 1];
      EXPECT_EQ(b.get("final-recipient"), "rfc822; " + c.rcpts[i].final_recipient);
      const char* action[] = {"failed", "delayed", "delivered", "relayed"};
      EXPECT_EQ(b.get("action"), action[static_cast<int>(c.rcpts[i].action)]);
      EXPECT_EQ(b.has("will-retry-until"), c.rcpts[i].action == Action::Delayed);
    }
  }
  auto in = base();
  in.recipients = {delayed};
  const auto b = status_blocks(parse_dsn(build(in)).parts[1].body);
  EXPECT_EQ(b[1].get("will-retry-until"), "Thu, 03 Dec 2026 14:28:09 +0000");
  EXPECT_EQ(b[1].get("diagnostic-code"), "smtp; 421 4.4.1 try later");
}

// What the third part holds, for each RET and outcome.
struct Third {
  std::string type;  // "" when absent
  std::string body;
};
Third third_part(const DsnInput& in) {
  const Dsn d = parse_dsn(build(in));
  if (d.parts.size() < 3) return {};
  EXPECT_EQ(d.parts.size(), 3u);
  return {media_type(d.parts[2].get("content-type")), d.parts[2].body};
}

TEST(Build, RetFullHdrsAndUnspecified) {
  auto in = base();
  in.ret = smtp::Ret::Full;
  EXPECT_EQ(returned_content(in), Returned::Full);
  auto t = third_part(in);
  EXPECT_EQ(t.type, "message/rfc822");
  EXPECT_EQ(t.body, kOriginal);

  in.ret = smtp::Ret::Unspecified;  // our choice: full for failures
  EXPECT_EQ(returned_content(in), Returned::Full);
  EXPECT_EQ(third_part(in).body, kOriginal);

  in.ret = smtp::Ret::Hdrs;
  EXPECT_EQ(returned_content(in), Returned::Headers);
  t = third_part(in);
  EXPECT_EQ(t.type, "text/rfc822-headers");
  EXPECT_EQ(t.body, original_headers());
  EXPECT_NE(parse_dsn(build(in)).parts[0].body.find("header section of the original"),
            std::string::npos);
}

TEST(Build, DelayAndSuccessReturnHeadersOnlyEvenWithRetFull) {
  for (Action a : {Action::Delayed, Action::Delivered, Action::Relayed}) {
    auto in = base();
    in.ret = smtp::Ret::Full;
    in.recipients[0].action = a;
    EXPECT_EQ(returned_content(in), Returned::Headers);
    const auto t = third_part(in);
    EXPECT_EQ(t.type, "text/rfc822-headers");
    EXPECT_EQ(t.body, original_headers());
  }
}

TEST(Build, SizeCap) {
  auto in = base();
  in.ret = smtp::Ret::Full;
  in.max_returned_body = kOriginal.size();
  EXPECT_EQ(third_part(in).type, "message/rfc822");
  in.max_returned_body = kOriginal.size() - 1;  // over the cap: headers only
  auto t = third_part(in);
  EXPECT_EQ(t.type, "text/rfc822-headers");
  EXPECT_EQ(t.body, original_headers());

  // Headers over the cap: cut at a field boundary (the folded Received stays whole).
  in.max_returned_body = 200;
  t = third_part(in);
  EXPECT_EQ(t.type, "text/rfc822-headers");
  const std::string_view hdrs = original_headers();
  const std::size_t cut = hdrs.find("To: ");  // Received (171) + From (35) > 200
  EXPECT_EQ(t.body, hdrs.substr(0, hdrs.find("From: ")));
  EXPECT_LT(hdrs.find("From: "), cut);

  in.max_returned_body = 10;  // not even one field: no third part
  EXPECT_EQ(returned_content(in), Returned::None);
  const Dsn d = parse_dsn(build(in));
  EXPECT_EQ(d.parts.size(), 2u);
  EXPECT_EQ(d.parts[0].body.find("attached"), std::string::npos);
}

TEST(Build, OriginalWithoutBodyOrWithoutHeaders) {
  auto in = base();
  const std::string headers_only = "From: a@example.com\r\nSubject: x\r\n";
  in.original_message = headers_only;
  EXPECT_EQ(third_part(in).body, headers_only);
  in.ret = smtp::Ret::Hdrs;
  EXPECT_EQ(third_part(in).body, headers_only);

  const std::string body_only = "\r\njust a body\r\n";
  in.original_message = body_only;
  EXPECT_EQ(returned_content(in), Returned::None);  // HDRS of a message without headers
  EXPECT_EQ(third_part(in).type, "");
  in.ret = smtp::Ret::Full;
  EXPECT_EQ(third_part(in).body, body_only);

  in.original_message = {};
  EXPECT_EQ(returned_content(in), Returned::None);
  const Dsn d = parse_dsn(build(in));
  ASSERT_EQ(d.parts.size(), 2u);
  EXPECT_TRUE(d.mp.closed);
}

TEST(Build, MalformedOriginalIsRepairedNotPassedOn) {
  auto in = base();
  const std::string bad =
      "Subject: x\nX-Long: " + std::string(3000, 'y') + "\r\n\r\nbody\rmore" + std::string(1, '\0');
  in.original_message = bad;
  const std::string m = build(in);
  expect_wellformed(m);
  EXPECT_EQ(parse_dsn(m).parts.size(), 3u);
}

TEST(Build, EightBitBodyStaysRfc822With8bitEncoding) {
  auto in = base();
  const std::string orig = "Subject: x\r\n\r\ncaf\xC3\xA9\r\n";
  in.original_message = orig;
  const std::string m = build(in);
  EXPECT_FALSE(is_global(in));
  EXPECT_TRUE(has_8bit(m));  // queue with BODY=8BITMIME
  const Dsn d = parse_dsn(m);
  EXPECT_EQ(media_type(d.parts[1].get("content-type")), "message/delivery-status");
  EXPECT_EQ(media_type(d.parts[2].get("content-type")), "message/rfc822");
  EXPECT_EQ(d.parts[2].get("content-transfer-encoding"), "8bit");
  EXPECT_EQ(d.parts[2].body, orig);
  EXPECT_TRUE(test::lower(d.parts[0].get("content-type")).find("us-ascii") != std::string::npos);
}

TEST(Build, Utf8RecipientUsesGlobalTypes) {
  auto in = base();
  const std::string rcpt =
      "j\xC3\xBCrgen@b\xC3\xBC"
      "cher.example";
  in.recipients[0].final_recipient = rcpt;
  in.recipients[0].original_recipient = "utf-8;" + rcpt;
  const std::string orig =
      "Subject: gr\xC3\xBC\xC3\x9F"
      "e\r\nTo: " +
      rcpt + "\r\n\r\nhi\r\n";
  in.original_message = orig;
  EXPECT_TRUE(is_global(in));
  const std::string m = build(in);
  expect_wellformed(m);
  const Dsn d = parse_dsn(m);
  EXPECT_EQ(param(d.top.get("content-type"), "report-type"), "delivery-status");
  EXPECT_EQ(d.parts[0].get("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(d.parts[0].get("content-transfer-encoding"), "8bit");
  EXPECT_NE(d.parts[0].body.find("<" + rcpt + ">"), std::string::npos);
  EXPECT_EQ(media_type(d.parts[1].get("content-type")), "message/global-delivery-status");
  EXPECT_EQ(d.parts[1].get("content-transfer-encoding"), "8bit");
  const auto blocks = status_blocks(d.parts[1].body);
  EXPECT_EQ(blocks[1].get("final-recipient"), "utf-8; " + rcpt);
  EXPECT_EQ(blocks[1].get("original-recipient"), "utf-8;" + rcpt);
  EXPECT_EQ(media_type(d.parts[2].get("content-type")), "message/global");
  EXPECT_EQ(d.parts[2].body, orig);

  in.ret = smtp::Ret::Hdrs;
  EXPECT_EQ(third_part(in).type, "message/global-headers");
}

TEST(Build, Utf8SenderAndSmtputf8EnvelopeAreGlobal) {
  auto in = base();
  in.original_sender = "\xE7\x94\xA8\xE6\x88\xB7@example.com";
  EXPECT_TRUE(is_global(in));
  Dsn d = parse_dsn(build(in));
  EXPECT_EQ(d.top.get("to"), "<" + in.original_sender + ">");
  EXPECT_EQ(media_type(d.parts[1].get("content-type")), "message/global-delivery-status");

  in = base();
  in.smtputf8 = true;  // ASCII everywhere: global report, but the ASCII original stays rfc822
  d = parse_dsn(build(in));
  EXPECT_EQ(media_type(d.parts[1].get("content-type")), "message/global-delivery-status");
  EXPECT_EQ(media_type(d.parts[2].get("content-type")), "message/rfc822");
  EXPECT_FALSE(has_8bit(build(in)));
}

TEST(Build, NonAsciiDiagnosticInAsciiDsnIsReplaced) {
  auto in = base();
  in.recipients[0].diagnostic = "550 5.1.1 Empf\xC3\xA4nger unbekannt \xFF";
  in.original_message = {};
  const std::string m = build(in);
  EXPECT_FALSE(has_8bit(m));
  const auto blocks = status_blocks(parse_dsn(m).parts[1].body);
  EXPECT_EQ(blocks[1].get("diagnostic-code"), "smtp; 550 5.1.1 Empf??nger unbekannt ?");
}

TEST(Build, HeaderInjectionIsNeutralized) {
  auto in = base();
  in.reporting_mta = "gw.example.com\r\nBcc: victim@evil.example";
  in.message_id_domain = "x>\r\nX-Evil: 1";
  in.dsn_id = "abc\r\nX-Evil: 2";
  in.original_sender = "sender@example.com>\r\nBcc: victim@evil.example\r\n\r\nbody";
  in.envid = "id\r\nX-Evil: 3";
  in.recipients[0].final_recipient = "rcpt@example.org\r\nX-Evil: 4";
  in.recipients[0].original_recipient = "rfc822;o@example.org\r\nX-Evil: 5";
  in.recipients[0].remote_mta = "mx.example.org\r\nX-Evil: 6";
  in.recipients[0].diagnostic =
      "550 no\r\nX-Evil: 7\r\n\r\n--=_mailgate-dsn-abcX-Evil2\r\nContent-Type: text/html\n\n<b>";
  in.recipients[0].status = "5.1.1\r\nX-Evil: 8";
  const std::string m = build(in);
  expect_wellformed(m);
  const Dsn d = parse_dsn(m);
  EXPECT_EQ(field_names(d.top),
            (std::vector<std::string>{"from", "to", "subject", "date", "message-id",
                                      "auto-submitted", "mime-version", "content-type"}));
  EXPECT_EQ(d.top.get("from"),
            "Mail Delivery System <MAILER-DAEMON@gw.example.comBcc:victimevil.example>");
  ASSERT_TRUE(d.mp.closed);
  ASSERT_EQ(d.parts.size(), 3u);
  for (const auto& p : d.parts) {
    EXPECT_FALSE(p.has("x-evil"));
    EXPECT_FALSE(p.has("bcc"));
  }
  EXPECT_EQ(d.parts[0].count("content-type"), 1);
  const auto blocks = status_blocks(d.parts[1].body);
  ASSERT_EQ(blocks.size(), 2u);
  for (const auto& b : blocks) {
    for (const auto& f : b.fields) {
      EXPECT_NE(f.first, "x-evil");
      EXPECT_NE(f.first, "!malformed");
    }
  }
  EXPECT_EQ(blocks[1].get("status"), "5.0.0");
  EXPECT_EQ(blocks[1].get("final-recipient"), "rfc822; rcpt@example.org X-Evil: 4");
  EXPECT_EQ(blocks[0].get("original-envelope-id"), "id+0D+0AX-Evil:+203");
  // No line of the whole DSN outside the returned original starts a forged field.
  const std::string outside = m.substr(0, m.find("Content-Description: Original message"));
  for (const auto& l : test::lines(outside)) {
    EXPECT_NE(l.rfind("X-Evil", 0), 0u) << l;
    EXPECT_NE(l.rfind("Bcc", 0), 0u) << l;
  }
}

TEST(Build, BoundaryIsPerturbedWhenTheContentHoldsIt) {
  auto in = base();
  const std::string orig = std::string(kOriginal) +
                           "--=_mailgate-dsn-0123456789abcdef0123456789abcdef\r\n"
                           "--=_mailgate-dsn-0123456789abcdef0123456789abcdef.1--\r\n";
  in.original_message = orig;
  const Dsn d = parse_dsn(build(in));
  const std::string boundary = param(d.top.get("content-type"), "boundary");
  EXPECT_EQ(boundary, "=_mailgate-dsn-0123456789abcdef0123456789abcdef.2");
  ASSERT_EQ(d.parts.size(), 3u);
  EXPECT_EQ(d.parts[2].body, orig);
}

TEST(Build, LongDiagnosticIsFoldedUnder998) {
  auto in = base();
  std::string words = "550 5.1.1";
  while (words.size() < 5000) words += " reason";
  const std::string solid = "550 " + std::string(5000, 'z');
  for (const std::string& diag : {words, solid}) {
    in.recipients[0].diagnostic = diag;
    const std::string m = build(in);
    expect_wellformed(m);
    const auto blocks = status_blocks(parse_dsn(m).parts[1].body);
    const std::string got = blocks[1].get("diagnostic-code");
    if (diag == words) {
      EXPECT_EQ(got, "smtp; " + diag);  // folded at spaces: unfolds to the same text
      for (const auto& l : test::lines(m)) EXPECT_LE(l.size(), 78u) << l;
    } else {
      std::string joined = got;  // hard splits add one space each
      joined.erase(std::remove(joined.begin(), joined.end(), ' '), joined.end());
      EXPECT_EQ(joined, "smtp;550" + std::string(5000, 'z'));
    }
  }
}

// Arbitrary bytes in every field (fixed seed): the DSN stays well-formed, keeps
// its three parts and one status block per recipient, and forges no field.
TEST(Build, ArbitraryBytesNeverBreakTheStructure) {
  std::mt19937 rng(12345);
  const std::string alphabet =
      std::string("\r\n\0\t -:;<>\"=_.@a\x80\xC3\xBC\xFF", 20) + "--=_mailgate-dsn-" + "Bcc: ";
  auto junk = [&](std::size_t max) {
    std::string s;
    const std::size_t n = rng() % (max + 1);
    for (std::size_t i = 0; i < n; ++i) s.push_back(alphabet[rng() % alphabet.size()]);
    return s;
  };
  for (int iter = 0; iter < 300; ++iter) {
    DsnInput in;
    in.reporting_mta = junk(40);
    in.message_id_domain = junk(20);
    in.original_sender = "s" + junk(40);
    in.envid = junk(40);
    in.ret = static_cast<smtp::Ret>(rng() % 3);
    in.smtputf8 = rng() % 2;
    in.dsn_id = junk(40);
    in.now_ms = static_cast<std::int64_t>(rng());
    const std::string original = junk(3000);
    in.original_message = original;
    in.max_returned_body = rng() % 4000;
    const std::size_t n = 1 + rng() % 3;
    for (std::size_t i = 0; i < n; ++i) {
      RecipientReport r;
      r.final_recipient = junk(60);
      r.original_recipient = junk(60);
      r.action = static_cast<Action>(rng() % 4);
      r.status = junk(8);
      r.remote_mta = junk(30);
      r.diagnostic = junk(1500);
      r.last_attempt_ms = rng() % 2 ? 0 : 1795879680000;
      r.will_retry_until_ms = rng() % 2 ? 0 : 1796308089000;
      in.recipients.push_back(r);
    }
    const std::string m = build(in);
    SCOPED_TRACE(iter);
    expect_wellformed(m);
    const Dsn d = parse_dsn(m);
    EXPECT_EQ(field_names(d.top),
              (std::vector<std::string>{"from", "to", "subject", "date", "message-id",
                                        "auto-submitted", "mime-version", "content-type"}));
    ASSERT_TRUE(d.mp.closed);
    ASSERT_EQ(d.parts.size(), returned_content(in) == Returned::None ? 2u : 3u);
    const auto blocks = status_blocks(d.parts[1].body);
    ASSERT_EQ(blocks.size(), n + 1);
    for (const auto& b : blocks) {
      for (const auto& f : b.fields) {
        EXPECT_NE(f.first, "!malformed");
        EXPECT_NE(f.first, "bcc");
      }
    }
    // What the DSN writes itself (all but the returned original) is ASCII unless global.
    const std::string own = m.substr(0, m.find("Content-Description: Original message"));
    if (!is_global(in)) {
      EXPECT_FALSE(has_8bit(own));
    }
  }
}

TEST(Build, DeterministicGolden) {
  auto in = base();
  in.envid = "env-1";
  in.ret = smtp::Ret::Hdrs;
  in.recipients[0].original_recipient = "rfc822;orig@example.org";
  EXPECT_EQ(build(in), build(in));
  const std::string golden =
      "From: Mail Delivery System <MAILER-DAEMON@gw.example.com>\r\n"
      "To: <sender@example.com>\r\n"
      "Subject: Undelivered Mail Returned to Sender\r\n"
      "Date: Sat, 28 Nov 2026 15:28:09 +0000\r\n"
      "Message-ID: <0123456789abcdef0123456789abcdef@gw.example.com>\r\n"
      "Auto-Submitted: auto-replied\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status;\r\n"
      "\tboundary=\"=_mailgate-dsn-0123456789abcdef0123456789abcdef\"\r\n"
      "\r\n"
      "This is a MIME-encapsulated message.\r\n"
      "\r\n"
      "--=_mailgate-dsn-0123456789abcdef0123456789abcdef\r\n"
      "Content-Description: Notification\r\n"
      "Content-Type: text/plain; charset=us-ascii\r\n"
      "\r\n"
      "This is the mail delivery system at gw.example.com.\r\n"
      "\r\n"
      "Your message could not be delivered to one or more recipients. This is a\r\n"
      "permanent error: the mail system will not try again. The recipients and the\r\n"
      "reasons are listed below.\r\n"
      "\r\n"
      "<rcpt@example.org>: delivery failed (status 5.1.1)\r\n"
      "    Remote server: mx.example.org\r\n"
      "    It said: 550 5.1.1 <rcpt@example.org>: Recipient address rejected: User\r\n"
      "    unknown\r\n"
      "\r\n"
      "The header section of the original message is attached.\r\n"
      "\r\n"
      "--=_mailgate-dsn-0123456789abcdef0123456789abcdef\r\n"
      "Content-Description: Delivery report\r\n"
      "Content-Type: message/delivery-status\r\n"
      "\r\n"
      "Original-Envelope-Id: env-1\r\n"
      "Reporting-MTA: dns; gw.example.com\r\n"
      "Arrival-Date: Sat, 28 Nov 2026 14:28:09 +0000\r\n"
      "\r\n"
      "Original-Recipient: rfc822;orig@example.org\r\n"
      "Final-Recipient: rfc822; rcpt@example.org\r\n"
      "Action: failed\r\n"
      "Status: 5.1.1\r\n"
      "Remote-MTA: dns; mx.example.org\r\n"
      "Diagnostic-Code: smtp; 550 5.1.1 <rcpt@example.org>: Recipient address\r\n"
      " rejected: User unknown\r\n"
      "Last-Attempt-Date: Sat, 28 Nov 2026 15:28:00 +0000\r\n"
      "\r\n"
      "--=_mailgate-dsn-0123456789abcdef0123456789abcdef\r\n"
      "Content-Description: Original message headers\r\n"
      "Content-Type: text/rfc822-headers\r\n"
      "\r\n"
      "Received: from client.example ([192.0.2.7] [192.0.2.7])\r\n"
      "\tby gw.example.com (mailgate) with ESMTP id 0123456789abcdef0123456789abcdee\r\n"
      "\tfor <rcpt@example.org>; Sat, 28 Nov 2026 14:28:09 +0000\r\n"
      "From: Sender <sender@example.com>\r\n"
      "To: rcpt@example.org\r\n"
      "Subject: hello\r\n"
      "Message-ID: <m1@example.com>\r\n"
      "\r\n"
      "--=_mailgate-dsn-0123456789abcdef0123456789abcdef--\r\n";
  EXPECT_EQ(build(in), golden);
}

}  // namespace
}  // namespace mailgate::dsn
