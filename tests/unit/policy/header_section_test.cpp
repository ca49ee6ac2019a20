// policy/header_section: header_section_end() keeps its contract for the
// callers that wait for a complete header section (npos until the empty line
// has arrived) while following mime::header_section_length's rule.
#include "policy/header_section.hpp"

#include <gtest/gtest.h>

#include <string>

#include "mime/header_section.hpp"

namespace mailgate::policy {
namespace {

constexpr auto npos = std::string_view::npos;

TEST(HeaderSectionEnd, OffsetOfTheEmptyLineOrNpos) {
  EXPECT_EQ(header_section_end("A: b\r\nC: d\r\n\r\nbody"), 12u);
  EXPECT_EQ(header_section_end("\r\nbody"), 0u);
  EXPECT_EQ(header_section_end("A: b\r\n\r\n"), 6u);
  EXPECT_EQ(header_section_end(""), npos);
  EXPECT_EQ(header_section_end("A: b\r\n"), npos);  // not complete yet
  EXPECT_EQ(header_section_end("A: b\r\nC"), npos);
  EXPECT_EQ(header_section_end("A: b\r"), npos);
}

TEST(HeaderSectionEnd, SameRuleAsMime) {
  for (const std::string message :
       {"A: b\r\n\r\nx", "A: b\n\nx", "A: b\r\r\nx", "\n", "A", "A: b\r\n \r\n", "A: b\r\n\r"}) {
    const auto end = header_section_end(message);
    const auto length = mime::header_section_length(message);
    EXPECT_EQ(end == npos ? message.size() : end, length) << message;
  }
}

}  // namespace
}  // namespace mailgate::policy
