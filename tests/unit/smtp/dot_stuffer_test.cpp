// Unit tests for smtp/dot_stuffer: leading dots, dots and CRLFs split across
// feed() calls, a "." line in the content, missing final CRLF, bare LF / bare
// CR normalization, empty body, reuse after finish(); a differential test
// against a straightforward reference at every split; and a round trip through
// smtp::DataScanner (Dot mode) that must give back the CRLF-normalized body.
#include "smtp/dot_stuffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "smtp/data_scanner.hpp"

namespace mailgate::smtp {
namespace {

// Encodes `body` cut at the (sorted) positions.
std::string stuff(std::string_view body, const std::vector<std::size_t>& cuts = {}) {
  DotStuffer d;
  std::string out;
  std::size_t prev = 0;
  std::vector<std::size_t> points = cuts;
  points.push_back(body.size());
  for (std::size_t cut : points) {
    d.feed(body.substr(prev, cut - prev), out);
    prev = cut;
  }
  d.finish(out);
  return out;
}

// Reference: CR LF, bare CR and bare LF all become CRLF.
std::string normalize(std::string_view in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\r') {
      out += "\r\n";
      if (i + 1 < in.size() && in[i + 1] == '\n') ++i;
    } else if (in[i] == '\n') {
      out += "\r\n";
    } else {
      out += in[i];
    }
  }
  return out;
}

// Reference encoder, line by line.
std::string reference(std::string_view body) {
  const std::string n = normalize(body);
  std::string out;
  bool bol = true;
  for (char c : n) {
    if (bol && c == '.') out += '.';
    out += c;
    bol = c == '\n';
  }
  if (!bol) out += "\r\n";
  out += ".\r\n";
  return out;
}

struct Case {
  const char* name;
  std::string body;
  std::string wire;
};

class DotStufferCase : public ::testing::TestWithParam<Case> {};

TEST_P(DotStufferCase, AllSplits) {
  const Case& c = GetParam();
  EXPECT_EQ(stuff(c.body), c.wire);
  EXPECT_EQ(reference(c.body), c.wire);  // the reference agrees with the table
  for (std::size_t i = 0; i <= c.body.size(); ++i) {
    EXPECT_EQ(stuff(c.body, {i}), c.wire) << "split at " << i;
    for (std::size_t j = i; j <= c.body.size(); ++j) {
      EXPECT_EQ(stuff(c.body, {i, j}), c.wire) << "split at " << i << "," << j;
    }
  }
  std::vector<std::size_t> all;
  for (std::size_t i = 1; i < c.body.size(); ++i) all.push_back(i);
  EXPECT_EQ(stuff(c.body, all), c.wire) << "bytewise";
}

INSTANTIATE_TEST_SUITE_P(
    All, DotStufferCase,
    ::testing::Values(
        Case{"empty", "", ".\r\n"},
        Case{"plain", "Subject: x\r\n\r\nhello\r\n", "Subject: x\r\n\r\nhello\r\n.\r\n"},
        Case{"no_trailing_crlf", "a\r\nb", "a\r\nb\r\n.\r\n"},
        Case{"leading_dot_first_line", ".hidden\r\n", "..hidden\r\n.\r\n"},
        Case{"dot_line_in_content", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
        Case{"only_dot", ".", "..\r\n.\r\n"}, Case{"only_dot_crlf", ".\r\n", "..\r\n.\r\n"},
        Case{"double_dots", "..\r\n...x\r\n", "...\r\n....x\r\n.\r\n"},
        Case{"dot_not_at_line_start", "a.b\r\n x.\r\n", "a.b\r\n x.\r\n.\r\n"},
        Case{"many_dot_lines", ".\r\n.\r\n.\r\n", "..\r\n..\r\n..\r\n.\r\n"},
        Case{"bare_lf", "a\nb\n", "a\r\nb\r\n.\r\n"},
        Case{"bare_lf_dot", "a\n.\nb", "a\r\n..\r\nb\r\n.\r\n"},
        Case{"bare_cr", "a\rb\r", "a\r\nb\r\n.\r\n"},
        Case{"bare_cr_dot", "a\r.\r", "a\r\n..\r\n.\r\n"},
        Case{"cr_cr_lf", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"},
        Case{"lf_cr", "a\n\rb", "a\r\n\r\nb\r\n.\r\n"},
        Case{"smuggling_lf_dot_lf", "x\n.\nMAIL FROM:<e@v>\n",
             "x\r\n..\r\nMAIL FROM:<e@v>\r\n.\r\n"},
        Case{"smuggling_cr_dot_cr", "x\r.\rRCPT", "x\r\n..\r\nRCPT\r\n.\r\n"},
        Case{"crlf_dot_crlf_with_bare", "a\r\n.\nb\r.\r\n", "a\r\n..\r\nb\r\n..\r\n.\r\n"},
        Case{"empty_lines", "\r\n\r\n", "\r\n\r\n.\r\n"}, Case{"only_cr", "\r", "\r\n.\r\n"},
        Case{"only_lf", "\n", "\r\n.\r\n"},
        Case{"nul_and_8bit", std::string("a\0b\xff\r\n", 6), std::string("a\0b\xff\r\n.\r\n", 9)}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(DotStuffer, AppendsToOut) {
  DotStuffer d;
  std::string out = "DATA-prefix|";
  d.feed(".x\r\n", out);
  d.finish(out);
  EXPECT_EQ(out, "DATA-prefix|..x\r\n.\r\n");
}

TEST(DotStuffer, ReusableAfterFinish) {
  DotStuffer d;
  std::string a, b;
  d.feed("x", a);  // mid-line
  d.finish(a);
  d.feed(".y\r", b);  // starts a fresh message at a line start
  d.finish(b);
  EXPECT_EQ(a, "x\r\n.\r\n");
  EXPECT_EQ(b, "..y\r\n.\r\n");
  // A CR at the end of one message does not swallow the next message's LF.
  std::string c;
  d.feed("\nz", c);
  d.finish(c);
  EXPECT_EQ(c, "\r\nz\r\n.\r\n");
}

TEST(DotStuffer, EmptyFeedsChangeNothing) {
  DotStuffer d;
  std::string out;
  d.feed("a\r", out);
  d.feed("", out);
  d.feed("\n.", out);
  d.feed("", out);
  d.finish(out);
  EXPECT_EQ(out, "a\r\n..\r\n.\r\n");
}

TEST(DotStuffer, LongLinesAndManyBareCrsAreLinear) {
  // Only a smoke test for the LF cache: 1 MiB of bare CRs then one LF.
  std::string body(1 << 20, '\r');
  body += "x\n";
  std::string out;
  DotStuffer d;
  d.feed(body, out);
  d.finish(out);
  EXPECT_EQ(out.size(), (std::size_t{1} << 20) * 2 + 3 + 3);
}

// Random bodies over an alphabet rich in '.', CR and LF: the stuffer matches
// the reference for random splits, and DataScanner gets the body back.
TEST(DotStuffer, RandomDifferentialAndDataScannerRoundTrip) {
  std::mt19937 rng(20240611);
  const char alphabet[] = {'.', '.', '\r', '\n', '\r', '\n', 'a', 'b', ' ', '\0'};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string body;
    const std::size_t len = rng() % 64;
    for (std::size_t i = 0; i < len; ++i) {
      // Mostly well-formed CRLF text, sometimes bare CR/LF.
      if (rng() % 4 == 0) {
        body += "\r\n";
      } else {
        body += alphabet[rng() % sizeof(alphabet)];
      }
    }
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < body.size(); ++i) {
      if (rng() % 3 == 0) cuts.push_back(i);
    }
    const std::string wire = stuff(body, cuts);
    ASSERT_EQ(wire, reference(body)) << "iter " << iter;

    // Never a bare CR or LF on the wire.
    for (std::size_t i = 0; i < wire.size(); ++i) {
      if (wire[i] == '\r') {
        ASSERT_TRUE(i + 1 < wire.size() && wire[i + 1] == '\n');
      }
      if (wire[i] == '\n') {
        ASSERT_TRUE(i > 0 && wire[i - 1] == '\r');
      }
    }

    std::string expect = normalize(body);
    if (!expect.empty() && !expect.ends_with("\r\n")) expect += "\r\n";

    DataScanner scanner(DataScanner::Mode::Dot, 1 << 20);
    std::string got;
    std::size_t consumed = 0;
    bool done = false;
    // Feed the wire in random pieces too.
    std::size_t pos = 0;
    while (pos < wire.size() && !done) {
      const std::size_t n = std::min<std::size_t>(wire.size() - pos, 1 + rng() % 7);
      auto st = scanner.feed(std::string_view(wire).substr(pos, n), got);
      consumed += st.consumed;
      done = st.done;
      pos += n;
    }
    ASSERT_TRUE(done) << "iter " << iter;
    EXPECT_EQ(consumed, wire.size()) << "terminator only at the very end, iter " << iter;
    EXPECT_EQ(got, expect) << "iter " << iter;
    EXPECT_FALSE(scanner.bare_cr());
    EXPECT_FALSE(scanner.bare_lf());
  }
}

}  // namespace
}  // namespace mailgate::smtp
