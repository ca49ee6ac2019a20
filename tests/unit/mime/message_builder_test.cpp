// build_message(): each shape (text, html, both, neither) read back with the
// strict reader (wire format, header order, multipart structure, decoded
// parts equal to the input), a golden message, RFC 2047 subjects, long
// single-line bodies, extra headers (encoding, refusals, header injection,
// Date/Message-ID replacement) and boundary collisions. Dates: date_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <regex>
#include <string>

#include "mime/mime.hpp"
#include "mime_reader.hpp"
#include "text/utf8.hpp"

namespace mailgate::mime {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

const system_clock::time_point kDate = sys_days{2026y / November / 28} + 17h + 4min;

// 1, 2, 3, ...: the Message-ID takes the first two values, the first boundary
// the next two, so both are predictable.
std::function<std::uint64_t()> counter_random() {
  return [n = std::uint64_t{0}]() mutable { return ++n; };
}

BuildOptions fixed_options() {
  BuildOptions options;
  options.hostname = "mx.example.com";
  options.date = kDate;
  options.random = counter_random();
  return options;
}

StructuredMessage basic_message() {
  StructuredMessage m;
  m.from = "Sender <sender@example.com>";
  m.to = {"a@example.org", "B <b@example.net>"};
  m.subject = "Hello";
  return m;
}

std::string repeat(std::string_view piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += piece;
  return out;
}

std::size_t count_characters(std::string_view utf8) {
  return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// "<p>...</p>" of exactly `characters` UTF-8 characters on one line, filled
// with `piece` (cut at a character boundary).
std::string html_line_of(std::size_t characters, std::string_view piece) {
  std::string out = "<p>";
  for (std::size_t count = 3, i = 0; count + 4 < characters; ++count, i = (i + 1) % piece.size()) {
    out += piece[i];
    while ((static_cast<unsigned char>(piece[(i + 1) % piece.size()]) & 0xC0) == 0x80)
      out += piece[++i];
  }
  return out + "</p>";
}

// The top-level entity, after checking the wire format.
test::Entity read_message(const std::string& message) {
  const auto problems = test::wire_format_problems(message);
  for (const auto& p : problems) ADD_FAILURE() << p;
  return test::parse_entity(message);
}

// The parts of a multipart/alternative message, after checking its structure.
std::vector<test::Entity> read_parts(const test::Entity& top) {
  const std::string content_type = top.get("content-type");
  EXPECT_EQ(test::media_type(content_type), "multipart/alternative");
  const std::string boundary = test::param(content_type, "boundary");
  EXPECT_FALSE(boundary.empty());
  EXPECT_LE(boundary.size(), 70u);  // RFC 2046 §5.1.1
  const test::Multipart multipart = test::split_multipart(top.body, boundary);
  EXPECT_TRUE(multipart.closed);
  EXPECT_EQ(multipart.preamble, "");
  EXPECT_EQ(multipart.epilogue, "");
  std::vector<test::Entity> parts;
  for (const auto& text : multipart.parts) {
    EXPECT_EQ(text.find(boundary), std::string::npos) << "boundary inside a part";
    parts.push_back(test::parse_entity(text));
  }
  return parts;
}

// Checks one body entity: its type, a transfer encoding that keeps lines
// short, and that it decodes to the canonical input.
void expect_body(const test::Entity& e, std::string_view media_type, const std::string& input) {
  EXPECT_EQ(test::media_type(e.get("content-type")), media_type);
  EXPECT_EQ(test::lower(test::param(e.get("content-type"), "charset")), "utf-8");
  const std::string cte = e.get("content-transfer-encoding");
  EXPECT_TRUE(cte == "7bit" || cte == "quoted-printable" || cte == "base64") << cte;
  if (cte != "7bit") {
    for (const auto& line : test::crlf_lines(e.body)) EXPECT_LE(line.size(), 76u);
  }
  EXPECT_EQ(test::decode_body(e), test::expected_canonical(input)) << cte;
}

TEST(BuildMessage, GoldenMultipart) {
  StructuredMessage m = basic_message();
  m.text = "Hi there.\n";
  m.html = "<p>Hi there.</p>";
  const std::string boundary = "=_mailgate_00000000000000030000000000000004";
  EXPECT_EQ(build_message(m, fixed_options()),
            "From: Sender <sender@example.com>\r\n"
            "To: a@example.org, B <b@example.net>\r\n"
            "Subject: Hello\r\n"
            "Date: Sat, 28 Nov 2026 17:04:00 +0000\r\n"
            "Message-ID: <00000000000000010000000000000002@mx.example.com>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/alternative;\r\n"
            " boundary=\"" +
                boundary +
                "\"\r\n"
                "\r\n"
                "--" +
                boundary +
                "\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "Hi there.\r\n"
                "\r\n"
                "--" +
                boundary +
                "\r\n"
                "Content-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: 7bit\r\n"
                "\r\n"
                "<p>Hi there.</p>\r\n"
                "\r\n"
                "--" +
                boundary + "--\r\n");
}

TEST(BuildMessage, TextOnly) {
  StructuredMessage m = basic_message();
  m.text = "Line one\nLine two\r\nLine three";
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.names(),
            (std::vector<std::string>{"from", "to", "subject", "date", "message-id", "mime-version",
                                      "content-type", "content-transfer-encoding"}));
  EXPECT_EQ(top.get("from"), "Sender <sender@example.com>");
  EXPECT_EQ(top.get("to"), "a@example.org, B <b@example.net>");
  EXPECT_EQ(top.get("subject"), "Hello");
  EXPECT_EQ(top.get("date"), "Sat, 28 Nov 2026 17:04:00 +0000");
  EXPECT_EQ(top.get("message-id"), "<00000000000000010000000000000002@mx.example.com>");
  EXPECT_EQ(top.get("mime-version"), "1.0");
  EXPECT_EQ(top.get("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(top.get("content-transfer-encoding"), "7bit");
  EXPECT_EQ(top.body, "Line one\r\nLine two\r\nLine three\r\n");
  expect_body(top, "text/plain", m.text);
}

TEST(BuildMessage, HtmlOnly) {
  StructuredMessage m = basic_message();
  m.html = "<html><body><p>caf\xC3\xA9</p></body></html>\n";
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.get("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(top.get("content-transfer-encoding"), "quoted-printable");
  expect_body(top, "text/html", m.html);
}

TEST(BuildMessage, BothGiveMultipartAlternativeTextFirst) {
  StructuredMessage m = basic_message();
  m.text = "Plain version with caf\xC3\xA9.";
  m.html = "<p>HTML version with caf\xC3\xA9.</p>";
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.names(), (std::vector<std::string>{"from", "to", "subject", "date", "message-id",
                                                   "mime-version", "content-type"}));
  const auto parts = read_parts(top);
  ASSERT_EQ(parts.size(), 2u);
  expect_body(parts[0], "text/plain", m.text);
  expect_body(parts[1], "text/html", m.html);
  EXPECT_EQ(parts[0].names(),
            (std::vector<std::string>{"content-type", "content-transfer-encoding"}));
}

TEST(BuildMessage, NeitherGivesAnEmptyTextPart) {
  const std::string message = build_message(basic_message(), fixed_options());
  const auto top = read_message(message);
  EXPECT_EQ(top.get("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(top.body, "");
  EXPECT_EQ(message.substr(message.size() - 4), "\r\n\r\n");
}

TEST(BuildMessage, EmptySubjectIsOmitted) {
  StructuredMessage m = basic_message();
  m.subject.clear();
  m.text = "x";
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.count("subject"), 0);
}

TEST(BuildMessage, NonAsciiSubjectIsEncoded) {
  StructuredMessage m = basic_message();
  m.subject =
      "Gr\xC3\xBC\xC3\x9F"
      "e aus K\xC3\xB6ln \xE2\x80\x94 a subject long enough for several "
      "encoded-words \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x98\x80 and then some more text";
  m.text = "x";
  const std::string message = build_message(m, fixed_options());
  const auto top = read_message(message);
  const test::Field* subject = top.find("subject");
  ASSERT_NE(subject, nullptr);
  EXPECT_EQ(test::decode_rfc2047(subject->value), m.subject);
  const auto lines = test::crlf_lines("Subject:" + subject->raw_value);
  EXPECT_GT(lines.size(), 1u);
  for (const auto& line : lines) {
    EXPECT_LE(line.size(), 78u) << line;
    const std::string word = line.substr(line.find("=?"));
    EXPECT_LE(word.size(), 75u);
    const auto parsed = test::parse_encoded_word(word);
    ASSERT_TRUE(parsed.has_value()) << word;
    EXPECT_TRUE(text::valid_utf8(base64_decode(parsed->payload).value_or("\xFF")));
  }
  // Only the builder's own ASCII in the header section.
  const std::string header = message.substr(0, message.find("\r\n\r\n"));
  EXPECT_TRUE(std::all_of(header.begin(), header.end(),
                          [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
}

TEST(BuildMessage, LongSingleLineUtf8HtmlComesOutInShortLines) {
  // 5,000 characters on one line: mostly non-ASCII (base64) and mostly ASCII
  // with some UTF-8 (quoted-printable); alone and next to a text part.
  const std::string cjk =
      html_line_of(5000, "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xF0\x9F\x98\x80");
  const std::string latin = html_line_of(5000, "Caf\xC3\xA9 au lait, with some plain text. ");
  ASSERT_EQ(count_characters(cjk), 5000u);
  ASSERT_EQ(count_characters(latin), 5000u);
  for (const std::string* html_ptr : {&cjk, &latin}) {
    const std::string& html = *html_ptr;
    for (const bool with_text : {false, true}) {
      StructuredMessage m = basic_message();
      m.subject =
          "Sch\xC3\xB6ne Gr\xC3\xBC\xC3\x9F"
          "e";
      m.html = html;
      if (with_text) m.text = "Plain\nversion";
      const std::string message = build_message(m, fixed_options());
      const auto top = read_message(message);
      for (const auto& line : test::crlf_lines(message)) EXPECT_LE(line.size(), 78u);
      EXPECT_EQ(test::decode_rfc2047(top.get("subject")), m.subject);
      const test::Entity* html_entity = &top;
      std::vector<test::Entity> parts;
      if (with_text) {
        parts = read_parts(top);
        ASSERT_EQ(parts.size(), 2u);
        expect_body(parts[0], "text/plain", m.text);
        html_entity = &parts[1];
      }
      expect_body(*html_entity, "text/html", html);
      EXPECT_EQ(html_entity->get("content-transfer-encoding"),
                html_ptr == &cjk ? "base64" : "quoted-printable");
    }
  }
}

TEST(BuildMessage, LongAsciiLineIsQuotedPrintable) {
  StructuredMessage m = basic_message();
  m.text = repeat("word ", 1000);
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.get("content-transfer-encoding"), "quoted-printable");
  expect_body(top, "text/plain", m.text);
}

TEST(BuildMessage, EveryShapeReadsBack) {
  const std::string texts[] = {
      "",
      "short ascii",
      "ends with LF\n\n",
      repeat("x", 2000),
      repeat("\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 ", 300),
      "trailing spaces   \nand tabs\t\t\nlone\rCR, NUL \0 and = signs",
      "--=_mailgate_ lookalike\n--\n.\nFrom the start\n",
  };
  const std::string subjects[] = {"", "ascii", repeat("long subject ", 20) + "end",
                                  repeat("\xC3\xA9t\xC3\xA9 ", 30)};
  for (const auto& text : texts) {
    for (const auto& html : texts) {
      for (const auto& subject : subjects) {
        StructuredMessage m = basic_message();
        m.text = text;
        m.html = html;
        m.subject = subject;
        const auto top = read_message(build_message(m, fixed_options()));
        if (subject.empty()) {
          EXPECT_EQ(top.count("subject"), 0);
        } else {
          EXPECT_EQ(test::decode_rfc2047(top.get("subject")), subject);
        }
        if (!text.empty() && !html.empty()) {
          const auto parts = read_parts(top);
          ASSERT_EQ(parts.size(), 2u);
          expect_body(parts[0], "text/plain", text);
          expect_body(parts[1], "text/html", html);
        } else if (!html.empty()) {
          expect_body(top, "text/html", html);
        } else {
          expect_body(top, "text/plain", text);
        }
      }
    }
  }
}

TEST(BuildMessage, LongToListIsFolded) {
  StructuredMessage m = basic_message();
  m.to.clear();
  for (int i = 0; i < 40; ++i)
    m.to.push_back("Recipient " + std::to_string(i) + " <r" + std::to_string(i) + "@example.org>");
  m.text = "x";
  const auto top = read_message(build_message(m, fixed_options()));
  const test::Field* to = top.find("to");
  ASSERT_NE(to, nullptr);
  std::string joined;
  for (const auto& address : m.to) joined += (joined.empty() ? "" : ", ") + address;
  EXPECT_EQ(test::unfold(to->raw_value), " " + joined);
  const auto lines = test::crlf_lines("To:" + to->raw_value);
  EXPECT_GT(lines.size(), 10u);
  for (const auto& line : lines) EXPECT_LE(line.size(), 78u);
}

TEST(BuildMessage, Utf8AddressesAreCopiedVerbatim) {
  StructuredMessage m = basic_message();
  m.from =
      "J\xC3\xB6rg <j\xC3\xB6rg@b\xC3\xBC"
      "cher.example>";
  m.to = {"\xE7\x94\xB0\xE4\xB8\xAD <tanaka@example.jp>"};
  m.text = "x";
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.get("from"), m.from);
  EXPECT_EQ(top.get("to"), m.to[0]);
}

// The field a BuildError names, or "" when build_message() succeeds.
std::string refused_field(const StructuredMessage& m, BuildOptions options = fixed_options()) {
  try {
    build_message(m, options);
  } catch (const BuildError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(e.field() + ": ", 0), 0u) << e.what();
    return e.field();
  }
  return "";
}

std::string refusal_message(const StructuredMessage& m) {
  try {
    build_message(m, fixed_options());
  } catch (const BuildError& e) {
    return e.what();
  }
  return "";
}

TEST(BuildMessage, AddressesAreRequiredAndCannotInject) {
  StructuredMessage m = basic_message();
  m.from.clear();
  EXPECT_EQ(refused_field(m), "from");
  m = basic_message();
  m.from = "a@example.com\r\nBcc: victim@example.org";
  EXPECT_EQ(refused_field(m), "from");
  EXPECT_NE(refusal_message(m).find("header injection"), std::string::npos);
  m = basic_message();
  m.from = std::string("a@example.com\0", 14);
  EXPECT_EQ(refused_field(m), "from");
  m = basic_message();
  m.to.clear();
  EXPECT_EQ(refused_field(m), "to");
  m = basic_message();
  m.to[1] = "b@example.org\nX-Injected: yes";
  EXPECT_EQ(refused_field(m), "to[1]");
  m = basic_message();
  m.to[0].clear();
  EXPECT_EQ(refused_field(m), "to[0]");
  m = basic_message();
  m.to[0] = std::string(1200, 'a') + "@example.org";
  EXPECT_EQ(refused_field(m), "to");
}

TEST(BuildMessage, SubjectAndBodiesAreValidated) {
  StructuredMessage m = basic_message();
  m.subject = "hi\r\nBcc: victim@example.org";
  EXPECT_EQ(refused_field(m), "subject");
  m = basic_message();
  m.subject = "caf\xC3";
  EXPECT_EQ(refused_field(m), "subject");
  m = basic_message();
  m.text = "bad \xFF utf-8";
  EXPECT_EQ(refused_field(m), "text");
  m = basic_message();
  m.html = "bad \xED\xA0\x80 surrogate";
  EXPECT_EQ(refused_field(m), "html");
  m = basic_message();
  m.from = "J\xC3 <j@example.com>";
  EXPECT_EQ(refused_field(m), "from");
}

TEST(BuildMessage, ExtraHeadersAreEncodedAndKeptInOrder) {
  StructuredMessage m = basic_message();
  m.text = "x";
  m.headers = {{"X-Mailer", "inject-client 1.0"},
               {"X-Note",
                "Gr\xC3\xBC\xC3\x9F"
                "e"},
               {"Reply-To", "J\xC3\xB6rg <j@example.com>"},
               {"X-Empty", ""},
               {"x-lower", "kept as written"},
               {"List-Unsubscribe", "<mailto:u@example.com>, <https://example.com/u?id=1>"}};
  const std::string message = build_message(m, fixed_options());
  const auto top = read_message(message);
  EXPECT_EQ(top.names(), (std::vector<std::string>{"from", "to", "subject", "date", "message-id",
                                                   "mime-version", "x-mailer", "x-note", "reply-to",
                                                   "x-empty", "x-lower", "list-unsubscribe",
                                                   "content-type", "content-transfer-encoding"}));
  EXPECT_EQ(top.get("x-mailer"), "inject-client 1.0");
  EXPECT_EQ(top.get("x-note").rfind("=?UTF-8?B?", 0), 0u);
  EXPECT_EQ(test::decode_rfc2047(top.get("x-note")),
            "Gr\xC3\xBC\xC3\x9F"
            "e");
  // An address field is not RFC 2047-encoded as a whole (RFC 2047 §5).
  EXPECT_EQ(top.get("reply-to"), "J\xC3\xB6rg <j@example.com>");
  EXPECT_EQ(top.get("list-unsubscribe"), "<mailto:u@example.com>, <https://example.com/u?id=1>");
  EXPECT_NE(message.find("\r\nX-Empty:\r\n"), std::string::npos);
  EXPECT_NE(message.find("\r\nx-lower: kept as written\r\n"), std::string::npos);
}

TEST(BuildMessage, ExtraHeaderNamesAreValidated) {
  for (const std::string& name :
       {std::string(), std::string("X Bad"), std::string("X:Bad"), std::string("X-\xC3\xA9"),
        std::string("X-\x01"), std::string(77, 'X')}) {
    StructuredMessage m = basic_message();
    m.headers = {{"X-Fine", "ok"}, {name, "value"}};
    EXPECT_EQ(refused_field(m), "headers[1]") << name;
  }
  StructuredMessage m = basic_message();
  m.headers = {{std::string(76, 'X'), "longest name allowed"}};
  EXPECT_EQ(refused_field(m), "");
}

TEST(BuildMessage, ExtraHeaderValuesCannotInject) {
  for (const std::string& value :
       {std::string("v\r\nBcc: victim@example.org"), std::string("v\nX: y"), std::string("v\rX"),
        std::string("nul\0", 4), std::string("esc\x1B"), std::string("bad \xC3 utf-8")}) {
    StructuredMessage m = basic_message();
    m.headers = {{"X-Value", value}};
    EXPECT_EQ(refused_field(m), "headers[0]") << value;
  }
  StructuredMessage m = basic_message();
  m.headers = {{"X-Value", "v\r\nBcc: victim@example.org"}};
  EXPECT_NE(refusal_message(m).find("header injection"), std::string::npos);
  m.headers = {{"X-Tab", "tab\tis fine"}};
  EXPECT_EQ(refused_field(m), "");
}

TEST(BuildMessage, HeadersTheBuilderWritesAreRefused) {
  for (const std::string name : {"From", "to", "SUBJECT", "MIME-Version", "Content-Type",
                                 "content-transfer-encoding", "Content-Disposition", "Bcc"}) {
    StructuredMessage m = basic_message();
    m.headers = {{name, "x"}};
    EXPECT_EQ(refused_field(m), "headers[0]") << name;
  }
  StructuredMessage m = basic_message();
  m.headers = {{"Subject", "x"}};
  EXPECT_NE(refusal_message(m).find("\"subject\" field"), std::string::npos) << refusal_message(m);
}

TEST(BuildMessage, SingleOccurrenceHeadersAppearOnce) {
  for (const std::string name :
       {"Date", "Message-ID", "Sender", "Reply-To", "Cc", "In-Reply-To", "References"}) {
    const std::string value = name == "Date" ? "Sat, 28 Nov 2026 17:04:00 +0000" : "<a@b.example>";
    StructuredMessage m = basic_message();
    m.headers = {{name, value}, {"X-Other", "x"}, {test::lower(name), value}};
    EXPECT_EQ(refused_field(m), "headers[2]") << name;
  }
  StructuredMessage m = basic_message();
  m.headers = {{"X-Tag", "a"}, {"X-Tag", "b"}, {"Received", "one"}, {"Received", "two"}};
  EXPECT_EQ(refused_field(m), "");
}

TEST(BuildMessage, UserMessageIdReplacesTheGeneratedOne) {
  StructuredMessage m = basic_message();
  m.text = "x";
  m.headers = {{"X-First", "1"}, {"message-id", "<thread-42.x@app.example>"}};
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.count("message-id"), 1);
  EXPECT_EQ(top.get("message-id"), "<thread-42.x@app.example>");
  EXPECT_EQ(top.names()[4], "message-id");  // in the generated one's place
  for (const std::string good : {"<a@[192.0.2.1]>", "<a.b+c@d-e.example>"}) {
    m.headers = {{"Message-ID", good}};
    EXPECT_EQ(refused_field(m), "") << good;
  }
  for (const std::string bad : {"a@b.example", "<a b@c.example>", "<@b.example>", "<a@>",
                                "<a@b.example> trailing", "<a..b@c.example>", "<a@b@c>", ""}) {
    m.headers = {{"Message-ID", bad}};
    EXPECT_EQ(refused_field(m), "headers[0]") << bad;
  }
}

TEST(BuildMessage, UserDateReplacesTheGeneratedOne) {
  StructuredMessage m = basic_message();
  m.text = "x";
  m.headers = {{"DATE", "Mon, 1 Dec 2025 08:00 -0500"}};
  const auto top = read_message(build_message(m, fixed_options()));
  EXPECT_EQ(top.count("date"), 1);
  EXPECT_EQ(top.get("date"), "Mon, 1 Dec 2025 08:00 -0500");
  EXPECT_EQ(top.names()[3], "date");
  for (const std::string good : {"1 Dec 2025 08:00:00 +0100", "sat,28 nov 2026 17:04:60 +1400"}) {
    m.headers = {{"Date", good}};
    EXPECT_EQ(refused_field(m), "") << good;
  }
  for (const std::string bad :
       {"yesterday", "Sat, 28 Nov 2026 25:00:00 +0000", "Sat, 28 Nov 2026 17:04:00 GMT",
        "Sat 28 Nov 2026 17:04:00 +0000", "28 Nov 26 17:04 +0000", "Sat, 32 Nov 2026 17:04 +0000",
        "Sat, 28 Foo 2026 17:04 +0000", "Sat, 28 Nov 2026 17:04 +0000 (comment)",
        "Sat, 28 Nov 2026 17:4 +0000", ""}) {
    m.headers = {{"Date", bad}};
    EXPECT_EQ(refused_field(m), "headers[0]") << bad;
  }
}

TEST(BuildMessage, HostnameMustFitAMessageId) {
  for (const std::string bad : {"", "bad host", "a..b", "x>y", ".example", "h\xC3\xA9.example"}) {
    BuildOptions options = fixed_options();
    options.hostname = bad;
    EXPECT_EQ(refused_field(basic_message(), options), "options.hostname") << bad;
  }
  BuildOptions options = fixed_options();
  options.hostname = "[192.0.2.1]";
  EXPECT_EQ(refused_field(basic_message(), options), "");
}

TEST(BuildMessage, BoundaryNeverOccursInAPart) {
  // The first boundary the counter source gives is in the text: the builder
  // must draw another.
  const std::string first = "=_mailgate_00000000000000030000000000000004";
  StructuredMessage m = basic_message();
  m.text = "quoting a boundary:\n--" + first + "\n--" + first + "--\n";
  m.html = "<p>x</p>";
  const std::string message = build_message(m, fixed_options());
  const auto top = read_message(message);
  EXPECT_EQ(test::param(top.get("content-type"), "boundary"),
            "=_mailgate_00000000000000050000000000000006");
  const auto parts = read_parts(top);
  ASSERT_EQ(parts.size(), 2u);
  expect_body(parts[0], "text/plain", m.text);

  // A source that only ever gives the same value cannot get past it.
  BuildOptions stuck = fixed_options();
  stuck.random = [] { return std::uint64_t{3}; };
  m.text = "--=_mailgate_00000000000000030000000000000003";
  EXPECT_EQ(refused_field(m, stuck), "options.random");
}

TEST(BuildMessage, DefaultRandomAndDate) {
  BuildOptions options;
  options.hostname = "gw.example.com";
  StructuredMessage m = basic_message();
  m.text = "a";
  m.html = "<p>a</p>";
  const auto first = read_message(build_message(m, options));
  const auto second = read_message(build_message(m, options));
  const std::regex message_id("<[0-9a-f]{32}@gw\\.example\\.com>");
  EXPECT_TRUE(std::regex_match(first.get("message-id"), message_id)) << first.get("message-id");
  EXPECT_NE(first.get("message-id"), second.get("message-id"));
  EXPECT_NE(test::param(first.get("content-type"), "boundary"),
            test::param(second.get("content-type"), "boundary"));
  const std::regex date(
      "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} 20[0-9]{2} "
      "[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000");
  EXPECT_TRUE(std::regex_match(first.get("date"), date)) << first.get("date");
}

TEST(BuildMessage, BuildErrorCarriesTheField) {
  const BuildError error("headers[3]", "contains CR or LF (header injection)");
  EXPECT_EQ(error.field(), "headers[3]");
  EXPECT_STREQ(error.what(), "headers[3]: contains CR or LF (header injection)");
}

}  // namespace
}  // namespace mailgate::mime
