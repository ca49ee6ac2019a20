// quoted-printable (RFC 2045 §6.7): what is escaped, hard and soft line
// breaks, the 76-octet limit at every line length and with escapes at the
// limit, round trips over random data and all byte values, and the strict
// decoder.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "mime/mime.hpp"
#include "mime_reader.hpp"

namespace mailgate::mime {
namespace {

bool is_hex_upper(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// Every property RFC 2045 §6.7 asks of an encoded text, as a list of failures.
std::vector<std::string> qp_problems(const std::string& encoded) {
  std::vector<std::string> problems;
  for (const auto& p : test::wire_format_problems("X: y\r\n\r\n" + encoded + "\r\n"))
    problems.push_back(p);
  const auto lines = test::crlf_lines(encoded);
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    if (line.size() > 76) problems.push_back("line " + std::to_string(n) + " over 76 octets");
    if (!line.empty() && (line.back() == ' ' || line.back() == '\t'))
      problems.push_back("line " + std::to_string(n) + " ends with whitespace");
    for (std::size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (c == '=') {
        if (i + 1 == line.size()) continue;  // soft line break
        if (i + 2 >= line.size() || !is_hex_upper(line[i + 1]) || !is_hex_upper(line[i + 2]))
          problems.push_back("line " + std::to_string(n) + " has a broken escape");
        i += 2;
      } else if (!((c >= '!' && c <= '~') || c == ' ' || c == '\t')) {
        problems.push_back("line " + std::to_string(n) + " has a raw octet");
      }
    }
  }
  return problems;
}

void expect_good_round_trip(const std::string& data) {
  const std::string encoded = quoted_printable_encode(data);
  const auto problems = qp_problems(encoded);
  EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << encoded;
  // The encoder adds no final line break, so only the line ends change.
  EXPECT_EQ(quoted_printable_decode(encoded), test::with_crlf_line_ends(data)) << encoded;
}

TEST(QuotedPrintable, KnownEncodings) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", ""},
      {"Hello, World!", "Hello, World!"},
      {"a=b", "a=3Db"},
      {"caf\xC3\xA9", "caf=C3=A9"},
      {"tab\tinside", "tab\tinside"},
      {"trailing \nnext", "trailing=20\r\nnext"},
      {"trailing\t\r\nnext", "trailing=09\r\nnext"},
      {"ends with space ", "ends with space=20"},
      {"two  \n", "two =20\r\n"},
      {"a\r\nb", "a\r\nb"},
      {"a\nb\n", "a\r\nb\r\n"},
      {"\n\n", "\r\n\r\n"},
      {"lone\rcr", "lone=0Dcr"},
      {"cr at end\r", "cr at end=0D"},
      {"cr\r\r\nlf", "cr=0D\r\nlf"},
      {std::string_view("nul\0", 4), "nul=00"},
      {"del\x7F", "del=7F"},
      {"esc\x1B[0m", "esc=1B[0m"},
      {"~!", "~!"},
  };
  for (const auto& [plain, encoded] : cases) EXPECT_EQ(quoted_printable_encode(plain), encoded);
}

TEST(QuotedPrintable, SoftBreaksKeepLinesWithin76) {
  // 76 octets fit on a line that ends there; 77 need a soft break after 75.
  EXPECT_EQ(quoted_printable_encode(std::string(76, 'a')), std::string(76, 'a'));
  EXPECT_EQ(quoted_printable_encode(std::string(77, 'a')), std::string(75, 'a') + "=\r\n" + "aa");
  EXPECT_EQ(quoted_printable_encode(std::string(76, 'a') + "\n" + std::string(76, 'b')),
            std::string(76, 'a') + "\r\n" + std::string(76, 'b'));
  // An escape never straddles a soft break: 74 + "=C3" would be 77.
  EXPECT_EQ(quoted_printable_encode(std::string(74, 'a') + "\xC3\xA9"),
            std::string(74, 'a') + "=\r\n=C3=A9");
  // 73 + "=3D" is 76, allowed only as the end of the line.
  EXPECT_EQ(quoted_printable_encode(std::string(73, 'a') + "="), std::string(73, 'a') + "=3D");
  EXPECT_EQ(quoted_printable_encode(std::string(73, 'a') + "=b"),
            std::string(73, 'a') + "=\r\n=3Db");
  // Trailing whitespace at the limit is escaped on its own line.
  EXPECT_EQ(quoted_printable_encode(std::string(75, 'a') + " "), std::string(75, 'a') + "=\r\n=20");
}

TEST(QuotedPrintable, EveryLineLengthAndLastCharacter) {
  for (std::size_t length = 0; length <= 240; ++length) {
    for (const std::string_view last : {"x", " ", "\t", "=", "\xC3\xA9", "\xF0\x9F\x98\x80"}) {
      const std::string line = std::string(length, 'y') + std::string(last);
      expect_good_round_trip(line);
      expect_good_round_trip(line + "\n" + line + "\r\n");
    }
  }
}

TEST(QuotedPrintable, AllByteValuesRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  expect_good_round_trip(all);
  for (int i = 255; i >= 0; --i) all.push_back(static_cast<char>(i));
  expect_good_round_trip(all);
}

TEST(QuotedPrintable, RandomDataRoundTrips) {
  std::mt19937_64 rng(2026);
  // Biased towards what makes quoted-printable hard: whitespace, '=', line
  // ends, CR alone, and non-ASCII.
  const std::string_view interesting = " \t=\r\n\n.\x80\xC3\xA9\xFF";
  std::uniform_int_distribution<int> pick(0, 3), octet(0, 255),
      index(0, static_cast<int>(interesting.size()) - 1), length(0, 600);
  for (int round = 0; round < 500; ++round) {
    std::string data;
    const int size = length(rng);
    for (int i = 0; i < size; ++i) {
      const int kind = pick(rng);
      if (kind == 0) {
        data.push_back(static_cast<char>(octet(rng)));
      } else if (kind == 1) {
        data.push_back(interesting[static_cast<std::size_t>(index(rng))]);
      } else {
        data.push_back(static_cast<char>('a' + octet(rng) % 26));
      }
    }
    expect_good_round_trip(data);
  }
}

TEST(QuotedPrintable, DecodesWhatOthersWrite) {
  EXPECT_EQ(quoted_printable_decode("soft=\r\nbreak"), "softbreak");
  EXPECT_EQ(quoted_printable_decode("lower=3d=c3=a9"), "lower=\xC3\xA9");
  // Whitespace a transport added at the end of a line is not data.
  EXPECT_EQ(quoted_printable_decode("padded  \r\nline\t\r\n"), "padded\r\nline\r\n");
  EXPECT_EQ(quoted_printable_decode("soft =  \r\nbreak"), "soft break");
  EXPECT_EQ(quoted_printable_decode("at the end="), "at the end");
}

TEST(QuotedPrintable, DecodeRefusesMalformedText) {
  for (const std::string_view bad :
       {"=4", "=G0", "a=\r", "bare\nlf", "bare\rcr", "raw\xC3\xA9", "ctl\x01", "=\n"}) {
    EXPECT_EQ(quoted_printable_decode(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace mailgate::mime
