// Unit tests for smtp/reply_parser: single and multi-line replies, enhanced
// status code extraction and stripping, malformed replies and limits,
// pipelined replies in one buffer, and invariance under fragmentation (every
// 2-way split and byte-at-a-time feeding give the same replies).
#include "smtp/reply_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mailgate::smtp {
namespace {

struct Parsed {
  std::vector<Reply> replies;
  bool error = false;
  std::size_t consumed = 0;
};

// Feeds `in` cut at the (sorted) positions, taking every completed reply.
Parsed parse_all(std::string_view in, const std::vector<std::size_t>& cuts,
                 std::size_t max_line = 4096, std::size_t max_lines = 200) {
  ReplyParser p(max_line, max_lines);
  Parsed out;
  std::size_t prev = 0;
  std::vector<std::size_t> points = cuts;
  points.push_back(in.size());
  for (std::size_t cut : points) {
    std::string_view piece = in.substr(prev, cut - prev);
    prev = cut;
    while (!piece.empty()) {
      const std::size_t n = p.feed(piece);
      EXPECT_LE(n, piece.size());
      out.consumed += n;
      piece.remove_prefix(n);
      if (p.error()) {
        out.error = true;
        EXPECT_EQ(p.feed("250 OK\r\n"), 0u);  // terminal until take()/reset()
        return out;
      }
      if (p.done()) {
        EXPECT_EQ(p.feed("250 OK\r\n"), 0u);  // nothing more until take()
        out.replies.push_back(p.take());
        EXPECT_FALSE(p.done());
      } else {
        EXPECT_TRUE(piece.empty());  // an incomplete reply consumes everything
      }
    }
  }
  return out;
}

bool same(const Reply& a, const Reply& b) {
  return a.code == b.code && a.enhanced == b.enhanced && a.text == b.text;
}

std::string show(const Reply& r) {
  return std::to_string(r.code) + " [" + r.enhanced + "] \"" + r.text + "\"";
}

struct Case {
  const char* name;
  std::string wire;
  std::vector<Reply> replies;  // complete replies expected, in order
  bool error = false;          // the stream ends in a malformed reply
};

class ReplyParserCase : public ::testing::TestWithParam<Case> {};

void check(const Parsed& got, const Case& c, const std::string& ctx) {
  EXPECT_EQ(got.error, c.error) << ctx;
  ASSERT_EQ(got.replies.size(), c.replies.size()) << ctx;
  for (std::size_t i = 0; i < c.replies.size(); ++i) {
    EXPECT_TRUE(same(got.replies[i], c.replies[i]))
        << ctx << ": reply " << i << " got " << show(got.replies[i]) << " want "
        << show(c.replies[i]);
  }
  if (!c.error) {
    EXPECT_EQ(got.consumed, c.wire.size()) << ctx;
  }
}

TEST_P(ReplyParserCase, WholeSplitAndBytewise) {
  const Case& c = GetParam();
  check(parse_all(c.wire, {}), c, "whole");
  for (std::size_t i = 0; i <= c.wire.size(); ++i) {
    check(parse_all(c.wire, {i}), c, "split at " + std::to_string(i));
  }
  std::vector<std::size_t> all;
  for (std::size_t i = 1; i < c.wire.size(); ++i) all.push_back(i);
  check(parse_all(c.wire, all), c, "bytewise");
}

const std::string kGmailUnknown =
    "550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
    "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
    "550-5.1.1 unnecessary spaces. For more information, go to\r\n"
    "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp\r\n";

INSTANTIATE_TEST_SUITE_P(
    All, ReplyParserCase,
    ::testing::Values(
        Case{"simple", "250 OK\r\n", {{250, "", "OK"}}},
        Case{"enhanced", "250 2.1.0 Ok\r\n", {{250, "2.1.0", "Ok"}}},
        Case{"code_only", "250\r\n", {{250, "", ""}}},
        Case{"code_space", "250 \r\n", {{250, "", ""}}},
        Case{"enhanced_only", "250 2.0.0\r\n", {{250, "2.0.0", ""}}},
        Case{"enhanced_3digit",
             "550 5.7.606 Access denied\r\n",
             {{550, "5.7.606", "Access denied"}}},
        Case{"greeting",
             "220 mx.example.com ESMTP Postfix (Debian/GNU)\r\n",
             {{220, "", "mx.example.com ESMTP Postfix (Debian/GNU)"}}},
        Case{"data_354",
             "354 End data with <CR><LF>.<CR><LF>\r\n",
             {{354, "", "End data with <CR><LF>.<CR><LF>"}}},
        Case{"354_with_2x_enhanced",
             "354 2.0.0 Start mail input\r\n",
             {{354, "2.0.0", "Start mail input"}}},
        Case{"bare_lf", "250 OK\n", {{250, "", "OK"}}},
        Case{"mixed_line_ends", "250-a\n250-b\r\n250 c\n", {{250, "", "a\nb\nc"}}},
        Case{"multiline",
             "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
             {{250, "", "mx.example.com\nPIPELINING\nSIZE 10240000\n8BITMIME"}}},
        Case{"multiline_enhanced_every_line",
             kGmailUnknown,
             {{550, "5.1.1",
               "The email account that you tried to reach does not exist. Please try\n"
               "double-checking the recipient's email address for typos or\n"
               "unnecessary spaces. For more information, go to\n"
               " https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp"}}},
        Case{"enhanced_first_line_only",
             "451-4.7.1 Greylisted\r\n451 try later\r\n",
             {{451, "4.7.1", "Greylisted\ntry later"}}},
        Case{"other_code_on_later_line_kept",
             "550-5.1.1 a\r\n550 5.7.1 b\r\n",
             {{550, "5.1.1", "a\n5.7.1 b"}}},
        Case{"empty_continuation", "250-\r\n250 OK\r\n", {{250, "", "\nOK"}}},
        Case{"enhanced_class_mismatch_is_text", "250 5.1.1 odd\r\n", {{250, "", "5.1.1 odd"}}},
        Case{"not_enhanced_no_space", "250 2.0.0ok\r\n", {{250, "", "2.0.0ok"}}},
        Case{"not_enhanced_4_parts", "250 2.0.0.1 x\r\n", {{250, "", "2.0.0.1 x"}}},
        Case{"not_enhanced_4_digits", "550 5.1000.1 x\r\n", {{550, "", "5.1000.1 x"}}},
        Case{"not_enhanced_class_3", "250 3.0.0 x\r\n", {{250, "", "3.0.0 x"}}},
        Case{"control_chars_sanitized",
             std::string("250 a\rb\x01\tc\x7f\r\n"),
             {{250, "", "a?b?\tc?"}}},
        Case{"pipelined",
             "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <x@y>: Recipient address rejected\r\n"
             "354 End data\r\n",
             {{250, "2.1.0", "Ok"},
              {250, "2.1.5", "Ok"},
              {550, "5.1.1", "<x@y>: Recipient address rejected"},
              {354, "", "End data"}}},
        Case{"pipelined_multiline",
             "250-a\r\n250 b\r\n221-bye\r\n221 2.0.0 bye\r\n",
             {{250, "", "a\nb"}, {221, "", "bye\n2.0.0 bye"}}},
        // Malformed.
        Case{"code_1xx", "100 Continue\r\n", {}, true}, Case{"code_600", "600 x\r\n", {}, true},
        Case{"code_099", "099 x\r\n", {}, true}, Case{"short", "25\r\n", {}, true},
        Case{"non_digit", "2a0 x\r\n", {}, true}, Case{"bad_separator", "250_x\r\n", {}, true},
        Case{"tab_separator", "250\tx\r\n", {}, true}, Case{"empty_line", "\r\n", {}, true},
        Case{"mixed_codes", "250-a\r\n251 b\r\n", {}, true},
        Case{"leading_space", " 250 x\r\n", {}, true}, Case{"html", "<html>\r\n", {}, true},
        Case{"good_then_bad", "250 OK\r\nxyz\r\n", {{250, "", "OK"}}, true}),
    [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

TEST(ReplyParser, IncompleteIsNotDone) {
  ReplyParser p;
  EXPECT_EQ(p.feed("250-a\r\n250 b"), 12u);
  EXPECT_FALSE(p.done());
  EXPECT_FALSE(p.error());
  EXPECT_EQ(p.feed("\r"), 1u);
  EXPECT_FALSE(p.done());
  EXPECT_EQ(p.feed("\n250 next"), 1u);  // stops right after the reply
  ASSERT_TRUE(p.done());
  Reply r = p.take();
  EXPECT_EQ(r.code, 250);
  EXPECT_EQ(r.text, "a\nb");
  EXPECT_FALSE(p.done());
  EXPECT_EQ(p.feed("250 next\r\n"), 10u);
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.take().text, "next");
}

TEST(ReplyParser, LineLengthLimit) {
  const std::string at_limit = "250 " + std::string(96, 'x');  // 100 octets
  EXPECT_EQ(parse_all(at_limit + "\r\n", {}, 100).replies.size(), 1u);
  EXPECT_EQ(parse_all(at_limit + "\n", {}, 100).replies.size(), 1u);
  EXPECT_TRUE(parse_all(at_limit + "y\r\n", {}, 100).error);
  EXPECT_TRUE(parse_all(at_limit + "y\r\n", {50}, 100).error);
  // Without any line end, the parser gives up instead of buffering forever.
  ReplyParser p(100);
  const std::string junk(1000, 'x');
  p.feed(junk);
  EXPECT_TRUE(p.error());
  // Split: detected once the partial line passes the limit.
  ReplyParser q(100);
  q.feed(std::string(60, '2'));
  EXPECT_FALSE(q.error());
  q.feed(std::string(60, '2'));
  EXPECT_TRUE(q.error());
  // A CR split from its LF at exactly the limit is fine.
  ReplyParser s(100);
  s.feed(at_limit + "\r");
  EXPECT_FALSE(s.error());
  s.feed("\n");
  EXPECT_TRUE(s.done());
}

TEST(ReplyParser, LineCountLimit) {
  std::string wire;
  for (int i = 0; i < 9; ++i) wire += "250-x\r\n";
  EXPECT_EQ(parse_all(wire + "250 y\r\n", {}, 4096, 10).replies.size(), 1u);
  EXPECT_TRUE(parse_all(wire + "250-x\r\n250 y\r\n", {}, 4096, 10).error);
}

TEST(ReplyParser, ResetAfterError) {
  ReplyParser p;
  p.feed("xyz\r\n");
  EXPECT_TRUE(p.error());
  EXPECT_EQ(p.feed("250 OK\r\n"), 0u);
  p.reset();
  EXPECT_FALSE(p.error());
  EXPECT_EQ(p.feed("250 OK\r\n"), 8u);
  EXPECT_TRUE(p.done());
}

TEST(ReplyParser, TakeResets) {
  ReplyParser p;
  p.feed("250 2.0.0 first\r\n");
  Reply a = p.take();
  p.feed("550 second\r\n");
  Reply b = p.take();
  EXPECT_EQ(a.enhanced, "2.0.0");
  EXPECT_EQ(b.code, 550);
  EXPECT_EQ(b.enhanced, "");
  EXPECT_EQ(b.text, "second");
}

TEST(ReplyParser, RoundTripsFormatReply) {
  const Reply cases[] = {{250, "2.0.0", "OK id=abc"},
                         {550, "5.1.1", "line one\nline two\nline three"},
                         {421, "", "shutting down"},
                         {250, "", "mx\nPIPELINING\nSIZE 100"}};
  for (const Reply& r : cases) {
    ReplyParser p;
    const std::string wire = format_reply(r);
    EXPECT_EQ(p.feed(wire), wire.size());
    ASSERT_TRUE(p.done()) << wire;
    EXPECT_TRUE(same(p.take(), r)) << wire;
  }
}

TEST(EnhancedCodeLength, Cases) {
  EXPECT_EQ(enhanced_code_length("5.1.1"), 5u);
  EXPECT_EQ(enhanced_code_length("5.1.1 text"), 5u);
  EXPECT_EQ(enhanced_code_length("4.7.650 x"), 7u);
  EXPECT_EQ(enhanced_code_length("2.999.999"), 9u);
  EXPECT_EQ(enhanced_code_length("5.1.10"), 6u);
  EXPECT_EQ(enhanced_code_length("5.1000.1"), 0u);
  EXPECT_EQ(enhanced_code_length("5.1.1000"), 0u);
  EXPECT_EQ(enhanced_code_length("5.1.1.1"), 0u);
  EXPECT_EQ(enhanced_code_length("3.1.1"), 0u);
  EXPECT_EQ(enhanced_code_length("5..1"), 0u);
  EXPECT_EQ(enhanced_code_length("5.1."), 0u);
  EXPECT_EQ(enhanced_code_length("5.1"), 0u);
  EXPECT_EQ(enhanced_code_length(""), 0u);
  EXPECT_EQ(enhanced_code_length("a.1.1"), 0u);
}

}  // namespace
}  // namespace mailgate::smtp
