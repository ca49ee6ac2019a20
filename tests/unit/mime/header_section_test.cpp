// mime/header_section: header_section_length() on CRLF mail, on every line
// end the rule counts (CRLF, lone CR, lone LF, "\r\r\n"), and the edge cases
// the header promises: no headers, no empty line, no final line end, "".
#include "mime/header_section.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace mailgate::mime {
namespace {

std::string_view headers_of(std::string_view message) {
  return message.substr(0, header_section_length(message));
}

TEST(HeaderSectionLength, EndsAtTheFirstEmptyLine) {
  EXPECT_EQ(headers_of("A: b\r\nC: d\r\n\r\nbody\r\n\r\nmore"), "A: b\r\nC: d\r\n");
  EXPECT_EQ(header_section_length("A: b\r\n\r\n"), 6u);
  EXPECT_EQ(headers_of("A: b\r\n folded\r\n\r\nbody"), "A: b\r\n folded\r\n");
}

TEST(HeaderSectionLength, NoHeaders) {
  EXPECT_EQ(header_section_length(""), 0u);
  EXPECT_EQ(header_section_length("\r\nbody only\r\n"), 0u);
  EXPECT_EQ(header_section_length("\r\n"), 0u);
  EXPECT_EQ(header_section_length("\n"), 0u);
  EXPECT_EQ(header_section_length("\r"), 0u);
}

TEST(HeaderSectionLength, NoEmptyLineIsAllHeaders) {
  EXPECT_EQ(header_section_length("A: b\r\n"), 6u);
  EXPECT_EQ(header_section_length("A: b"), 4u);  // no line end at all
  EXPECT_EQ(header_section_length("A: b\r\nC: d"), 10u);
  EXPECT_EQ(header_section_length("A: b\r"), 5u);              // a CR whose LF has not come
  EXPECT_EQ(header_section_length("A: b\r\n \r\nbody"), 13u);  // a blank line is not empty
}

TEST(HeaderSectionLength, LoneCrAndLfEndLinesToo) {
  EXPECT_EQ(headers_of("A: b\n\nbody"), "A: b\n");
  EXPECT_EQ(headers_of("A: b\r\n\nbody"), "A: b\r\n");
  EXPECT_EQ(headers_of("A: b\n\r\nbody"), "A: b\n");
  EXPECT_EQ(headers_of("A: b\r\rbody"), "A: b\r");
  EXPECT_EQ(headers_of("A: b\r\r\nbody"), "A: b\r");  // CR, then CRLF: two line ends
  EXPECT_EQ(headers_of("A: b\n\rbody"), "A: b\n");
}

TEST(HeaderSectionLength, APrefixNeverMovesTheEnd) {
  // What the server relies on when it looks at a message still arriving: an
  // end found in a prefix is the end of the whole message.
  const std::string message = "Received: x\r\nSubject: y\r\n\r\nbody\r\n\r\nmore\r\n";
  const std::size_t end = header_section_length(message);
  ASSERT_EQ(end, 25u);
  for (std::size_t n = 0; n <= message.size(); ++n) {
    const std::string_view prefix = std::string_view(message).substr(0, n);
    const std::size_t found = header_section_length(prefix);
    EXPECT_TRUE(found == prefix.size() || found == end) << n;
  }
}

TEST(SplitHeaderFields, FieldsContinuationsAndStrayLines) {
  const std::string section =
      "stray line\r\nA: 1\r\n folded\r\nB : 2\r\nnot a field\r\nBad Name: 3\r\nC:4";
  const auto fields = split_header_fields(section);
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[0].name, "");
  EXPECT_EQ(fields[0].raw, "stray line\r\n");
  EXPECT_EQ(fields[1].name, "A");
  EXPECT_EQ(fields[1].raw, "A: 1\r\n folded\r\n");
  // WSP before the colon (RFC 5322 obs-optional) is no part of the name.
  EXPECT_EQ(fields[2].name, "B");
  EXPECT_EQ(fields[2].raw, "B : 2\r\nnot a field\r\nBad Name: 3\r\n");
  EXPECT_EQ(fields[3].name, "C");
  EXPECT_EQ(fields[3].raw, "C:4");
  std::string joined;
  for (const auto& f : fields) joined += f.raw;
  EXPECT_EQ(joined, section);  // byte for byte
}

}  // namespace
}  // namespace mailgate::mime
