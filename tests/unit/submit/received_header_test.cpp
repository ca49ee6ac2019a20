// The Received: trace header (DESIGN §7).
#include "submit/received_header.hpp"

#include <gtest/gtest.h>

namespace mailgate::submit {
namespace {

ReceivedInfo base() {
  ReceivedInfo i;
  i.helo = "client.example";
  i.client_ip = "192.0.2.7";
  i.hostname = "gw.example.com";
  i.id = "0123456789abcdef0123456789abcdef";
  i.when = std::chrono::system_clock::from_time_t(1795876089);  // 2026-11-28 14:28:09 UTC
  return i;
}

TEST(ReceivedHeader, DesignFormatWithOneRecipient) {
  auto i = base();
  i.for_rcpt = "rcpt@example.org";
  std::string out;
  append_received_header(i, out);
  EXPECT_EQ(out,
            "Received: from client.example ([192.0.2.7] [192.0.2.7])\r\n"
            "\tby gw.example.com (mailgate) with ESMTP id 0123456789abcdef0123456789abcdef\r\n"
            "\tfor <rcpt@example.org>; Sat, 28 Nov 2026 14:28:09 +0000\r\n");
}

TEST(ReceivedHeader, TlsVersionAndCipherAsAComment) {
  auto i = base();
  i.tls = true;
  i.tls_version = "TLSv1.3";
  i.tls_cipher = "TLS_AES_256_GCM_SHA384";
  i.tls_bits = 256;
  std::string out;
  append_received_header(i, out);
  EXPECT_EQ(out,
            "Received: from client.example ([192.0.2.7] [192.0.2.7])\r\n"
            "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n"
            "\tby gw.example.com (mailgate) with ESMTPS id 0123456789abcdef0123456789abcdef; "
            "Sat, 28 Nov 2026 14:28:09 +0000\r\n");
  // A CR/LF in the cipher name (impossible from OpenSSL; the last defence) is cut.
  i.tls_cipher = "X\r\nBcc: evil";
  out.clear();
  append_received_header(i, out);
  EXPECT_EQ(out.find("Bcc"), std::string::npos);
}

TEST(ReceivedHeader, ProtocolNames) {
  struct {
    bool esmtp, tls, auth, utf8;
    const char* proto;
  } cases[] = {
      {false, false, false, false, "with SMTP id"},  {true, false, false, false, "with ESMTP id"},
      {true, true, false, false, "with ESMTPS id"},  {true, true, true, false, "with ESMTPSA id"},
      {true, false, true, false, "with ESMTPA id"},  {true, false, false, true, "with UTF8SMTP id"},
      {true, true, true, true, "with UTF8SMTPSA id"}};
  for (const auto& c : cases) {
    auto i = base();
    i.esmtp = c.esmtp;
    i.tls = c.tls;
    i.auth = c.auth;
    i.smtputf8 = c.utf8;
    std::string out;
    append_received_header(i, out);
    EXPECT_NE(out.find(c.proto), std::string::npos) << out;
  }
}

TEST(ReceivedHeader, NoForClauseForSeveralRecipientsAndRdnsWhenKnown) {
  auto i = base();
  i.rdns = "host.client.example";
  std::string out;
  append_received_header(i, out);
  EXPECT_NE(out.find("(host.client.example [192.0.2.7])"), std::string::npos);
  EXPECT_EQ(out.find("for <"), std::string::npos);
  EXPECT_NE(out.find("id 0123456789abcdef0123456789abcdef; Sat, 28 Nov 2026"), std::string::npos);
}

TEST(ReceivedHeader, ControlCharactersNeverReachTheHeader) {
  auto i = base();
  i.helo = "evil\r\nBcc: x@y";
  std::string out;
  append_received_header(i, out);
  EXPECT_EQ(out.find("Bcc"), std::string::npos);
  // Every line ends with CRLF and continuation lines are folded with a tab.
  std::size_t pos = 0, lines = 0;
  while ((pos = out.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    ++lines;
    if (pos < out.size()) {
      EXPECT_EQ(out[pos], '\t');
    }
  }
  EXPECT_EQ(lines, 2u);
}

}  // namespace
}  // namespace mailgate::submit
