// tests/unit/cluster/node_config: the cluster section every cluster test's
// node starts from: a 1 s lease_ttl (heartbeats every 100 ms, lease renewals
// every 333 ms) and the product's 50 ms Redis deadline. A test that needs
// other values changes them on the copy it gets.
#pragma once

#include <string>

#include "cluster/cluster_config.hpp"

namespace mailgate::testing {

inline cluster::ClusterConfig node_config(const std::string& redis_url, const std::string& node) {
  cluster::ClusterConfig c;
  c.redis = redis_url;
  c.node = node;
  c.lease_ttl = config::Duration(1000);
  c.timeout = config::Duration(50);
  return c;
}

}  // namespace mailgate::testing
