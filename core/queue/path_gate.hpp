// queue/path_gate: what the shard asks about a destination's egress path,
// the (source, site) pair providers count in (DESIGN §6b). The delivery
// engine implements it (delivery/egress_paths.cpp) over the policy's
// egress::Plan and the process-wide egress::PathRegistry; without a gate a
// shard behaves as before sources and sites existed.
// Promises (of an implementation): pick_source() returns a source of the
// item's pool ("" = the default: no mailgate.source); open_connection() true
// means one site slot is held until close_connection(); a Go from
// take_quota() has counted one message of today's warm-up quota, which
// refund_quota() gives back if the message does not leave after all.
#pragma once

#include <cstdint>
#include <string>

namespace mailgate::queue {

struct Destination;
struct Item;

class PathGate {
 public:
  virtual ~PathGate() = default;
  // The source a new item leaves from (called by add() for items without one).
  virtual std::string pick_source(const std::string& destination, const Item& item) = 0;
  // Before a connection of `d` starts: false = no site slot now (the shard
  // tries again after kPathRetry).
  virtual bool open_connection(Destination& d) = 0;
  virtual void close_connection(Destination& d) = 0;
  // After open_connection() said false: microseconds until `d` asks again
  // (a shared limit answers from Redis asynchronously: sooner while the
  // call runs, later after a refusal).
  static constexpr std::int64_t kOpenRetryUs = 20'000;
  virtual std::int64_t open_retry_us(const Destination& /*d*/) { return kOpenRetryUs; }
  // Before an item of `d` is taken: 0 (admitted under the site's rate) or
  // the microseconds to wait.
  virtual std::int64_t admit_message(Destination& d, std::int64_t now_us) = 0;
  // Warm-up: may `item` leave from d's source today? Wait: not known yet
  // (a cluster's shared quota is being fetched): the item stays ready and
  // d asks again after wait_us (no attempt, nothing scheduled).
  struct Quota {
    enum class Kind { Go, Move, Hold, Wait } kind = Kind::Go;
    std::string source;         // Move: the pool's source that takes it
    std::int64_t until_ms = 0;  // Hold: when to try again (00:00 UTC)
    std::int64_t wait_us = 0;   // Wait: when to ask again
  };
  virtual Quota take_quota(Destination& d, const Item& item) = 0;
  virtual void refund_quota(Destination& d) = 0;
  // May an idle connection of `d` (nothing ready for it) linger for more
  // mail? Not while it holds a capped site slot other destinations need.
  virtual bool may_linger(const Destination& /*d*/) { return true; }
  // A connection of `d` has finished a message: may it take the next one?
  // False: it sends QUIT and is not reused (a cluster-wide limit other nodes
  // wait for, and this node holds more than its share of it).
  virtual bool keep_connection(Destination& /*d*/) { return true; }
  // Is d's whole path held (traffic shaping "suspend")? 0: no; else the
  // microseconds after which to ask again (no connection opens and no
  // message is taken meanwhile).
  virtual std::int64_t held_us(const Destination& /*d*/, std::int64_t /*now_us*/) { return 0; }
};

}  // namespace mailgate::queue
