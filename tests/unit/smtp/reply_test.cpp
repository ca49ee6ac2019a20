// Unit tests for smtp/reply: single and multi-line wire forms, enhanced codes,
// CR/LF injection in the text.
#include "smtp/reply.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mailgate::smtp {
namespace {

struct ReplyCase {
  Reply r;
  std::string wire;
};

class FormatReply : public ::testing::TestWithParam<ReplyCase> {};

TEST_P(FormatReply, Wire) {
  EXPECT_EQ(format_reply(GetParam().r), GetParam().wire);
  std::string out = "prefix";
  format_reply(GetParam().r, out);
  EXPECT_EQ(out, "prefix" + GetParam().wire);  // appends
}

INSTANTIATE_TEST_SUITE_P(
    All, FormatReply,
    ::testing::Values(
        ReplyCase{{250, "2.0.0", "OK"}, "250 2.0.0 OK\r\n"},
        ReplyCase{{250, "", "OK"}, "250 OK\r\n"},
        ReplyCase{{220, "", "mx.example ESMTP mailgate"}, "220 mx.example ESMTP mailgate\r\n"},
        ReplyCase{{354, "", "End data with <CR><LF>.<CR><LF>"},
                  "354 End data with <CR><LF>.<CR><LF>\r\n"},
        ReplyCase{{250, "2.0.0", ""}, "250 2.0.0\r\n"}, ReplyCase{{250, "", ""}, "250\r\n"},
        ReplyCase{{250, "", "gw.example\nPIPELINING\nSIZE 1000\n8BITMIME"},
                  "250-gw.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"},
        ReplyCase{{550, "5.7.1", "line one\nline two"},
                  "550-5.7.1 line one\r\n550 5.7.1 line two\r\n"},
        ReplyCase{{214, "2.0.0", "a\nb\nc"}, "214-2.0.0 a\r\n214-2.0.0 b\r\n214 2.0.0 c\r\n"},
        // CR, LF and CRLF all split; a trailing break adds no empty line
        ReplyCase{{250, "", "a\r\nb"}, "250-a\r\n250 b\r\n"},
        ReplyCase{{250, "", "a\rb"}, "250-a\r\n250 b\r\n"},
        ReplyCase{{250, "", "a\n"}, "250 a\r\n"}, ReplyCase{{250, "", "a\r\n"}, "250 a\r\n"},
        ReplyCase{{250, "", "a\n\nb"}, "250-a\r\n250-\r\n250 b\r\n"},
        ReplyCase{{250, "2.0.0", "a\n\nb"}, "250-2.0.0 a\r\n250-2.0.0\r\n250 2.0.0 b\r\n"},
        ReplyCase{{250, "", "\r\n"}, "250\r\n"}, ReplyCase{{250, "", "\n\n"}, "250-\r\n250\r\n"},
        // injection attempt via echoed input
        ReplyCase{{500, "5.5.2", "unknown command X\r\n250 OK"},
                  "500-5.5.2 unknown command X\r\n500 5.5.2 250 OK\r\n"},
        // other control characters never reach the wire
        ReplyCase{{500, "", std::string("a\0b\x1b[2Jc\x7f", 9)}, "500 a?b?[2Jc?\r\n"},
        ReplyCase{{500, "", "tab\tok"}, "500 tab\tok\r\n"},
        ReplyCase{{250, "2.0.0\r\n", "x"}, "250 2.0.0?? x\r\n"},
        ReplyCase{{7, "", "x"}, "007 x\r\n"}));

TEST(Reply, Classes) {
  EXPECT_TRUE((Reply{250, "", ""}).positive());
  EXPECT_TRUE((Reply{354, "", ""}).positive());
  EXPECT_TRUE((Reply{421, "", ""}).transient());
  EXPECT_TRUE((Reply{554, "", ""}).permanent());
  EXPECT_FALSE((Reply{554, "", ""}).positive());
}

TEST(Reply, EveryLineEndsInCrlfAndHasNoBareBreaks) {
  std::string text;
  for (int i = 0; i < 300; ++i) text.push_back(static_cast<char>(i % 256));
  const std::string w = format_reply({451, "4.3.0", text});
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] == '\n') {
      ASSERT_GT(i, 0u);
      EXPECT_EQ(w[i - 1], '\r');
    }
    if (w[i] == '\r') {
      ASSERT_LT(i + 1, w.size());
      EXPECT_EQ(w[i + 1], '\n');
      if (i + 2 < w.size()) {
        EXPECT_EQ(w.compare(i + 2, 3, "451"), 0);
        EXPECT_TRUE(w[i + 5] == '-' || w[i + 5] == ' ');
      }
    }
  }
  EXPECT_EQ(w.compare(w.rfind("451 "), 4, "451 "), 0);
}

}  // namespace
}  // namespace mailgate::smtp
