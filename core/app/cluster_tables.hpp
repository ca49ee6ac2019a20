// app/cluster_tables: what each of the cluster's replicated tables is on
// this node (issue 16): the rows of the suppression list, of the tenant /
// campaign suspensions and of the traffic shaping actions, how a row read
// from Redis is checked (each state's own decoder and validator), applied
// (the list, the delivery engine) and listed for a catch-up.
// Promises: a row is applied only once its check passed (the tables check
// first); the engine's callbacks run on worker 0 (the cluster's thread),
// and only once `engine` is set (the tables start after the engine).
#pragma once

#include <memory>
#include <string>

#include "cluster/replicated_table.hpp"
#include "cluster/shared_suppression.hpp"
#include "egress/shaping_actions.hpp"
#include "tenancy/tenancy.hpp"

namespace mailgate::suppression {
class SuppressionList;
}
namespace mailgate::delivery {
class DeliveryEngine;
}
namespace mailgate::spool {
class Store;
class SpoolWriter;
}  // namespace mailgate::spool

namespace mailgate::app {

// Every table keeps the changes it queued while Redis is down in the
// spool (default family, "cluster_pending/<table>/<seq, 16 hex digits>",
// written through the spool writer), so a restart does not lose them.
cluster::SuppressionReplica suppression_replica(suppression::SuppressionList& list,
                                                spool::Store& store, spool::SpoolWriter& writer);

// The suspensions table holds tenant/campaign rules and destination
// suspensions (`mailgate queue suspend DEST`: rows "dest:<destination>").
cluster::TableRow suspension_row(const tenancy::Suspension& s, bool removed, std::int64_t ms);
cluster::TableRow destination_row(const std::string& destination, bool removed, std::int64_t ms);
cluster::TableReplica suspension_replica(const std::unique_ptr<delivery::DeliveryEngine>& engine,
                                         spool::Store& store, spool::SpoolWriter& writer);

cluster::TableRow shaping_row(const egress::ShapingAction& a, bool removed, std::int64_t ms);
cluster::TableReplica shaping_replica(const std::unique_ptr<delivery::DeliveryEngine>& engine,
                                      spool::Store& store, spool::SpoolWriter& writer);

}  // namespace mailgate::app
