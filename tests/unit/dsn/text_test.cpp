// The dsn module's text helpers: sanitizing, folding, line normalization,
// header section (dates: tests/unit/mime/date_test.cpp).
#include <gtest/gtest.h>

#include "dsn/dsn.hpp"
#include "dsn/text.hpp"
#include "mime.hpp"

namespace mailgate::dsn {
namespace {

using namespace std::string_literals;
using detail::fold;
using detail::kMaxLine;
using detail::normalize_lines;
using detail::sanitize;

TEST(Sanitize, ControlsBecomeSingleSpaces) {
  EXPECT_EQ(sanitize("  550 user\r\nBcc: x\0y\t z  "s, false, 100), "550 user Bcc: x y z");
  EXPECT_EQ(sanitize(std::string("a\0b", 3), false, 100), "a b");
  EXPECT_EQ(sanitize("\r\n\r\n", false, 100), "");
  EXPECT_EQ(sanitize("a\x7f"
                     "b",
                     false, 100),
            "a b");
}

TEST(Sanitize, NonAsciiOnlyAsValidUtf8WhenAllowed) {
  const std::string u = "j\xC3\xBCrgen";  // jürgen
  EXPECT_EQ(sanitize(u, true, 100), u);
  EXPECT_EQ(sanitize(u, false, 100), "j??rgen");
  EXPECT_EQ(sanitize("a\xC3(b", true, 100), "a?(b");      // truncated sequence
  EXPECT_EQ(sanitize("\xC0\xAF", true, 100), "??");       // overlong '/'
  EXPECT_EQ(sanitize("\xED\xA0\x80", true, 100), "???");  // surrogate
  EXPECT_EQ(sanitize("\xF0\x9F\x98\x80", true, 100), "\xF0\x9F\x98\x80");
}

TEST(Sanitize, CapsAtACharacterBoundary) {
  EXPECT_EQ(sanitize("abcdef", false, 4), "abcd");
  EXPECT_EQ(sanitize("ab\xC3\xBC", true, 3), "ab");
  EXPECT_EQ(sanitize("ab cd", false, 3), "ab");
}

TEST(CleanToken, KeepsHostCharactersOnly) {
  EXPECT_EQ(detail::clean_token("gw.example.com", true, 255, "x"), "gw.example.com");
  EXPECT_EQ(detail::clean_token("gw\r\nBcc: a@b>", true, 255, "x"), "gwBcc:ab");
  EXPECT_EQ(detail::clean_token("[192.0.2.1]", true, 255, "x"), "[192.0.2.1]");
  EXPECT_EQ(detail::clean_token("[192.0.2.1]", false, 255, "x"), "192.0.2.1");
  EXPECT_EQ(detail::clean_token("\r\n", true, 255, "localhost"), "localhost");
}

TEST(Fold, ShortValueStaysOnOneLine) {
  std::string out;
  fold(out, "Diagnostic-Code: smtp; ", "550 5.1.1 user unknown", " ");
  EXPECT_EQ(out, "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n");
}

TEST(Fold, BreaksAtSpacesAndUnfoldsToTheSameText) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "word" + std::to_string(i) + " ";
  text.pop_back();
  std::string out;
  fold(out, "X: ", text, " ");
  for (const auto& l : test::lines(out)) EXPECT_LE(l.size(), 78u) << l;
  std::string unfolded = out;
  for (std::size_t p; (p = unfolded.find("\r\n ")) != std::string::npos;) unfolded.erase(p, 2);
  EXPECT_EQ(unfolded, "X: " + text + "\r\n");
}

TEST(Fold, HugeWordIsSplitUnder998) {
  const std::string word(5000, 'a');
  std::string out;
  fold(out, "Diagnostic-Code: smtp; ", word, " ");
  const auto ls = test::lines(out);
  EXPECT_GE(ls.size(), 6u);
  std::size_t total = 0;
  for (std::size_t i = 0; i < ls.size(); ++i) {
    EXPECT_LE(ls[i].size(), kMaxLine);
    if (i > 0) {
      EXPECT_EQ(ls[i][0], ' ');
    }
    total += ls[i].size();
  }
  EXPECT_EQ(total, 23 + 5000 + ls.size() - 1);  // nothing lost
}

TEST(Fold, SplitNeverCutsAUtf8Character) {
  std::string word;
  for (int i = 0; i < 1000; ++i) word += "\xE2\x82\xAC";  // €
  std::string out;
  fold(out, "X: ", word, " ");
  for (const auto& l : test::lines(out)) {
    EXPECT_LE(l.size(), kMaxLine);
    EXPECT_EQ(sanitize(l, true, 10000), l.front() == ' ' ? l.substr(1) : l);
  }
}

TEST(NormalizeLines, ValidInputIsCopied) {
  std::string out;
  normalize_lines("A: b\r\n\r\nbody\r\n", out);
  EXPECT_EQ(out, "A: b\r\n\r\nbody\r\n");
}

TEST(NormalizeLines, RepairsLineEndsNulAndLongLines) {
  std::string out;
  normalize_lines(std::string("a\rb\nc\r\nd\0e", 10), out);
  EXPECT_EQ(out, "a\r\nb\r\nc\r\nde\r\n");
  out.clear();
  normalize_lines(std::string(2500, 'x'), out);
  EXPECT_EQ(out, std::string(998, 'x') + "\r\n" + std::string(998, 'x') + "\r\n" +
                     std::string(504, 'x') + "\r\n");
  out.clear();
  normalize_lines(std::string(998, 'x') + std::string(1, '\0') + "y", out);
  EXPECT_EQ(out, std::string(998, 'x') + "\r\ny\r\n");
  out.clear();
  normalize_lines("", out);
  EXPECT_EQ(out, "");
}

TEST(HeaderSection, EndsAtTheFirstEmptyLine) {
  EXPECT_EQ(header_section("A: b\r\nC: d\r\n\r\nbody\r\n\r\nmore"), "A: b\r\nC: d\r\n");
  EXPECT_EQ(header_section("A: b\r\n"), "A: b\r\n");   // no body
  EXPECT_EQ(header_section("A: b"), "A: b");           // no line end at all
  EXPECT_EQ(header_section("\r\nbody only\r\n"), "");  // no headers
  EXPECT_EQ(header_section(""), "");
  EXPECT_EQ(header_section("A: b\n\nbody"), "A: b\n");  // bare LF tolerated
}

}  // namespace
}  // namespace mailgate::dsn
