// cluster/shared_tables: the replicated tables beside the suppression list
// (issue 16): tenant/campaign suspensions and traffic shaping actions, each
// a cluster/replicated_table with its own Redis keys, metric names and
// bounds. What a row holds is the node's business (app/cluster_tables):
// - suspensions: key "tenant/campaign/destination" (the spool's
//   suspend_tenant/ key without its prefix), value "since until" (ms); or
//   key "dest:<destination>" (a destination suspension), no value;
// - shaping: key the action's target (egress::target_key), value its id and
//   spool row (egress::encode_shared_action).
// Promises: keys and names are stable (other nodes, and Redis, hold them).
#pragma once

#include "cluster/replicated_table.hpp"

namespace mailgate::cluster {

inline constexpr const char* kSuspensionsKey = "mailgate:suspensions";
inline constexpr const char* kSuspensionsLogKey = "mailgate:suspensions:log";
inline constexpr const char* kShapingKey = "mailgate:shaping";
inline constexpr const char* kShapingLogKey = "mailgate:shaping:log";

// mailgate_cluster_suspensions_* metrics; rows of at most 512 + 64 bytes.
TableSpec suspensions_table();
// mailgate_cluster_shaping_* metrics; rows of at most 2 KiB.
TableSpec shaping_table();

}  // namespace mailgate::cluster
