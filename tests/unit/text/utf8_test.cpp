// Tests of text/utf8: every boundary of RFC 3629's table (smallest and largest
// code point of each length), overlong forms, surrogates, code points above
// U+10FFFF, impossible lead octets, truncated and broken sequences (also past
// the 8-octet ASCII fast path), and utf8_char_length at each position.
#include "text/utf8.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace mailgate::text {
namespace {

struct Utf8Case {
  std::string s;
  bool valid;
};
class Utf8 : public ::testing::TestWithParam<Utf8Case> {};
TEST_P(Utf8, Validates) { EXPECT_EQ(valid_utf8(GetParam().s), GetParam().valid); }
INSTANTIATE_TEST_SUITE_P(
    All, Utf8,
    ::testing::Values(Utf8Case{"", true}, Utf8Case{"plain ascii", true}, Utf8Case{"\x7f", true},
                      Utf8Case{std::string("nul\0", 4), true},  // NUL is well-formed
                      Utf8Case{"\xc2\x80", true},               // U+0080
                      Utf8Case{"\xdf\xbf", true},               // U+07FF
                      Utf8Case{"\xe0\xa0\x80", true},           // U+0800
                      Utf8Case{"\xef\xbf\xbf", true},           // U+FFFF
                      Utf8Case{"\xed\x9f\xbf", true},           // U+D7FF
                      Utf8Case{"\xee\x80\x80", true},           // U+E000
                      Utf8Case{"\xf0\x90\x80\x80", true},       // U+10000
                      Utf8Case{"\xf4\x8f\xbf\xbf", true},       // U+10FFFF
                      Utf8Case{"caf\xc3\xa9", true}, Utf8Case{"\xe2\x82\xac", true},
                      Utf8Case{"\xf0\x9d\x84\x9e", true},           // U+1D11E
                      Utf8Case{"aaaaaaaaaaaaaaaa\xc3\xa9", true},   // after the 8-octet fast path
                      Utf8Case{"\xc3\xa9zzzzzzzzzzzzzzzz", true},   // then the fast path
                      Utf8Case{"\x80", false},                      // lone continuation
                      Utf8Case{"\xbf", false},                      // lone continuation
                      Utf8Case{"\xc0\x80", false},                  // overlong NUL
                      Utf8Case{"\xc0\xaf", false},                  // overlong '/'
                      Utf8Case{"\xc1\xbf", false},                  // overlong
                      Utf8Case{"\xe0\x80\xaf", false},              // overlong
                      Utf8Case{"\xe0\x9f\xbf", false},              // overlong (U+07FF in 3 octets)
                      Utf8Case{"\xf0\x80\x80\xaf", false},          // overlong
                      Utf8Case{"\xf0\x8f\xbf\xbf", false},          // overlong (U+FFFF in 4 octets)
                      Utf8Case{"\xed\xa0\x80", false},              // U+D800
                      Utf8Case{"\xed\xbf\xbf", false},              // U+DFFF
                      Utf8Case{"\xed\xa0\x80\xed\xb0\x80", false},  // CESU-8 surrogate pair
                      Utf8Case{"\xf4\x90\x80\x80", false},          // U+110000
                      Utf8Case{"\xf5\x80\x80\x80", false},          // never a lead octet
                      Utf8Case{"\xf7\xbf\xbf\xbf", false},          // never a lead octet
                      Utf8Case{"\xf8\x88\x80\x80\x80", false},      // old five-octet form
                      Utf8Case{"\xfe", false}, Utf8Case{"\xff", false},
                      Utf8Case{"\xc3", false},  // truncated
                      Utf8Case{"\xe2\x82", false}, Utf8Case{"\xf0\x9f\x98", false},
                      Utf8Case{"abcdefgh\xc3", false},  // truncated after the fast path
                      Utf8Case{"\xc3\x28", false},      // broken continuation
                      Utf8Case{"a\xc3(", false}, Utf8Case{"\xe2\x28\xa1", false},
                      Utf8Case{"\xe2\x82\x28", false}, Utf8Case{"\xf0\x28\x8c\xbc", false},
                      Utf8Case{"\xf0\x90\x28\xbc", false}, Utf8Case{"\xf0\x90\x8c\x28", false},
                      Utf8Case{"\xc3\xa9\xa9", false}));  // one continuation too many

TEST(Utf8CharLength, AtEachPosition) {
  const std::string_view s = "a\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e";
  EXPECT_EQ(utf8_char_length(s, 0), 1u);
  EXPECT_EQ(utf8_char_length(s, 1), 2u);
  EXPECT_EQ(utf8_char_length(s, 2), 0u);  // a continuation octet starts nothing
  EXPECT_EQ(utf8_char_length(s, 3), 3u);
  EXPECT_EQ(utf8_char_length(s, 6), 4u);
  EXPECT_EQ(utf8_char_length(s, 9), 0u);
}

TEST(Utf8CharLength, ZeroForBrokenOrCutSequences) {
  EXPECT_EQ(utf8_char_length(std::string_view("\0", 1), 0), 1u);
  EXPECT_EQ(utf8_char_length("\x7f", 0), 1u);
  EXPECT_EQ(utf8_char_length("\xc3", 0), 0u);              // cut by the end
  EXPECT_EQ(utf8_char_length("x\xe2\x82", 1), 0u);         // cut by the end
  EXPECT_EQ(utf8_char_length("\xc0\x80", 0), 0u);          // overlong
  EXPECT_EQ(utf8_char_length("\xed\xa0\x80", 0), 0u);      // surrogate
  EXPECT_EQ(utf8_char_length("\xf4\x90\x80\x80", 0), 0u);  // above U+10FFFF
  EXPECT_EQ(utf8_char_length("\xe2\x28\xa1", 0), 0u);      // broken
  EXPECT_EQ(utf8_char_length("\xff", 0), 0u);
}

}  // namespace
}  // namespace mailgate::text
