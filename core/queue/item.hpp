// queue/item: one message waiting at one destination, as the queue holds it
// (the envelope stays in the spool until an attempt reads it).
// Promises: small (a few words); what every item of a message shares (its
// reference count, route AUTH, tenancy) is shared, not copied.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "smtp/tls_mode.hpp"
#include "spool/message_id.hpp"
#include "spool/records.hpp"
#include "tenancy/tenancy.hpp"

namespace mailgate::queue {

// Shared by all dest records of one message (possibly on several workers):
// whoever closes the last one also deletes the body and envelope.
struct MessageRef {
  explicit MessageRef(int dests) : open_dests(dests) {}
  std::atomic<int> open_dests;
};

struct Item {
  spool::MessageId id;
  std::uint64_t size = 0;
  std::uint32_t attempts = 0;
  std::int64_t next_ms = 0;
  std::shared_ptr<MessageRef> ref;
  std::optional<smtp::TlsMode> tls{};  // what the route hook asked for (none: no choice)
  // Smarthost AUTH the route hook gave (shared by the items of a message or
  // of a recovered destination); null: none.
  std::shared_ptr<const spool::RouteAuth> auth{};
  // Tenant, campaign and priority (shared by the items of a message, or
  // interned by recovery); null: none (tenant "", normal priority).
  std::shared_ptr<const tenancy::Tenancy> tenancy{};
  std::string pool{};       // the egress pool (msg:set_pool; "" = the default)
  std::string source{};     // the source it leaves from, once chosen ("" = the default)
  bool source_set = false;  // `source` was chosen (add() asks the PathGate otherwise)

  const tenancy::Tenancy& tenancy_or_none() const {
    static const tenancy::Tenancy none;
    return tenancy ? *tenancy : none;
  }
};

}  // namespace mailgate::queue
