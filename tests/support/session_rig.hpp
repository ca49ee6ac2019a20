// tests/support/session_rig: the socketpair seam for the inbound SMTP
// session, shared by the session fuzzer (tests/fuzz/session_fuzz.cpp) and
// the dialogue unit tests (tests/unit/server/session_dialogue_test.cpp).
// The real server::Session, the real submission stage and a real RocksDB
// spool in a fresh temporary directory answer what a test sends; the
// session's socket is one end of an AF_UNIX socketpair (no network, no
// port). Not there: fsync (spool writes are not synced, for speed), a
// delivery engine (the queue callback records what was queued), a Lua
// policy, TLS.
// Promises: deterministic. Everything runs on the rig's one io_context (the
// spool writer's thread only completes writes the session waits for); the
// whole input is in the socket before the session starts and the write
// side is then shut down, so the session reads the same bytes in the same
// pieces on every run (inputs up to kMaxInput fit in the socket buffer).
// converse() returns when the session has ended and closed the connection,
// or at its deadline (then ended/closed say which did not happen). The
// temporary directory is removed by the destructor.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/outcome_counters.hpp"
#include "net/cidr.hpp"
#include "server/connection_gate.hpp"
#include "server/session.hpp"
#include "settings/gateway_config.hpp"
#include "smtp/reply.hpp"
#include "spool/records.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "submit/submitter.hpp"

namespace mailgate::testing {

class SessionRig {
 public:
  // Inputs this long are known to fit in the socketpair's buffer at once.
  static constexpr std::size_t kMaxInput = 64 * 1024;

  // `configure` fills in the listeners (at least one) and may change the
  // rest; before it runs the config has hostname "mx.rig.test", one worker,
  // the spool in the rig's temporary directory and no free-space minimum.
  explicit SessionRig(const std::function<void(settings::GatewayConfig&)>& configure);
  ~SessionRig();
  SessionRig(const SessionRig&) = delete;
  SessionRig& operator=(const SessionRig&) = delete;

  // The peer of an AF_UNIX socket has no IP address: asio reads it as "::",
  // so a listener lets the rig's client relay with relay_networks = {this}.
  static net::Cidr client_network();

  struct Conversation {
    std::string received;        // every octet the server sent
    std::string remote_ip_seen;  // the session socket's peer address ("::")
    bool ended = false;          // the session ended (the Session object is gone)
    bool closed = false;         // the server closed the connection
    bool exception = false;      // an exception escaped Session::run()
  };
  // One session on listener `listener` (index into config().listeners),
  // the client sending `input` and then shutting down its write side.
  Conversation converse(std::size_t listener, std::string_view input,
                        std::chrono::milliseconds deadline = std::chrono::seconds(10));

  const settings::GatewayConfig& config() const { return cfg_; }
  const std::string& dir() const { return dir_; }
  spool::Store& store() { return *store_; }
  // What the submission stage handed to the queue, per message id key,
  // since the last clear_queued().
  const std::map<std::string, std::vector<spool::QueuedDest>>& queued() const { return queued_; }
  void clear_queued() { queued_.clear(); }
  // Keys of the spool's `body`, `meta` and `dest` column families from
  // `from` on (ids start with their millisecond time: seeking past earlier
  // inputs' ids skips their deletion tombstones).
  enum class Family { Body, Meta, Dest };
  std::vector<std::string> keys_from(Family family, const std::string& from) const;
  // Deletes the messages (envelope, body, queue records) whose ids are
  // given as keys, so a long-running caller starts the next input empty.
  void remove_messages(const std::vector<std::string>& id_keys);

 private:
  std::string dir_;
  settings::GatewayConfig cfg_;
  std::unique_ptr<spool::Store> store_;
  std::unique_ptr<spool::SpoolWriter> writer_;
  // Destroyed first (a session left by a deadline refers to the rest).
  std::unique_ptr<asio::io_context> ctx_ = std::make_unique<asio::io_context>(1);
  metrics::DestinationLabels labels_{{}};
  std::unique_ptr<submit::Submitter> submitter_;
  std::unique_ptr<server::WorkerState> worker_;
  std::unique_ptr<server::ConnectionGate> gate_;
  std::map<std::string, std::vector<spool::QueuedDest>> queued_;
};

// The replies in `received`, in order; `rest` gets what is left that is not
// a complete reply, `error` whether the parser refused something.
struct ParsedReplies {
  std::vector<smtp::Reply> replies;
  std::string rest;
  bool error = false;
};
ParsedReplies parse_replies(std::string_view received);

}  // namespace mailgate::testing
