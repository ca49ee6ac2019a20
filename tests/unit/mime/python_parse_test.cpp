// Cross-check with a real MIME parser: built messages written to temp files are
// parsed by Debian's /usr/bin/python3 `email` package
// (policy=email.policy.default), which decodes RFC 2047 headers and every
// transfer encoding and records any defect it finds. The script (run by
// tests/support/python_email) prints key/value lines that the tests compare.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>

#include "mime/mime.hpp"
#include "support/python_email.hpp"

namespace mailgate::mime {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

// Run after support/python_email's prelude (msg, defects, out).
constexpr std::string_view kScript = R"PY(
for name in ("from", "to", "subject", "message-id", "x-note", "reply-to"):
    out(name, msg[name])
out("date", msg["date"].datetime.isoformat())
out("type", msg.get_content_type())
parts = list(msg.iter_parts()) if msg.is_multipart() else [msg]
out("parts", len(parts))
for i, p in enumerate(parts):
    defects += len(p.defects)
    out(f"part{i}.type", p.get_content_type())
    out(f"part{i}.charset", p.get_content_charset())
    out(f"part{i}.cte", p["content-transfer-encoding"])
    out(f"part{i}.content", p.get_content().replace("\r\n", "\n"))
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

BuildOptions options() {
  BuildOptions o;
  o.hostname = "mx.example.com";
  o.date = sys_days{2026y / November / 28} + 17h + 4min;
  return o;
}

std::string repeat(std::string_view piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += piece;
  return out;
}

// What Python's get_content() gives once CRLF is read as LF: the text with a
// final line break.
std::string as_python_text(std::string text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

TEST_F(PythonParse, MultipartWithUtf8SubjectAndLongHtml) {
  StructuredMessage m;
  m.from = "Sender <sender@example.com>";
  m.to = {"a@example.org", "B <b@example.net>"};
  m.subject =
      "Sch\xC3\xB6ne Gr\xC3\xBC\xC3\x9F"
      "e \xE2\x80\x94 " +
      repeat("\xE6\x97\xA5\xE6\x9C\xAC ", 20);
  m.text = "Price = 5 \xE2\x82\xAC   \nsecond line\twith tab\t\n" + repeat("long ", 300);
  m.html = "<p>" + repeat("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xF0\x9F\x98\x80", 1249) + "</p>";
  m.headers = {{"X-Note", "\xC3\xA9t\xC3\xA9"}, {"Reply-To", "Replies <r@example.com>"}};
  auto v = parse(build_message(m, options()));
  EXPECT_EQ(v["from"], m.from);
  EXPECT_EQ(v["to"], "a@example.org, B <b@example.net>");
  EXPECT_EQ(v["subject"], m.subject);
  EXPECT_EQ(v["x-note"], "\xC3\xA9t\xC3\xA9");
  EXPECT_EQ(v["reply-to"], "Replies <r@example.com>");
  EXPECT_EQ(v["date"], "2026-11-28T17:04:00+00:00");
  EXPECT_EQ(v["type"], "multipart/alternative");
  ASSERT_EQ(v["parts"], "2");
  EXPECT_EQ(v["part0.type"], "text/plain");
  EXPECT_EQ(v["part0.charset"], "utf-8");
  EXPECT_EQ(v["part0.cte"], "quoted-printable");
  EXPECT_EQ(v["part0.content"], as_python_text(m.text));
  EXPECT_EQ(v["part1.type"], "text/html");
  EXPECT_EQ(v["part1.cte"], "base64");
  EXPECT_EQ(v["part1.content"], as_python_text(m.html));
}

TEST_F(PythonParse, SinglePartShapes) {
  StructuredMessage m;
  m.from = "sender@example.com";
  m.to = {"rcpt@example.org"};
  m.subject = repeat("plain ascii subject ", 10) + "end";
  m.text = "Hello\nWorld\n";
  auto v = parse(build_message(m, options()));
  EXPECT_EQ(v["subject"], m.subject);
  EXPECT_EQ(v["type"], "text/plain");
  EXPECT_EQ(v["part0.cte"], "7bit");
  EXPECT_EQ(v["part0.content"], "Hello\nWorld\n");

  m.text.clear();
  m.html = "<p>" + repeat("Caf\xC3\xA9 au lait, with some plain text. ", 120) + "</p>";
  m.subject = "=?UTF-8?B?QQ==?= is literal";
  v = parse(build_message(m, options()));
  EXPECT_EQ(v["subject"], m.subject);
  EXPECT_EQ(v["type"], "text/html");
  EXPECT_EQ(v["part0.cte"], "quoted-printable");
  EXPECT_EQ(v["part0.content"], as_python_text(m.html));
}

}  // namespace
}  // namespace mailgate::mime
