// cluster/shared_tables: see shared_tables.hpp.
#include "cluster/shared_tables.hpp"

namespace mailgate::cluster {

TableSpec suspensions_table() {
  TableSpec s;
  s.name = "suspensions";
  s.what = "tenant suspension";
  s.hash_key = kSuspensionsKey;
  s.log_key = kSuspensionsLogKey;
  s.max_key = 512;  // two names of 64 bytes and a destination of 255, with room
  s.max_value = 64;
  s.max_rows = 100'000;
  return s;
}

TableSpec shaping_table() {
  TableSpec s;
  s.name = "shaping";
  s.what = "shaping action";
  s.hash_key = kShapingKey;
  s.log_key = kShapingLogKey;
  s.max_key = 2048;
  s.max_value = 2048;
  s.max_rows = 100'000;  // a node keeps egress::ShapingActions::kMaxActions in force
  return s;
}

}  // namespace mailgate::cluster
