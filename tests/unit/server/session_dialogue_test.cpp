// Unit tests of the inbound SMTP dialogue (server::Session) without a real
// network: the client is the other end of a socketpair (tests/support/
// session_rig.hpp) and a real RocksDB spool in a temporary directory stores
// what is accepted. Each test sends its whole input at once (so every test
// also exercises pipelining: the session must answer every command, in
// order, from one read) and checks the exact replies, then the spool.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "smtp/reply.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "support/session_rig.hpp"

namespace mailgate::server {
namespace {

using namespace std::chrono_literals;
using testing::SessionRig;

// Listener 0 lets the rig's client relay; listener 1 does not (it may only
// send to relay.test); listener 2 offers STARTTLS in its config but has no
// certificate anywhere, so it must not be offered.
void configure(settings::GatewayConfig& cfg) {
  ListenerConfig relay;
  relay.address = "rig:relay";
  relay.relay_networks = {SessionRig::client_network()};
  relay.max_message_size = 10000;
  relay.max_recipients = 3;
  relay.greet_pause = {};  // the input is there before the greeting
  relay.min_data_rate = 0;
  relay.command_timeout = 10s;
  relay.data_timeout = 10s;
  cfg.listeners.push_back(relay);
  ListenerConfig inbound = relay;
  inbound.address = "rig:inbound";
  inbound.relay_networks.clear();
  inbound.relay_domains = {"relay.test"};
  cfg.listeners.push_back(inbound);
  ListenerConfig starttls = relay;
  starttls.address = "rig:starttls";
  starttls.starttls = true;
  cfg.listeners.push_back(starttls);
  cfg.spool.body_buffer = 512;  // bigger bodies spill chunks to the spool
}

constexpr std::size_t kRelay = 0, kInbound = 1, kStarttls = 2;

std::vector<std::string> lines(const smtp::Reply& r) {
  std::vector<std::string> out;
  std::size_t from = 0;
  for (std::size_t nl; (nl = r.text.find('\n', from)) != std::string::npos; from = nl + 1)
    out.push_back(r.text.substr(from, nl - from));
  out.push_back(r.text.substr(from));
  return out;
}

struct Answer {
  std::vector<smtp::Reply> replies;
  SessionRig::Conversation conversation;
  // "code enhanced" of each reply after the greeting ("250" when no enhanced code).
  std::vector<std::string> codes() const {
    std::vector<std::string> out;
    for (std::size_t i = 1; i < replies.size(); ++i) {
      const auto& r = replies[i];
      out.push_back(std::to_string(r.code) + (r.enhanced.empty() ? "" : " " + r.enhanced));
    }
    return out;
  }
};

class SessionDialogue : public ::testing::Test {
 protected:
  SessionRig rig{configure};

  Answer talk(std::size_t listener, const std::string& input) {
    Answer a;
    a.conversation = rig.converse(listener, input, 20s);
    EXPECT_FALSE(a.conversation.exception);
    EXPECT_TRUE(a.conversation.ended) << "the session did not end";
    EXPECT_TRUE(a.conversation.closed) << "the connection was not closed";
    auto parsed = testing::parse_replies(a.conversation.received);
    EXPECT_FALSE(parsed.error) << a.conversation.received;
    EXPECT_EQ(parsed.rest, "") << "an unfinished reply";
    a.replies = std::move(parsed.replies);
    EXPECT_FALSE(a.replies.empty());
    if (!a.replies.empty()) {
      EXPECT_EQ(a.replies[0].code, 220);
      EXPECT_EQ(a.replies[0].text, "mx.rig.test ESMTP mailgate");
    }
    return a;
  }

  // The messages stored (meta keys) since the test started.
  std::vector<std::string> stored() { return rig.keys_from(SessionRig::Family::Meta, start_); }
  std::vector<std::string> body_chunks() { return rig.keys_from(SessionRig::Family::Body, start_); }

  // The id a "250 2.0.0 OK id=<id>" reply names.
  static spool::MessageId acked_id(const smtp::Reply& r) {
    EXPECT_EQ(r.code, 250);
    EXPECT_EQ(r.text.rfind("OK id=", 0), 0u) << r.text;
    auto id = spool::MessageId::from_hex(std::string_view(r.text).substr(6));
    EXPECT_TRUE(id.has_value()) << r.text;
    return id.value_or(spool::MessageId{});
  }

  std::string start_{spool::MessageId::make(spool::wall_clock_ms(), 0, 0).key()};
};

TEST_F(SessionDialogue, GreetingThenQuit) {
  const auto a = talk(kRelay, "QUIT\r\n");
  ASSERT_EQ(a.replies.size(), 2u);
  EXPECT_EQ(a.codes(), (std::vector<std::string>{"221 2.0.0"}));
  EXPECT_EQ(a.replies[1].text, "mx.rig.test closing connection");
}

TEST_F(SessionDialogue, EhloListsTheExtensionsAndNothingUnbuilt) {
  const auto a = talk(kRelay, "EHLO client.test\r\nQUIT\r\n");
  ASSERT_EQ(a.replies.size(), 3u);
  const auto& ehlo = a.replies[1];
  EXPECT_EQ(ehlo.code, 250);
  EXPECT_EQ(ehlo.enhanced, "");  // RFC 2034: none on EHLO
  EXPECT_EQ(lines(ehlo), (std::vector<std::string>{"mx.rig.test greets client.test", "PIPELINING",
                                                   "SIZE 10000", "8BITMIME", "SMTPUTF8",
                                                   "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"}));
}

TEST_F(SessionDialogue, HeloIsOneLineWithoutExtensions) {
  const auto a = talk(kRelay, "HELO client.test\r\nQUIT\r\n");
  ASSERT_EQ(a.replies.size(), 3u);
  EXPECT_EQ(a.replies[1].code, 250);
  EXPECT_EQ(lines(a.replies[1]), (std::vector<std::string>{"mx.rig.test"}));
}

TEST_F(SessionDialogue, BadEhloArgumentsAreRefusedWithoutEnhancedCode) {
  const auto a = talk(kRelay, "EHLO\r\nHELO bad_name!\r\nEHLO a.test\r\nQUIT\r\n");
  ASSERT_EQ(a.replies.size(), 5u);
  EXPECT_EQ(a.replies[1].code, 501);
  EXPECT_EQ(a.replies[1].enhanced, "");
  EXPECT_EQ(a.replies[2].code, 501);
  EXPECT_EQ(a.replies[3].code, 250);
}

TEST_F(SessionDialogue, StarttlsIsNotOfferedWithoutACertificateAndRefused) {
  const auto a = talk(kStarttls, "EHLO client.test\r\nSTARTTLS\r\nNOOP\r\nQUIT\r\n");
  ASSERT_EQ(a.replies.size(), 5u);
  for (const auto& line : lines(a.replies[1])) EXPECT_NE(line, "STARTTLS");
  EXPECT_EQ(a.codes(), (std::vector<std::string>{"250", "502 5.5.1", "250 2.0.0", "221 2.0.0"}));
  EXPECT_EQ(a.replies[2].text, "STARTTLS not available");
}

TEST_F(SessionDialogue, CommandsOutOfSequenceAre503) {
  const auto a = talk(kRelay,
                      "MAIL FROM:<a@client.test>\r\n"  // before EHLO
                      "EHLO client.test\r\n"
                      "RCPT TO:<b@dest.test>\r\n"  // before MAIL
                      "DATA\r\n"                   // before MAIL
                      "MAIL FROM:<a@client.test>\r\n"
                      "MAIL FROM:<a@client.test>\r\n"  // nested
                      "DATA\r\n"                       // no recipient
                      "BDAT 0 LAST\r\n"                // no recipient either
                      "QUIT\r\n");
  EXPECT_EQ(a.codes(),
            (std::vector<std::string>{"503 5.5.1", "250", "503 5.5.1", "503 5.5.1", "250 2.1.0",
                                      "503 5.5.1", "554 5.5.1", "554 5.5.1", "221 2.0.0"}));
  EXPECT_EQ(a.replies[1].text, "send EHLO or HELO first");
  EXPECT_EQ(a.replies[3].text, "need MAIL before RCPT");
  EXPECT_EQ(a.replies[6].text, "nested MAIL command");
  EXPECT_TRUE(stored().empty());
}

TEST_F(SessionDialogue, RelayIsRefusedOutsideRelayNetworksButLocalDomainsAccepted) {
  const auto a = talk(kInbound,
                      "EHLO client.test\r\n"
                      "MAIL FROM:<a@client.test>\r\n"
                      "RCPT TO:<victim@elsewhere.test>\r\n"
                      "RCPT TO:<user%elsewhere.test@relay.test>\r\n"  // source routing
                      "RCPT TO:<user@RELAY.test>\r\n"
                      "DATA\r\n"
                      "Subject: hi\r\n\r\nbody\r\n.\r\n"
                      "QUIT\r\n");
  ASSERT_EQ(a.replies.size(), 9u);
  EXPECT_EQ(a.codes(), (std::vector<std::string>{"250", "250 2.1.0", "550 5.7.1", "550 5.7.1",
                                                 "250 2.1.5", "354", "250 2.0.0", "221 2.0.0"}));
  EXPECT_EQ(a.replies[3].text, "relaying denied");
  const auto id = acked_id(a.replies[7]);
  spool::Envelope env;
  ASSERT_TRUE(rig.store().read_envelope(id, env));
  ASSERT_EQ(env.recipients.size(), 1u);
  EXPECT_EQ(env.recipients[0].address, "user@RELAY.test");  // as sent; the queue's is normalized
  ASSERT_EQ(rig.queued().size(), 1u);
  ASSERT_EQ(rig.queued().begin()->second.size(), 1u);
  EXPECT_EQ(rig.queued().begin()->second[0].name, "relay.test");
}

TEST_F(SessionDialogue, PipelinedTransactionsAreAnsweredInOrderAndStored) {
  std::string input = "EHLO client.test\r\n";
  for (int i = 0; i < 3; ++i) {
    input += "MAIL FROM:<a@client.test>\r\nRCPT TO:<b" + std::to_string(i) +
             "@dest.test>\r\nDATA\r\nSubject: " + std::to_string(i) + "\r\n\r\nline\r\n.\r\n";
  }
  input += "QUIT\r\n";
  const auto a = talk(kRelay, input);
  ASSERT_EQ(a.replies.size(), 1u + 1 + 3 * 4 + 1);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const auto* r = &a.replies[2 + 4 * i];
    EXPECT_EQ(r[0].code, 250);
    EXPECT_EQ(r[1].code, 250);
    EXPECT_EQ(r[2].code, 354);
    const auto id = acked_id(r[3]);
    spool::Envelope env;
    ASSERT_TRUE(rig.store().read_envelope(id, env));
    ASSERT_EQ(env.recipients.size(), 1u);
    EXPECT_EQ(env.recipients[0].address, "b" + std::to_string(i) + "@dest.test");
    std::string body;
    ASSERT_TRUE(rig.store().read_body(id, env.body_chunks, body));
    EXPECT_NE(body.find("Subject: " + std::to_string(i) + "\r\n\r\nline\r\n"), std::string::npos)
        << body;
    ids.emplace_back(id.key());
  }
  EXPECT_EQ(a.replies.back().code, 221);
  EXPECT_EQ(stored(), ids);  // ids grow: stored in order, nothing else
  EXPECT_EQ(rig.queued().size(), 3u);
}

TEST_F(SessionDialogue, BdatChunksMakeOneMessageAndCountTheirOctets) {
  const std::string chunk1 = "Subject: bdat\r\n\r\nfirst part, ";
  const std::string chunk2 = "second part\r\n";
  const auto a = talk(kRelay,
                      "EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n"
                      "RCPT TO:<b@dest.test>\r\n"
                      "BDAT " +
                          std::to_string(chunk1.size()) + "\r\n" + chunk1 + "BDAT " +
                          std::to_string(chunk2.size()) + " LAST\r\n" + chunk2 + "QUIT\r\n");
  ASSERT_EQ(a.replies.size(), 7u);
  EXPECT_EQ(a.replies[4].code, 250);
  EXPECT_EQ(a.replies[4].text, std::to_string(chunk1.size()) + " octets received");
  const auto id = acked_id(a.replies[5]);
  spool::Envelope env;
  ASSERT_TRUE(rig.store().read_envelope(id, env));
  std::string body;
  ASSERT_TRUE(rig.store().read_body(id, env.body_chunks, body));
  // A BDAT body is taken as sent: no dot-unstuffing, no end-of-data line.
  EXPECT_TRUE(body.ends_with(chunk1 + chunk2)) << body;
}

TEST_F(SessionDialogue, BdatAfterDataIsRefusedAndBadBdatClosesTheSession) {
  const auto a = talk(kRelay,
                      "EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.test>\r\n"
                      "BDAT 4\r\nab\r\nDATA\r\n"
                      "BDAT 12x\r\nQUIT\r\n");
  EXPECT_EQ(a.codes(), (std::vector<std::string>{"250", "250 2.1.0", "250 2.1.5", "250 2.0.0",
                                                 "503 5.5.1", "501 5.5.4", "421 4.5.0"}));
  EXPECT_EQ(a.replies[5].text, "DATA not allowed after BDAT");
  // The abandoned chunk is deleted with its transaction.
  EXPECT_TRUE(body_chunks().empty());
  EXPECT_TRUE(stored().empty());
}

TEST_F(SessionDialogue, AbandonedSpilledBdatLeavesNoChunk) {
  // Bigger than spool.body_buffer (512): its first part goes to the spool.
  const std::string big(3000, 'x');
  const auto a = talk(kRelay,
                      "EHLO client.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.test>\r\n"
                      "BDAT 3000\r\n" +
                          big + "RSET\r\nQUIT\r\n");
  EXPECT_EQ(a.codes(), (std::vector<std::string>{"250", "250 2.1.0", "250 2.1.5", "250 2.0.0",
                                                 "250 2.0.0", "221 2.0.0"}));
  EXPECT_TRUE(body_chunks().empty());
  EXPECT_TRUE(stored().empty());
}

TEST_F(SessionDialogue, BareLfInACommandOrTheBodyIsRejected) {
  const auto a = talk(kRelay, "EHLO client.test\nNOOP\r\nQUIT\r\n");
  EXPECT_EQ(a.codes(), (std::vector<std::string>{"500 5.5.2", "250 2.0.0", "221 2.0.0"}));
  EXPECT_EQ(a.replies[1].text, "command lines must end with CRLF");
  // A bare-LF "end of data" is body, not an end (SMTP smuggling): the
  // message ends at CRLF.CRLF and is refused, with what was smuggled in it.
  const auto b = talk(kRelay,
                      "HELO client.test\r\n"
                      "MAIL FROM:<a@client.test>\r\nRCPT TO:<b@dest.test>\r\nDATA\r\n"
                      "Subject: smuggle\r\n\r\nline\n.\nMAIL FROM:<x@y.test>\r\n.\r\n"
                      "QUIT\r\n");
  EXPECT_EQ(b.codes(), (std::vector<std::string>{"250", "250 2.1.0", "250 2.1.5", "354",
                                                 "550 5.5.2", "221 2.0.0"}));
  EXPECT_TRUE(stored().empty());
  EXPECT_TRUE(body_chunks().empty());
}

TEST_F(SessionDialogue, TooManyRecipientsAndOversizedMessages) {
  std::string input =
      "EHLO client.test\r\nMAIL FROM:<a@client.test> SIZE=20000\r\n"
      "MAIL FROM:<a@client.test>\r\n";
  for (int i = 0; i < 4; ++i) input += "RCPT TO:<r" + std::to_string(i) + "@dest.test>\r\n";
  input += "DATA\r\n" + std::string(12000, 'y') + "\r\n.\r\nQUIT\r\n";
  const auto a = talk(kRelay, input);
  EXPECT_EQ(a.codes(),
            (std::vector<std::string>{"250", "552 5.3.4", "250 2.1.0", "250 2.1.5", "250 2.1.5",
                                      "250 2.1.5", "452 4.5.3", "354", "552 5.3.4", "221 2.0.0"}));
  EXPECT_TRUE(stored().empty());
  EXPECT_TRUE(body_chunks().empty());
}

}  // namespace
}  // namespace mailgate::server
