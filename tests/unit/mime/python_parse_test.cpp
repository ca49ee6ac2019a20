// Cross-check with a real MIME parser: built messages written to temp files are
// parsed by Debian's /usr/bin/python3 `email` package
// (policy=email.policy.default), which decodes RFC 2047 headers and every
// transfer encoding and records any defect it finds. The script prints
// "key<TAB>value" lines (CR, LF, backslash escaped) that the tests compare.
#include <gtest/gtest.h>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "mime/mime.hpp"

namespace mailgate::mime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono;
using namespace std::chrono_literals;

constexpr const char* kPython = "/usr/bin/python3";

constexpr std::string_view kScript = R"PY(
import sys, email, email.policy

sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")

def out(key, value):
    v = str(value).replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    print(f"{key}\t{v}")

with open(sys.argv[1], "rb") as f:
    msg = email.message_from_bytes(f.read(), policy=email.policy.default)
defects = len(msg.defects)
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
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " is missing";
    char tmpl[] = "/tmp/mailgate-mime-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ / "parse.py") << kScript;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Writes the message to a file, runs the script on it, returns its key/value output.
  std::map<std::string, std::string> parse(const std::string& message) {
    const fs::path file = dir_ / ("msg" + std::to_string(++count_) + ".eml");
    std::ofstream(file, std::ios::binary) << message;
    const std::string command = std::string(kPython) + " -I " + (dir_ / "parse.py").string() + " " +
                                file.string() + " 2>&1";
    std::map<std::string, std::string> values;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
      ADD_FAILURE() << "popen failed";
      return values;
    }
    std::string all;
    char buffer[4096];
    for (std::size_t got; (got = fread(buffer, 1, sizeof buffer, pipe)) > 0;)
      all.append(buffer, got);
    EXPECT_EQ(pclose(pipe), 0) << all;
    std::size_t pos = 0;
    while (pos < all.size()) {
      std::size_t eol = all.find('\n', pos);
      if (eol == std::string::npos) eol = all.size();
      const std::string line = all.substr(pos, eol - pos);
      pos = eol + 1;
      const std::size_t tab = line.find('\t');
      if (tab == std::string::npos) continue;
      std::string value;
      for (std::size_t i = tab + 1; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          const char c = line[++i];
          value.push_back(c == 'r' ? '\r' : c == 'n' ? '\n' : c);
        } else {
          value.push_back(line[i]);
        }
      }
      values[line.substr(0, tab)] = value;
    }
    EXPECT_EQ(values["defects"], "0") << all;
    return values;
  }

  fs::path dir_;
  int count_ = 0;
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
