// Text bodies: canonical line ends, the 7bit / quoted-printable / base64
// choice, and that every choice encodes to short lines and decodes back.
#include <gtest/gtest.h>

#include <string>

#include "mime/mime.hpp"
#include "mime_reader.hpp"

namespace mailgate::mime {
namespace {

using namespace std::string_view_literals;

std::string repeat(std::string_view piece, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += piece;
  return out;
}

TEST(CanonicalText, LineEndsBecomeCrlfWithAFinalOne) {
  EXPECT_EQ(to_canonical_text(""), "");
  EXPECT_EQ(to_canonical_text("a"), "a\r\n");
  EXPECT_EQ(to_canonical_text("a\n"), "a\r\n");
  EXPECT_EQ(to_canonical_text("a\r\n"), "a\r\n");
  EXPECT_EQ(to_canonical_text("a\nb\r\nc"), "a\r\nb\r\nc\r\n");
  EXPECT_EQ(to_canonical_text("\n\n"), "\r\n\r\n");
  EXPECT_EQ(to_canonical_text("lone\rcr"), "lone\rcr\r\n");
  EXPECT_EQ(to_canonical_text("a\r"), "a\r\r\n");
}

TEST(TransferEncoding, SevenBitForShortAsciiLines) {
  EXPECT_EQ(choose_transfer_encoding(""), TransferEncoding::SevenBit);
  EXPECT_EQ(choose_transfer_encoding("Hello\r\n\tworld = 1\r\n"), TransferEncoding::SevenBit);
  EXPECT_EQ(choose_transfer_encoding(std::string(998, 'a') + "\r\n"), TransferEncoding::SevenBit);
}

TEST(TransferEncoding, QuotedPrintableForMostlyAscii) {
  // Too long a line for 7bit.
  EXPECT_EQ(choose_transfer_encoding(std::string(999, 'a') + "\r\n"),
            TransferEncoding::QuotedPrintable);
  EXPECT_EQ(choose_transfer_encoding("Caf\xC3\xA9 au lait, s'il vous pla\xC3\xAEt.\r\n"),
            TransferEncoding::QuotedPrintable);
  // Controls and a lone CR are not 7bit.
  EXPECT_EQ(choose_transfer_encoding("form\x0C"
                                     "feed\r\n"),
            TransferEncoding::QuotedPrintable);
  EXPECT_EQ(choose_transfer_encoding("lone\rcr in a longer line\r\n"),
            TransferEncoding::QuotedPrintable);
  EXPECT_EQ(choose_transfer_encoding("nul\0 in a longer line\r\n"sv),
            TransferEncoding::QuotedPrintable);
}

TEST(TransferEncoding, Base64ForMostlyNonAscii) {
  // Cyrillic: two octets >= 0x80 per letter.
  EXPECT_EQ(choose_transfer_encoding(repeat("\xD0\x9F\xD1\x80\xD0\xB8 ", 20) + "\r\n"),
            TransferEncoding::Base64);
  EXPECT_EQ(choose_transfer_encoding(repeat("\xE6\x97\xA5", 100) + "\r\n"),
            TransferEncoding::Base64);
}

TEST(TransferEncoding, NamesAreTheContentTransferEncodingTokens) {
  EXPECT_EQ(transfer_encoding_name(TransferEncoding::SevenBit), "7bit");
  EXPECT_EQ(transfer_encoding_name(TransferEncoding::QuotedPrintable), "quoted-printable");
  EXPECT_EQ(transfer_encoding_name(TransferEncoding::Base64), "base64");
}

TEST(EncodeBody, EveryChoiceGivesShortLinesAndDecodesBack) {
  const std::string bodies[] = {
      "plain\nascii\n",
      std::string(5000, 'a'),
      "<p>" + repeat("caf\xC3\xA9 ", 1000) + "</p>",
      "<p>" + repeat("\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", 1700) + "</p>",
      "lone\rcr and trailing space \nand tab\t\n",
  };
  for (const auto& body : bodies) {
    const std::string canonical = to_canonical_text(body);
    const TransferEncoding encoding = choose_transfer_encoding(canonical);
    const std::string encoded = encode_body(canonical, encoding);
    ASSERT_GE(encoded.size(), 2u);
    EXPECT_EQ(encoded.substr(encoded.size() - 2), "\r\n");
    const std::size_t limit = encoding == TransferEncoding::SevenBit ? 998 : 76;
    for (const auto& line : test::crlf_lines(encoded)) EXPECT_LE(line.size(), limit);
    test::Entity entity;
    entity.fields.push_back(
        {"content-transfer-encoding", "", std::string(transfer_encoding_name(encoding))});
    entity.body = encoded;
    EXPECT_EQ(test::decode_body(entity), test::expected_canonical(body));
  }
}

}  // namespace
}  // namespace mailgate::mime
