// Unit tests for smtp/data_scanner: DATA end-of-data detection at every split
// point, dot un-stuffing, SMTP smuggling (bare CR / bare LF), line length,
// size limit, Received counting, BDAT chunk mode, and a differential test
// against a straightforward reference implementation with random splits.
#include "smtp/data_scanner.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <string>
#include <vector>

namespace mailgate::smtp {
namespace {

// Concatenation by appending (avoids a GCC 12 -Wrestrict false positive on
// "literal" + std::string).
template <class... T>
std::string cat(const T&... parts) {
  std::string s;
  (s.append(std::string_view(parts)), ...);
  return s;
}

using Mode = DataScanner::Mode;

struct Result {
  std::string out;
  bool done = false;
  std::size_t consumed = 0;  // total over all feeds
  bool bare_cr = false, bare_lf = false, too_long = false, truncated = false;
  std::uint64_t total = 0;
  unsigned received = 0;
  bool ends_crlf = false;
};

Result collect(DataScanner& s, std::string out, std::size_t consumed, bool done) {
  Result r;
  r.out = std::move(out);
  r.done = done;
  r.consumed = consumed;
  r.bare_cr = s.bare_cr();
  r.bare_lf = s.bare_lf();
  r.too_long = s.line_too_long();
  r.truncated = s.truncated();
  r.total = s.total_bytes();
  r.received = s.received_headers();
  r.ends_crlf = s.ends_with_crlf();
  return r;
}

// Feeds `in` cut at the given (sorted) positions; stops feeding once done.
Result run(std::string_view in, const std::vector<std::size_t>& cuts, Mode mode = Mode::Dot,
           std::size_t max_line = 998, std::size_t limit = SIZE_MAX) {
  DataScanner s(mode, max_line);
  std::string out;
  std::size_t consumed = 0;
  bool done = false;
  std::size_t prev = 0;
  std::vector<std::size_t> points = cuts;
  points.push_back(in.size());
  for (std::size_t cut : points) {
    if (done) break;
    std::string_view piece = in.substr(prev, cut - prev);
    auto st = s.feed(piece, out, limit);
    EXPECT_LE(st.consumed, piece.size());
    if (!st.done) {
      EXPECT_EQ(st.consumed, piece.size());
    }
    consumed += st.consumed;
    done = st.done;
    prev = cut;
  }
  if (mode == Mode::Chunk) s.finish();
  return collect(s, std::move(out), consumed, done);
}

Result run_whole(std::string_view in, Mode mode = Mode::Dot, std::size_t max_line = 998,
                 std::size_t limit = SIZE_MAX) {
  return run(in, {}, mode, max_line, limit);
}

Result run_bytewise(std::string_view in, Mode mode = Mode::Dot, std::size_t max_line = 998) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < in.size(); ++i) cuts.push_back(i);
  return run(in, cuts, mode, max_line);
}

void expect_same(const Result& a, const Result& b, const std::string& ctx) {
  EXPECT_EQ(a.out, b.out) << ctx;
  EXPECT_EQ(a.done, b.done) << ctx;
  EXPECT_EQ(a.consumed, b.consumed) << ctx;
  EXPECT_EQ(a.bare_cr, b.bare_cr) << ctx;
  EXPECT_EQ(a.bare_lf, b.bare_lf) << ctx;
  EXPECT_EQ(a.too_long, b.too_long) << ctx;
  EXPECT_EQ(a.total, b.total) << ctx;
  EXPECT_EQ(a.received, b.received) << ctx;
  EXPECT_EQ(a.ends_crlf, b.ends_crlf) << ctx;
}

// Every 2-way split and byte-at-a-time feeding give the same result as one feed.
void expect_split_invariant(const std::string& in, Mode mode = Mode::Dot,
                            std::size_t max_line = 998) {
  const Result whole = run_whole(in, mode, max_line);
  for (std::size_t i = 0; i <= in.size(); ++i) {
    expect_same(run(in, {i}, mode, max_line), whole, "split at " + std::to_string(i));
  }
  expect_same(run_bytewise(in, mode, max_line), whole, "bytewise");
}

// ---- DATA: basics ------------------------------------------------------------

TEST(DataScanner, SimpleMessage) {
  const std::string msg = "Subject: hi\r\n\r\nbody line\r\n.\r\n";
  Result r = run_whole(msg);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, msg.size());
  EXPECT_EQ(r.out, "Subject: hi\r\n\r\nbody line\r\n");
  EXPECT_EQ(r.total, r.out.size());
  EXPECT_FALSE(r.bare_cr);
  EXPECT_FALSE(r.bare_lf);
  EXPECT_FALSE(r.too_long);
  EXPECT_FALSE(r.truncated);
  EXPECT_TRUE(r.ends_crlf);
  EXPECT_EQ(r.received, 0u);
  expect_split_invariant(msg);
}

TEST(DataScanner, EmptyMessage) {
  Result r = run_whole(".\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, 3u);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.total, 0u);
  EXPECT_FALSE(r.ends_crlf);
  expect_split_invariant(".\r\n");
}

TEST(DataScanner, OnlyEmptyLine) {
  Result r = run_whole("\r\n.\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.out, "\r\n");
  EXPECT_TRUE(r.ends_crlf);
}

TEST(DataScanner, PipelinedBytesAfterTerminatorNotConsumed) {
  const std::string msg = "a\r\n.\r\nQUIT\r\n";
  DataScanner s;
  std::string out;
  auto st = s.feed(msg, out);
  EXPECT_TRUE(st.done);
  EXPECT_EQ(st.consumed, msg.size() - 6);
  EXPECT_EQ(msg.substr(st.consumed), "QUIT\r\n");
  EXPECT_EQ(out, "a\r\n");
  // once done, further input is not consumed
  auto again = s.feed("more\r\n", out);
  EXPECT_TRUE(again.done);
  EXPECT_EQ(again.consumed, 0u);
  EXPECT_EQ(out, "a\r\n");
}

TEST(DataScanner, NotDoneWithoutTerminator) {
  for (std::string in : {"a\r\n", "a\r\n.", "a\r\n.\r", "a", "", "a\r\n..\r\n", "a\r\n.x\r\n"}) {
    Result r = run_whole(in);
    EXPECT_FALSE(r.done) << in;
    EXPECT_EQ(r.consumed, in.size()) << in;
  }
}

TEST(DataScanner, AppendsToExistingOutput) {
  DataScanner s;
  std::string out = "Received: by us\r\n";
  s.feed("x\r\n.\r\n", out);
  EXPECT_EQ(out, "Received: by us\r\nx\r\n");
  EXPECT_EQ(s.total_bytes(), 3u);
}

// ---- DATA: dot-stuffing --------------------------------------------------------

struct StuffCase {
  std::string in;
  std::string out;
};
class DotStuffing : public ::testing::TestWithParam<StuffCase> {};
TEST_P(DotStuffing, Unstuffs) {
  Result r = run_whole(GetParam().in);
  EXPECT_TRUE(r.done) << GetParam().in;
  EXPECT_EQ(r.out, GetParam().out);
  EXPECT_FALSE(r.bare_cr || r.bare_lf);
  expect_split_invariant(GetParam().in);
}
INSTANTIATE_TEST_SUITE_P(
    All, DotStuffing,
    ::testing::Values(StuffCase{"..\r\n.\r\n", ".\r\n"}, StuffCase{"..foo\r\n.\r\n", ".foo\r\n"},
                      StuffCase{"...\r\n.\r\n", "..\r\n"},
                      StuffCase{".foo\r\n.\r\n", "foo\r\n"},  // lone leading dot removed too
                      StuffCase{"a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"},
                      StuffCase{"a.\r\n.b\r\n.\r\n", "a.\r\nb\r\n"},
                      StuffCase{"a\r\n. \r\n.\r\n", "a\r\n \r\n"},
                      StuffCase{"..\r\n..\r\n..\r\n.\r\n", ".\r\n.\r\n.\r\n"},
                      StuffCase{"x . y\r\n.\r\n", "x . y\r\n"}));

// ---- DATA: terminator split at every position -------------------------------

TEST(DataScanner, TerminatorEverySplitPoint) {
  const std::string msg = "Line1\r\n..dot\r\n\r\n.\r\nQUIT\r\n";
  const Result whole = run_whole(msg);
  ASSERT_TRUE(whole.done);
  ASSERT_EQ(msg.substr(whole.consumed), "QUIT\r\n");
  ASSERT_EQ(whole.out, "Line1\r\n.dot\r\n\r\n");
  for (std::size_t i = 0; i <= msg.size(); ++i) {
    for (std::size_t j = i; j <= msg.size(); ++j) {
      expect_same(run(msg, {i, j}), whole, std::to_string(i) + "," + std::to_string(j));
    }
  }
  expect_same(run_bytewise(msg), whole, "bytewise");
}

TEST(DataScanner, ByteAtATimeManual) {
  const std::string msg = "a\r\n.\r\n";
  DataScanner s;
  std::string out;
  for (std::size_t i = 0; i < msg.size(); ++i) {
    auto st = s.feed(std::string_view(&msg[i], 1), out);
    EXPECT_EQ(st.consumed, 1u);
    EXPECT_EQ(st.done, i + 1 == msg.size()) << i;
  }
  EXPECT_EQ(out, "a\r\n");
}

// ---- DATA: smuggling ---------------------------------------------------------

struct SmuggleCase {
  std::string in;  // always ends with a real <CRLF>.<CRLF> (or ".\r\n" at start)
  std::string out;
  bool bare_cr;
  bool bare_lf;
};
class Smuggling : public ::testing::TestWithParam<SmuggleCase> {};
TEST_P(Smuggling, OnlyCrlfDotCrlfEndsData) {
  const auto& c = GetParam();
  Result r = run_whole(c.in);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.consumed, c.in.size()) << "ended early";
  EXPECT_EQ(r.out, c.out);
  EXPECT_EQ(r.bare_cr, c.bare_cr);
  EXPECT_EQ(r.bare_lf, c.bare_lf);
  expect_split_invariant(c.in);
}
INSTANTIATE_TEST_SUITE_P(
    All, Smuggling,
    ::testing::Values(SmuggleCase{"a\nb\r\n.\r\n", "a\nb\r\n", false, true},
                      SmuggleCase{"a\rb\r\n.\r\n", "a\rb\r\n", true, false},
                      SmuggleCase{"hello\n.\nMAIL FROM:<x@y>\r\n.\r\n",
                                  "hello\n.\nMAIL FROM:<x@y>\r\n", false, true},
                      SmuggleCase{"a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", false, true},
                      SmuggleCase{"a\n.\r\n.\r\n", "a\n.\r\n", false, true},
                      SmuggleCase{"a\r.\r\n.\r\n", "a\r.\r\n", true, false},
                      SmuggleCase{"a\r\n.\r.\r\n.\r\n", "a\r\n\r.\r\n", true, false},
                      SmuggleCase{"a\r\n.\rX\r\n.\r\n", "a\r\n\rX\r\n", true, false},
                      SmuggleCase{"a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", true, false},
                      SmuggleCase{"a\r\r\n.\r\n", "a\r\r\n", true, false},
                      SmuggleCase{"a\n\r\n.\r\n", "a\n\r\n", false, true},
                      SmuggleCase{"\n.\n\r\n.\r\n", "\n.\n\r\n", false, true},
                      SmuggleCase{".\n.\r\n.\r\n", "\n.\r\n", false,
                                  true},  // ".\n" is not the terminator
                      SmuggleCase{"\r.\r\n.\r\n", "\r.\r\n", true, false},
                      SmuggleCase{"a\n\n.\n\n.\r\n\r\n.\r\n", "a\n\n.\n\n.\r\n\r\n", false, true},
                      SmuggleCase{"a\r\r.\r\r\n.\r\n", "a\r\r.\r\r\n", true, false},
                      SmuggleCase{"x\r\n.\n\r\n.\r\n", "x\r\n\n\r\n", false, true}));

TEST(DataScanner, BareCrAtEndOfFeedResolvedByNextFeed) {
  DataScanner s;
  std::string out;
  s.feed("abc\r", out);
  EXPECT_FALSE(s.bare_cr());
  s.feed("\n.\r\n", out);
  EXPECT_FALSE(s.bare_cr());
  DataScanner t;
  std::string out2;
  t.feed("abc\r", out2);
  t.feed("x\r\n.\r\n", out2);
  EXPECT_TRUE(t.bare_cr());
  EXPECT_EQ(out2, "abc\rx\r\n");
}

TEST(DataScanner, ManyBareCrsAreLinear) {
  // Must not rescan the rest of the input for every CR (quadratic time).
  std::string in(4 << 20, '\r');
  in += "\r\n.\r\n";
  Result r = run_whole(in);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(r.bare_cr);
  EXPECT_EQ(r.out.size(), in.size() - 3);
  std::string lfs(4 << 20, '\n');
  Result l = run_whole(lfs + "\r\n.\r\n");
  EXPECT_TRUE(l.done);
  EXPECT_TRUE(l.bare_lf);
}

// ---- line length --------------------------------------------------------------

TEST(DataScanner, LineLength) {
  const std::string l998(998, 'x'), l999(999, 'x');
  EXPECT_FALSE(run_whole(l998 + "\r\n.\r\n").too_long);
  EXPECT_TRUE(run_whole(l999 + "\r\n.\r\n").too_long);
  EXPECT_FALSE(run_whole("a\r\n" + l998 + "\r\nb\r\n.\r\n").too_long);
  EXPECT_TRUE(run_whole("a\r\n" + l999 + "\r\nb\r\n.\r\n").too_long);
  // the stuffing dot counts (wire form): re-stuffing on delivery must fit
  EXPECT_FALSE(run_whole(cat(".", std::string(997, 'x'), "\r\n.\r\n")).too_long);
  EXPECT_TRUE(run_whole(cat(".", std::string(998, 'x'), "\r\n.\r\n")).too_long);
  // too long with no line end yet, and with a bare CR inside
  EXPECT_TRUE(run_whole(l999).too_long);
  EXPECT_FALSE(run_whole(l998).too_long);
  EXPECT_TRUE(
      run_whole(std::string(500, 'x') + cat("\r", std::string(499, 'x'), "\r\n.\r\n")).too_long);
  EXPECT_FALSE(
      run_whole(std::string(500, 'x') + cat("\r", std::string(497, 'x'), "\r\n.\r\n")).too_long);
  // a CR at the end of a 998 line arriving separately from its LF
  EXPECT_FALSE(run(l998 + "\r\n.\r\n", {999}).too_long);
  EXPECT_FALSE(run(l998 + "\r\n.\r\n", {998}).too_long);
  // custom limit, every split point
  expect_split_invariant("12345\r\n123456\r\n.\r\n", Mode::Dot, 5);
  EXPECT_TRUE(run_whole("12345\r\n123456\r\n.\r\n", Mode::Dot, 5).too_long);
  EXPECT_FALSE(run_whole("12345\r\n12345\r\n.\r\n", Mode::Dot, 5).too_long);
  expect_split_invariant("12345\r\n12345\r\n.\r\n", Mode::Dot, 5);
  expect_split_invariant(".2345\r\n.23456\r\n.\r\n", Mode::Dot, 5);
}

TEST(DataScanner, LineLengthEverySplit) {
  const std::string msg = cat("a\r\n", std::string(998, 'y'), "\r\n") + "b\r\n.\r\n";
  for (std::size_t i = 0; i <= msg.size(); ++i) {
    Result r = run(msg, {i});
    EXPECT_FALSE(r.too_long) << i;
    EXPECT_TRUE(r.done);
  }
  const std::string bad = cat("a\r\n", std::string(999, 'y'), "\r\n") + "b\r\n.\r\n";
  for (std::size_t i = 0; i <= bad.size(); ++i) EXPECT_TRUE(run(bad, {i}).too_long) << i;
}

// ---- size limit ----------------------------------------------------------------

TEST(DataScanner, LimitTruncatesButKeepsCounting) {
  const std::string body = "0123456789\r\n0123456789\r\n";  // 24 bytes
  Result r = run_whole(body + ".\r\n", Mode::Dot, 998, 10);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.out, "0123456789");
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.total, 24u);
  EXPECT_TRUE(r.ends_crlf);  // of the content, stored or not
  // exactly at the limit: nothing lost
  Result e = run_whole(body + ".\r\n", Mode::Dot, 998, 24);
  EXPECT_EQ(e.out, body);
  EXPECT_FALSE(e.truncated);
  // one below
  Result b = run_whole(body + ".\r\n", Mode::Dot, 998, 23);
  EXPECT_EQ(b.out, body.substr(0, 23));
  EXPECT_TRUE(b.truncated);
  // limit 0
  Result z = run_whole(body + ".\r\n", Mode::Dot, 998, 0);
  EXPECT_EQ(z.out, "");
  EXPECT_TRUE(z.truncated);
  EXPECT_EQ(z.total, 24u);
  // split everywhere: same stored prefix
  for (std::size_t i = 0; i <= body.size() + 3; ++i) {
    Result s = run(body + ".\r\n", {i}, Mode::Dot, 998, 13);
    EXPECT_EQ(s.out, body.substr(0, 13)) << i;
    EXPECT_TRUE(s.truncated);
    EXPECT_EQ(s.total, 24u);
  }
}

TEST(DataScanner, LimitCountsExistingOutput) {
  DataScanner s;
  std::string out = "12345";
  s.feed("abcdef\r\n.\r\n", out, 8);
  EXPECT_EQ(out, "12345abc");
  EXPECT_TRUE(s.truncated());
  EXPECT_EQ(s.total_bytes(), 8u);
}

TEST(DataScanner, NoEmptyAppendsBeyondLimit) {
  DataScanner s;
  std::string out;
  std::string big(1 << 20, 'x');
  big += "\r\n";
  for (int i = 0; i < 8; ++i) s.feed(big, out, 1000);
  EXPECT_EQ(out.size(), 1000u);
  EXPECT_EQ(s.total_bytes(), 8u * big.size());
  EXPECT_TRUE(s.line_too_long());
}

// ---- Received counting ------------------------------------------------------

TEST(DataScanner, ReceivedCounting) {
  const std::string msg =
      "Received: from a\r\n"
      "\tby b; date\r\n"
      "received : from c\r\n"
      "RECEIVED\t:x\r\n"
      "ReCeIvEd:\r\n"
      "X-Received: no\r\n"
      "ReceivedX: no\r\n"
      "Receive: no\r\n"
      " Received: continuation, no\r\n"
      "..Received: stuffed dot stays, no\r\n"
      ".Received: un-stuffed, yes\r\n"
      "Received\r\n"
      "Subject: x\r\n"
      "\r\n"
      "Received: in the body, no\r\n"
      "\r\n"
      "Received: no\r\n"
      ".\r\n";
  Result r = run_whole(msg);
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.received, 5u);
  expect_split_invariant(msg);
}

TEST(DataScanner, ReceivedNoHeaders) {
  EXPECT_EQ(run_whole("\r\nReceived: x\r\n.\r\n").received, 0u);
  EXPECT_EQ(run_whole("Received: x\r\n.\r\n").received, 1u);
  EXPECT_EQ(run_whole("Received: x").received, 1u);
  EXPECT_EQ(run_whole("Received: x", Mode::Chunk).received, 1u);
  // a bare line break does not start a header line
  EXPECT_EQ(run_whole("Subject: a\nReceived: x\r\n.\r\n").received, 0u);
  EXPECT_EQ(run_whole("Subject: a\rReceived: x\r\n.\r\n").received, 0u);
  EXPECT_EQ(run_whole("Recei\rved: x\r\n.\r\n").received, 0u);
  // a bare LF does not end the header section either
  EXPECT_EQ(run_whole("A: a\r\n\n\r\nReceived: x\r\n.\r\n").received, 1u);
}

TEST(DataScanner, ManyReceived) {
  std::string msg;
  for (int i = 0; i < 60; ++i) msg += "Received: from hop" + std::to_string(i) + "\r\n";
  msg += "\r\nbody\r\n.\r\n";
  Result r = run_whole(msg);
  EXPECT_EQ(r.received, 60u);
  EXPECT_EQ(run_bytewise(msg).received, 60u);
}

// ---- BDAT chunk mode ---------------------------------------------------------

TEST(ChunkScanner, NoTerminatorNoUnstuffing) {
  const std::string in = "a\r\n..b\r\n.\r\nc\r\n";
  Result r = run_whole(in, Mode::Chunk);
  EXPECT_FALSE(r.done);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(r.total, in.size());
  EXPECT_TRUE(r.ends_crlf);
  EXPECT_FALSE(r.bare_cr || r.bare_lf);
  expect_split_invariant(in, Mode::Chunk);
}

TEST(ChunkScanner, CrlfAcrossChunks) {
  DataScanner s(Mode::Chunk);
  std::string out;
  s.feed("line one\r", out);
  s.feed("\nline two\r", out);
  s.feed("\n", out);
  s.finish();
  EXPECT_FALSE(s.bare_cr());
  EXPECT_FALSE(s.bare_lf());
  EXPECT_TRUE(s.ends_with_crlf());
  EXPECT_EQ(out, "line one\r\nline two\r\n");
}

TEST(ChunkScanner, TrailingCrIsBareAtFinish) {
  DataScanner s(Mode::Chunk);
  std::string out;
  s.feed("abc\r", out);
  EXPECT_FALSE(s.bare_cr());  // pending
  s.finish();
  EXPECT_TRUE(s.bare_cr());
  EXPECT_FALSE(s.ends_with_crlf());
  EXPECT_EQ(out, "abc\r");
}

TEST(ChunkScanner, NoFinalCrlf) {
  Result r = run_whole("abc\r\ndef", Mode::Chunk);
  EXPECT_FALSE(r.ends_crlf);
  EXPECT_FALSE(r.bare_cr || r.bare_lf);
  EXPECT_EQ(r.out, "abc\r\ndef");
  Result e = run_whole("", Mode::Chunk);
  EXPECT_FALSE(e.ends_crlf);
  EXPECT_EQ(e.total, 0u);
}

TEST(ChunkScanner, BareLfAndCr) {
  EXPECT_TRUE(run_whole("a\nb\r\n", Mode::Chunk).bare_lf);
  EXPECT_TRUE(run_whole("\n", Mode::Chunk).bare_lf);
  EXPECT_TRUE(run_whole("a\rb\r\n", Mode::Chunk).bare_cr);
  EXPECT_TRUE(run_whole("a\r\r\n", Mode::Chunk).bare_cr);
  EXPECT_TRUE(run(std::string("a\r\r\n"), {1, 2}, Mode::Chunk).bare_cr);
  EXPECT_FALSE(run(std::string("a\r\n"), {2}, Mode::Chunk).bare_cr);
  expect_split_invariant("x\n.\r\ny\r.\r\n\r\n\r", Mode::Chunk);
}

TEST(ChunkScanner, LineLengthAcrossChunks) {
  const std::string l998(998, 'x'), l999(999, 'x');
  EXPECT_FALSE(run(l998 + "\r\n", {400, 998, 999}, Mode::Chunk).too_long);
  EXPECT_TRUE(run(l999 + "\r\n", {400, 998, 999}, Mode::Chunk).too_long);
  EXPECT_TRUE(run_whole(l999, Mode::Chunk).too_long);
  EXPECT_TRUE(run_whole(l998 + "\r", Mode::Chunk).too_long);  // trailing bare CR is content
  EXPECT_FALSE(run_whole(cat(".", std::string(997, 'x'), "\r\n"), Mode::Chunk).too_long);
  EXPECT_TRUE(run_whole(cat(".", std::string(998, 'x'), "\r\n"), Mode::Chunk).too_long);
  expect_split_invariant(std::string(10, 'x') + cat("\r\n", std::string(11, 'x'), "\r\n"),
                         Mode::Chunk, 10);
}

TEST(ChunkScanner, ReceivedAcrossChunks) {
  const std::string in = "Received: a\r\nReceived: b\r\n\r\nReceived: c\r\n";
  EXPECT_EQ(run_whole(in, Mode::Chunk).received, 2u);
  expect_split_invariant(in, Mode::Chunk);
}

TEST(ChunkScanner, Limit) {
  Result r = run("0123456789", {3, 7}, Mode::Chunk, 998, 5);
  EXPECT_EQ(r.out, "01234");
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.total, 10u);
}

TEST(DataScanner, Reset) {
  DataScanner s(Mode::Dot, 5);
  std::string out;
  s.feed("Received: x\n123456\r\n.\r\n", out);
  EXPECT_TRUE(s.bare_lf());
  EXPECT_TRUE(s.line_too_long());
  EXPECT_EQ(s.received_headers(), 1u);
  s.reset(Mode::Chunk);
  EXPECT_FALSE(s.bare_lf());
  EXPECT_FALSE(s.bare_cr());
  EXPECT_FALSE(s.line_too_long());
  EXPECT_FALSE(s.truncated());
  EXPECT_EQ(s.total_bytes(), 0u);
  EXPECT_EQ(s.received_headers(), 0u);
  out.clear();
  auto st = s.feed(".\r\n", out);
  EXPECT_FALSE(st.done);  // chunk mode now
  EXPECT_EQ(out, ".\r\n");
  s.reset(Mode::Dot);
  out.clear();
  st = s.feed("123456\r\n.\r\n", out);
  EXPECT_TRUE(st.done);
  EXPECT_TRUE(s.line_too_long());  // max_line kept across reset
}

// ---- differential test against a reference implementation -----------------

struct Ref {
  std::string out;
  bool done = false;
  std::size_t consumed = 0;
  bool bare_cr = false, bare_lf = false, too_long = false;
  unsigned received = 0;
};

bool is_received_header(std::string_view line) {
  line = line.substr(0, line.find_first_of("\r\n"));
  if (line.size() < 9) return false;
  static const char kName[] = "received";
  for (int i = 0; i < 8; ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != kName[i]) return false;
  }
  std::size_t k = 8;
  while (k < line.size() && (line[k] == ' ' || line[k] == '\t')) ++k;
  return k < line.size() && line[k] == ':';
}

// Whole-input reference: lines are split at CRLF only; everything else is content.
Ref reference(std::string_view s, bool dot, std::size_t max_line) {
  Ref r;
  std::size_t i = 0;
  bool headers = true;
  while (i < s.size()) {
    const std::size_t j = s.find("\r\n", i);
    const bool complete = j != std::string_view::npos;
    std::string_view line = s.substr(i, complete ? j - i : std::string_view::npos);
    if (dot && complete && line == ".") {
      r.done = true;
      r.consumed = j + 2;
      return r;
    }
    if (line.size() > max_line) r.too_long = true;
    if (dot && !line.empty() && line[0] == '.') line.remove_prefix(1);
    if (line.find('\r') != std::string_view::npos) r.bare_cr = true;
    if (line.find('\n') != std::string_view::npos) r.bare_lf = true;
    if (headers) {
      if (complete && line.empty()) {
        headers = false;
      } else if (is_received_header(line)) {
        ++r.received;
      }
    }
    r.out += line;
    if (complete) r.out += "\r\n";
    i = complete ? j + 2 : s.size();
  }
  r.consumed = s.size();
  return r;
}

TEST(DataScannerFuzz, MatchesReferenceUnderRandomSplits) {
  std::mt19937 rng(12345);
  const std::vector<std::string> atoms = {
      "a",  "b", ".", "\r",        "\n",         "\r\n",     "\r\n.",      ".\r\n",
      "..", " ", ":", "Received:", "received :", "\r\n\r\n", "xxxxxxxxxx", "\r\n.\r\n"};
  for (int iter = 0; iter < 3000; ++iter) {
    const bool dot = iter % 2 == 0;
    std::string in;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) in += atoms[rng() % atoms.size()];
    if (dot) in += "\r\n.\r\n";
    const std::size_t max_line = 4 + rng() % 20;
    const Ref ref = reference(in, dot, max_line);
    std::vector<std::size_t> cuts;
    const int ncuts = static_cast<int>(rng() % 6);
    for (int k = 0; k < ncuts; ++k) cuts.push_back(in.empty() ? 0 : rng() % (in.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    const Result got = run(in, cuts, dot ? Mode::Dot : Mode::Chunk, max_line);
    std::string ctx = "iter " + std::to_string(iter) + " input ";
    for (char c : in) ctx += c == '\r' ? "\\r" : c == '\n' ? "\\n" : std::string(1, c);
    ASSERT_EQ(got.out, ref.out) << ctx;
    ASSERT_EQ(got.done, ref.done) << ctx;
    ASSERT_EQ(got.consumed, ref.consumed) << ctx;
    ASSERT_EQ(got.bare_cr, ref.bare_cr) << ctx;
    ASSERT_EQ(got.bare_lf, ref.bare_lf) << ctx;
    ASSERT_EQ(got.too_long, ref.too_long) << ctx;
    ASSERT_EQ(got.received, ref.received) << ctx;
    ASSERT_EQ(got.total, ref.out.size()) << ctx;
    ASSERT_EQ(got.ends_crlf, ref.out.size() >= 2 && ref.out.ends_with("\r\n")) << ctx;
    if (dot) {
      ASSERT_TRUE(got.done) << ctx;
    }
  }
}

TEST(DataScanner, LargeMessage) {
  std::string msg = "Received: x\r\nSubject: big\r\n\r\n";
  std::string expect = msg;
  while (msg.size() < (1 << 20)) {
    msg += ".leading dot line\r\n";
    expect += "leading dot line\r\n";
    msg += std::string(76, 'z') + "\r\n";
    expect += std::string(76, 'z') + "\r\n";
  }
  msg += ".\r\n";
  Result r = run(msg, {4096, 65536, 65537, 500000});
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.out, expect);
  EXPECT_EQ(r.received, 1u);
  EXPECT_FALSE(r.bare_cr || r.bare_lf || r.too_long);
}

}  // namespace
}  // namespace mailgate::smtp
