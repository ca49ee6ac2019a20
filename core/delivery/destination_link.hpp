// delivery/destination_link: what a connection may touch of its destination.
// A destination (its queue::Destination and the QueueShard holding it) lives
// on its owner worker (DESIGN §3); its connections may run on any worker.
// Promises: a DestinationLink gives no access to the destination or the
// owner's shard except through DeliveryEngine::Worker::on(link, f), which
// runs `f(shard, destination)` on the owner's thread; its name() is a copy
// taken on the owner when the link was made. What a connection needs of the
// destination's shaping is a ConnectionSettings value, copied on the owner
// (settings_of) and passed by value: nothing is read across threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "delivery/delivery_engine.hpp"
#include "queue/queue_shard.hpp"
#include "smtp/tls_mode.hpp"

namespace mailgate::delivery {

// A destination's shaping as one connection uses it, fixed when it opens.
struct ConnectionSettings {
  unsigned max_messages = 0;  // transactions before QUIT
  smtp::TlsMode tls = smtp::TlsMode::Opportunistic;
  std::string source_address;  // "" = any
  std::string ehlo_name;
  // Smarthost AUTH (the destination's route_auth, fixed when the connection
  // opens: the connection logs in once, and only carries this
  // destination's mail, whose user is in the destination's name).
  std::shared_ptr<const spool::RouteAuth> auth;
  // Its egress path (queue::Destination's source and site), for traffic
  // shaping automation's reply rules.
  std::string source, site;
};

// Owner side only. `default_tls` / `hostname`: delivery.tls and the host name
// of the config, for what neither egress_path nor the route hook chose.
// The TLS mode's precedence: the egress_path hook's `tls`, else what the
// route hook stored with the message, else delivery.tls.
ConnectionSettings settings_of(const queue::Destination& d, smtp::TlsMode default_tls,
                               const std::string& hostname);

// Where a destination's mail goes: the destination itself, except that a
// smarthost with AUTH, "user@[host]:port", goes to "[host]:port" (the user
// only keeps each account's mail in its own queue and connections).
std::string_view delivery_target(std::string_view destination);

class DestinationLink {
 public:
  // Owner side only (copies d.name). Defined in delivery_engine.cpp.
  DestinationLink(DeliveryEngine::Worker& owner, queue::Destination& d);
  const std::string& name() const { return name_; }
  unsigned owner_index() const { return owner_index_; }  // for logs

 private:
  friend struct DeliveryEngine::Worker;  // on(): the only way to the destination
  DeliveryEngine::Worker* owner_;
  queue::Destination* dest_;
  std::string name_;
  unsigned owner_index_;
};

}  // namespace mailgate::delivery
