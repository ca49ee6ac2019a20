// Unit tests of dkim/canonicalization: the RFC 6376 §3.4.5 examples, the
// edge cases of §3.4.3/§3.4.4 (empty body, trailing empty lines, no final
// CRLF), and that streaming in pieces gives the same bytes as one piece.
#include "dkim/canonicalization.hpp"

#include <gtest/gtest.h>

#include "mime/header_section.hpp"
#include "text/base64.hpp"

namespace mailgate::dkim {
namespace {

// RFC 6376 §3.4.5: the example message.
constexpr std::string_view kHeaders = "A: X\r\nB : Y\t\r\n\tZ  \r\n";
constexpr std::string_view kBody = " C \r\nD \t E\r\n\r\n\r\n";

std::string headers(Canonicalization c) {
  std::string out;
  for (const auto& f : mime::split_header_fields(kHeaders)) canonicalize_header(c, f.raw, out);
  return out;
}

std::string body(Canonicalization c, std::string_view in, std::size_t piece = 0) {
  BodyCanonicalizer b(c);
  std::string out;
  if (piece == 0) piece = in.size() + 1;
  for (std::size_t i = 0; i < in.size(); i += piece) {
    b.update(in.substr(i, piece));
    out += b.output();
    b.output().clear();
  }
  b.finish();
  return out + b.output();
}

std::string b64(const Sha256& h) {
  return text::base64_encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size()));
}

TEST(DkimCanonicalization, Rfc6376RelaxedExample) {
  EXPECT_EQ(headers(Canonicalization::Relaxed), "a:X\r\nb:Y Z\r\n");
  EXPECT_EQ(body(Canonicalization::Relaxed, kBody), " C\r\nD E\r\n");
}

TEST(DkimCanonicalization, Rfc6376SimpleExample) {
  EXPECT_EQ(headers(Canonicalization::Simple), kHeaders);
  EXPECT_EQ(body(Canonicalization::Simple, kBody), " C \r\nD \t E\r\n");
}

TEST(DkimCanonicalization, EmptyBody) {
  EXPECT_EQ(body(Canonicalization::Simple, ""), "\r\n");
  EXPECT_EQ(body(Canonicalization::Relaxed, ""), "");
  EXPECT_EQ(body(Canonicalization::Simple, "\r\n\r\n"), "\r\n");
  EXPECT_EQ(body(Canonicalization::Relaxed, " \t\r\n\r\n"), "");
  // The well-known hashes of the empty body.
  EXPECT_EQ(b64(body_hash(Canonicalization::Simple, "")),
            "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
  EXPECT_EQ(b64(body_hash(Canonicalization::Relaxed, "")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

TEST(DkimCanonicalization, MissingFinalCrlfAndInnerEmptyLines) {
  EXPECT_EQ(body(Canonicalization::Simple, "a\r\n\r\nb"), "a\r\n\r\nb\r\n");
  EXPECT_EQ(body(Canonicalization::Relaxed, "a  \r\n \r\nb\t"), "a\r\n\r\nb\r\n");
}

TEST(DkimCanonicalization, TrailingWhitespaceLinesAreEmptyOnlyInRelaxed) {
  EXPECT_EQ(body(Canonicalization::Simple, "a\r\n \r\n"), "a\r\n \r\n");
  EXPECT_EQ(body(Canonicalization::Relaxed, "a\r\n \r\n"), "a\r\n");
}

TEST(DkimCanonicalization, BareLfStaysInTheLine) {
  EXPECT_EQ(body(Canonicalization::Simple, "a\nb\r\n"), "a\nb\r\n");
}

TEST(DkimCanonicalization, PiecesGiveTheSameBytes) {
  const std::string in = std::string(kBody) + "x \t y\r\n\r\nlast line  \r\n\r\n";
  for (auto c : {Canonicalization::Simple, Canonicalization::Relaxed}) {
    const auto whole = body(c, in);
    for (std::size_t piece = 1; piece < 8; ++piece) EXPECT_EQ(body(c, in, piece), whole) << piece;
    BodyHasher h(c);
    for (char ch : in) h.update(std::string_view(&ch, 1));
    EXPECT_EQ(b64(h.finish()), b64(body_hash(c, in)));
  }
}

TEST(DkimCanonicalization, HasherCopyContinuesIndependently) {
  BodyHasher first(Canonicalization::Relaxed);
  first.update("line one\r\n\r\n");
  BodyHasher copy(first);
  copy.update("tail\r\n");
  EXPECT_EQ(b64(copy.finish()),
            b64(body_hash(Canonicalization::Relaxed, "line one\r\n\r\ntail\r\n")));
  EXPECT_EQ(b64(first.finish()), b64(body_hash(Canonicalization::Relaxed, "line one\r\n")));
}

TEST(DkimCanonicalization, RelaxedHeaderUnfoldsAndLowercases) {
  std::string out;
  canonicalize_header(Canonicalization::Relaxed, "Subject:  Hello\r\n  big\t world \r\n", out);
  EXPECT_EQ(out, "subject:Hello big world\r\n");
}

TEST(DkimCanonicalization, Parse) {
  auto p = parse_canonicalization("relaxed/simple");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->header, Canonicalization::Relaxed);
  EXPECT_EQ(p->body, Canonicalization::Simple);
  p = parse_canonicalization("relaxed");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->body, Canonicalization::Simple);
  EXPECT_FALSE(parse_canonicalization("loose/relaxed"));
  EXPECT_FALSE(parse_canonicalization("relaxed/"));
}

}  // namespace
}  // namespace mailgate::dkim
