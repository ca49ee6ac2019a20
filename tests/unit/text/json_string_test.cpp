// Tests of text/json_string: escapes, UTF-8 copied, every invalid octet
// replaced by U+FFFD, the output always parses back (nlohmann), and for
// well-formed input it equals nlohmann's own dump.
#include "text/json_string.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace mailgate::text {
namespace {

std::string as_json(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(JsonString, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(as_json(""), R"("")");
  EXPECT_EQ(as_json("plain text"), R"("plain text")");
  EXPECT_EQ(as_json("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(as_json("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(as_json(std::string("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(as_json("\x7f"), "\"\x7f\"");  // DEL is not a JSON control
}

TEST(JsonString, CopiesWellFormedUtf8AndReplacesEachBadOctet) {
  EXPECT_EQ(as_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7\"");
  EXPECT_EQ(as_json("a\xff" "b"), "\"a\xef\xbf\xbd" "b\"");
  EXPECT_EQ(as_json("\xc3("), "\"\xef\xbf\xbd(\"");          // a lead octet cut short
  EXPECT_EQ(as_json("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");  // a surrogate
  EXPECT_EQ(as_json("\xc0\xaf"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");  // an overlong '/'
}

TEST(JsonString, AlwaysParsesBackAndMatchesNlohmannOnWellFormedInput) {
  std::mt19937 rng(20261205);
  std::uniform_int_distribution<int> octet(0, 255), len(0, 40);
  for (int i = 0; i < 20000; ++i) {
    std::string s(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& c : s) c = static_cast<char>(octet(rng) % (i % 2 ? 256 : 128));
    const std::string out = as_json(s);
    nlohmann::json parsed;
    ASSERT_NO_THROW(parsed = nlohmann::json::parse(out)) << out;
    ASSERT_TRUE(parsed.is_string());
    if (i % 2 == 0) {  // ASCII only: well-formed
      EXPECT_EQ(parsed.get<std::string>(), s);
      EXPECT_EQ(out, nlohmann::json(s).dump());
    }
  }
}

}  // namespace
}  // namespace mailgate::text
