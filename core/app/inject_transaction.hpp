// app/inject_transaction: the worker-side half of POST /api/v1/inject. It
// runs one transaction for an HTTP client the way an SMTP session would:
// the envelope is parsed by the SMTP parsers, the `mail_from` hook runs once
// and `rcpt_to` once per recipient (conn = { remote_ip = the HTTP client,
// listener = "http" }), recipients are admitted by the same rules as SMTP
// (server/recipient_admission; the API token authenticates the client, so it
// may relay), the content goes through the same scanner and limits (the
// largest of the configured listeners'), and the finished message goes
// through the submission stage. No SMTP connection is involved.
// Promises: runs on one worker's thread only; the result is final (the
// message is committed and queued, or refused and nothing is left behind).
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "smtp/reply.hpp"

namespace mailgate::settings {
struct GatewayConfig;
}
namespace mailgate::policy {
class PolicyRuntime;
}  // namespace mailgate::policy
namespace mailgate::spool {
class SpoolWriter;
class Store;
}  // namespace mailgate::spool
namespace mailgate::submit {
class Submitter;
}

namespace mailgate::app {

struct InjectRequest {
  std::string client_ip;
  std::string from;
  std::vector<std::string> to;
  std::string content;  // RFC 5322, CRLF line ends
};

struct InjectResult {
  enum class Kind { Accepted, SenderRefused, NoRecipient, MessageRefused };
  Kind kind = Kind::Accepted;
  smtp::Reply reply;  // the sender's or the message's refusal; 250 when accepted
  std::string id;
  std::size_t accepted = 0;
  std::vector<std::pair<std::string, smtp::Reply>> rejected;  // recipient, reply
};

struct InjectWorker {
  unsigned index = 0;
  const settings::GatewayConfig* config = nullptr;
  policy::PolicyRuntime* policy = nullptr;  // may be null
  submit::Submitter* submitter = nullptr;
  spool::SpoolWriter* writer = nullptr;
  const spool::Store* store = nullptr;
};

// Parameters by value: the coroutine owns them (the HTTP thread may stop waiting).
asio::awaitable<InjectResult> run_inject(InjectWorker worker,
                                         std::shared_ptr<const InjectRequest> request);

}  // namespace mailgate::app
