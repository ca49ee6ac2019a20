// cluster/shared_suppression: see shared_suppression.hpp.
#include "cluster/shared_suppression.hpp"

namespace mailgate::cluster {
namespace {

TableSpec suppression_table() {
  TableSpec s;
  s.name = "suppression";
  s.what = "suppression";
  s.hash_key = kSuppressKey;
  s.log_key = kSuppressLogKey;
  s.max_key = 512;    // SuppressionList::normalize's bound
  s.max_value = 512;  // the list keeps reasons up to 512 bytes
  s.max_rows = 10'000'000;
  return s;
}

TableRow to_row(const SuppressionChange& c) { return {c.removed, c.address, c.reason, c.ms}; }
SuppressionChange from_row(const TableRow& r) { return {r.removed, r.key, r.value, r.ms}; }

TableReplica table_replica(SuppressionReplica list) {
  TableReplica t;
  t.apply = [apply = std::move(list.apply)](const TableRow& r) { apply(from_row(r)); };
  t.snapshot = [snapshot = std::move(list.snapshot)] {
    std::vector<TableRow> out;
    for (const auto& c : snapshot()) out.push_back(to_row(c));
    return out;
  };
  t.save = std::move(list.save);
  t.forget = std::move(list.forget);
  t.load = std::move(list.load);
  if (list.check)
    t.check = [check = std::move(list.check)](const TableRow& r) { return check(from_row(r)); };
  return t;
}

}  // namespace

SharedSuppression::SharedSuppression(const ClusterConfig& cfg, Cluster& cluster, RedisLink& link,
                                     asio::io_context& ctx, SuppressionReplica replica)
    : table_(suppression_table(), cfg, cluster, link, ctx, table_replica(std::move(replica))) {}

void SharedSuppression::local_change(const SuppressionChange& c) { table_.local_change(to_row(c)); }

}  // namespace mailgate::cluster
