// Fuzz target: a whole inbound SMTP session, driven by the fuzzer's input as
// the client's byte stream. The real server::Session (dialogue, DATA/BDAT
// reception, limits), the real submission stage and a real RocksDB spool in
// a temporary directory answer it, over the socketpair seam of
// tests/support/session_rig.hpp (no network; spool writes not fsynced, no
// delivery engine, no Lua policy).
//
// Deterministic (see the rig): only message ids and the Received header's
// date vary. Inputs over 64 KiB are skipped: they might not fit in the
// socket buffer at once.
// MAILGATE_FUZZ_DETERMINISM=1 runs every input twice and checks that the
// replies are identical (ids masked); MAILGATE_FUZZ_SHOW=1 prints each
// input's replies (to read what a reproducer does).
//
// Input: octet 0 selects the listener (its low 2 bits; seeds use '0'..'3'):
//   bit 0: the client may relay (its address is in relay_networks);
//   bit 1: tight limits (3 errors, 3 junk commands, 64-octet lines, 512-octet
//          messages, 1 recipient) instead of the small defaults below.
// The rest is what the client sends.
//
// Invariants checked per input:
//  - the session ends and closes the connection (no hang; 10 s deadline);
//  - everything the server sent parses as well-formed replies (a code on
//    every line), the first being the 220 greeting, none left unfinished;
//    no more replies than the input has LFs plus three (the greeting, the
//    500 for an over-long last line without LF, a closing 421); a 221 or 421
//    is the last reply;
//  - every "250 2.0.0 OK id=<id>" names a message that is in the spool with
//    its envelope (1..max_recipients recipients), its complete body
//    (Envelope::size octets, ending in CRLF) and its queue records, and that
//    was handed to the queue; no other message was stored or queued;
//  - relay control: a client that may not relay got messages queued only
//    for relay_domains, to recipients whose domain normalizes to one of them
//    and whose local part has no routing characters;
//  - once those messages are removed the spool is empty: refused, aborted
//    and abandoned transactions leave no body chunk, envelope or queue
//    record behind;
//  - nothing is logged at error level (e.g. an exception escaping a session).
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dns/idna.hpp"
#include "fuzz_check.hpp"
#include "smtp/address.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "support/session_rig.hpp"

using namespace mailgate;
using mailgate::fuzz::show;
using mailgate::testing::SessionRig;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kRelayDomains = {"example.test", "xn--bcher-kva.test"};

// Error-level log lines are findings: the gateway logs at that level only
// when something is wrong (an exception escaping a session, a spool error).
class FailOnErrorSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::err) return;
    FUZZ_CHECK(false, "error logged: " + std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}
};

void configure(settings::GatewayConfig& cfg) {
  cfg.hostname = "mx.fuzz.test";
  cfg.spool.body_buffer = 256;  // bodies over 256 octets spill chunks to the spool
  for (int i = 0; i < 4; ++i) {
    server::ListenerConfig l;
    l.address = "fuzz:" + std::to_string(i);
    l.relay_networks.clear();
    if (i & 1) l.relay_networks.push_back(SessionRig::client_network());
    l.relay_domains = kRelayDomains;
    const bool tight = (i & 2) != 0;
    l.max_message_size = tight ? 512 : 4096;
    l.max_recipients = tight ? 1 : 4;
    l.max_line_length = tight ? 64 : 256;
    l.max_errors = tight ? 3 : 20;
    l.max_junk_commands = tight ? 3 : 30;
    l.command_timeout = 10s;
    l.data_timeout = 10s;
    l.greet_pause = {};  // the whole input is there before the greeting
    l.min_data_rate = 0;
    cfg.listeners.push_back(l);
  }
}

// One per process (libFuzzer never returns from main; the temporary spool
// directory is removed by an atexit handler).
SessionRig* g_rig = nullptr;

void remove_temp_dir() {
  if (g_rig == nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(g_rig->dir(), ec);
}

SessionRig& rig() {
  if (g_rig == nullptr) {
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<FailOnErrorSink>()));
    g_rig = new SessionRig(configure);
    std::atexit(remove_temp_dir);
  }
  return *g_rig;
}

using Conversation = SessionRig::Conversation;

// One session from connect to close.
Conversation converse(SessionRig& h, std::size_t listener, std::string_view input) {
  auto c = h.converse(listener, input, 10s);
  FUZZ_CHECK(!c.exception, "an exception escaped Session::run()");
  FUZZ_CHECK(c.ended && c.closed,
             std::string(c.ended ? "the connection was not closed" : "the session did not end") +
                 " within 10 s; replies so far: " + show(c.received));
  return c;
}

std::vector<smtp::Reply> parse_replies(const Conversation& c, std::string_view input) {
  auto parsed = testing::parse_replies(c.received);
  FUZZ_CHECK(!parsed.error, "malformed reply from the server in " + show(c.received));
  FUZZ_CHECK(parsed.rest.empty(), "unfinished reply at the end: " + show(c.received));
  const auto& out = parsed.replies;
  FUZZ_CHECK(
      !out.empty() && out.front().code == 220 && out.front().text == "mx.fuzz.test ESMTP mailgate",
      "no 220 greeting first: " + show(c.received));
  const auto lfs = static_cast<std::size_t>(std::count(input.begin(), input.end(), '\n'));
  FUZZ_CHECK(out.size() <= lfs + 3, std::to_string(out.size()) + " replies to " +
                                        std::to_string(lfs) + " lines: " + show(c.received));
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    FUZZ_CHECK(out[i].code != 221 && out[i].code != 421,
               "a reply after " + std::to_string(out[i].code) + ": " + show(c.received));
  }
  return std::move(parsed.replies);
}

// The replies with message ids masked (they hold the time).
std::string masked(std::string s) {
  for (std::size_t p = 0; (p = s.find("id=", p)) != std::string::npos; p += 3) {
    for (std::size_t i = p + 3; i < s.size() && i < p + 3 + 32; ++i) s[i] = 'X';
  }
  return s;
}

std::string describe_keys(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) {
    const auto id = spool::MessageId::from_key(k);
    s += " " + (id ? id->hex() : std::string("?")) + "+" + show(std::string_view(k).substr(16));
  }
  return s;
}

bool relay_domain(std::string_view domain) {
  const std::string d = dns::normalize_domain(domain);
  return std::find(kRelayDomains.begin(), kRelayDomains.end(), d) != kRelayDomains.end();
}

// An acknowledged message: complete in the spool, queued, and within what
// the listener allows.
void check_message(SessionRig& h, const spool::MessageId& id, const server::ListenerConfig& l,
                   bool may_relay, const std::string& text) {
  spool::Envelope env;
  FUZZ_CHECK(h.store().read_envelope(id, env), "acknowledged message has no envelope: " + text);
  FUZZ_CHECK(!env.recipients.empty() && env.recipients.size() <= l.max_recipients,
             std::to_string(env.recipients.size()) + " recipients in " + text);
  std::string body;
  FUZZ_CHECK(h.store().read_body(id, env.body_chunks, body),
             "acknowledged message is missing body chunks: " + text);
  FUZZ_CHECK(body.size() == env.size && body.ends_with("\r\n"),
             "stored body (" + std::to_string(body.size()) + " octets) does not match the " +
                 "envelope (" + std::to_string(env.size) + "): " + text);
  FUZZ_CHECK(!h.store().read_dests(id).empty(),
             "acknowledged message has no queue record: " + text);
  const auto q = h.queued().find(std::string(id.key()));
  FUZZ_CHECK(q != h.queued().end(), "acknowledged message was not queued: " + text);
  if (may_relay) return;
  for (const auto& dest : q->second) {
    FUZZ_CHECK(relay_domain(dest.name),
               "queued for " + show(dest.name) + " from a client that may not relay: " + text);
  }
  for (const auto& r : env.recipients) {
    auto a = smtp::parse_mailbox(r.address, true);
    FUZZ_CHECK(std::holds_alternative<smtp::Address>(a),
               "stored recipient does not parse: " + show(r.address));
    const auto& addr = std::get<smtp::Address>(a);
    FUZZ_CHECK(relay_domain(addr.domain) && !addr.has_routing_chars(),
               "recipient " + show(r.address) + " accepted from a client that may not relay");
  }
}

// Runs one input; returns the replies (for the determinism check).
std::string run_input(SessionRig& h, std::size_t listener, std::string_view input) {
  const auto& lc = h.config().listeners[listener];
  const bool may_relay = !lc.relay_networks.empty();
  h.clear_queued();
  // This input's ids are at least this (one id generator, time-ordered ids).
  const std::string from(spool::MessageId::make(spool::wall_clock_ms(), 0, 0).key());
  const Conversation c = converse(h, listener, input);
  FUZZ_CHECK(c.remote_ip_seen == "::", "the socketpair's peer reads as " + c.remote_ip_seen +
                                           ", not \"::\": relay_networks would not match");
  const auto rs = parse_replies(c, input);

  std::map<std::string, std::string> acked;  // id key -> reply text
  for (const auto& r : rs) {
    if (r.code != 250 || r.text.rfind("OK id=", 0) != 0) continue;
    auto id = spool::MessageId::from_hex(std::string_view(r.text).substr(6));
    FUZZ_CHECK(id.has_value(), "bad id in " + show(r.text));
    FUZZ_CHECK(acked.emplace(std::string(id->key()), r.text).second, "id acknowledged twice");
    check_message(h, *id, lc, may_relay, r.text);
  }
  for (const auto& [key, dests] : h.queued()) {
    FUZZ_CHECK(acked.count(key) == 1,
               "queued without a 250: " + spool::MessageId::from_key(key)->hex());
  }

  // What this input put in the spool: only acknowledged messages. Remove
  // them; then nothing may be left. (Earlier inputs were checked the same
  // way, so the spool is empty between inputs.)
  const auto in_spool = h.keys_from(SessionRig::Family::Meta, from);
  for (const auto& key : in_spool) {
    FUZZ_CHECK(acked.count(key) == 1, "message in the spool without a 250:" + describe_keys({key}) +
                                          "\n    replies: " + show(c.received));
  }
  h.remove_messages(in_spool);
  const auto body = h.keys_from(SessionRig::Family::Body, from);
  FUZZ_CHECK(body.empty(), "body chunks left behind by a transaction:" + describe_keys(body) +
                               "\n    replies: " + show(c.received));
  const auto dests = h.keys_from(SessionRig::Family::Dest, from);
  FUZZ_CHECK(dests.empty(), "queue records left behind:" + describe_keys(dests));
  return masked(c.received);
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > SessionRig::kMaxInput + 1) return -1;
  auto& h = rig();
  const std::size_t listener = data[0] & 3;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string replies = run_input(h, listener, input);
  static const bool twice = env_flag("MAILGATE_FUZZ_DETERMINISM");
  static const bool print = env_flag("MAILGATE_FUZZ_SHOW");
  if (print) std::fprintf(stderr, "listener %zu replies:\n%s\n", listener, replies.c_str());
  if (twice) {
    const std::string again = run_input(h, listener, input);
    FUZZ_CHECK(again == replies, "the same input gave different replies:\n    " + show(replies) +
                                     "\n    " + show(again));
  }
  return 0;
}
