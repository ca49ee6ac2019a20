// app/cluster_tables: see cluster_tables.hpp.
#include "app/cluster_tables.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>

#include "delivery/delivery_engine.hpp"
#include "spool/records.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"
#include "suppression/suppression_list.hpp"

namespace mailgate::app {
namespace {

// A suspension row's key and value back into a rule (false: malformed or
// invalid, as tenancy::check says). A removal has no value: its times are 0.
bool decode_suspension(const cluster::TableRow& row, tenancy::Suspension& out) {
  const std::string key = std::string(spool::kTenantSuspensionPrefix) + row.key;
  return spool::decode_tenant_suspension(key, row.removed ? "0 0" : row.value, out);
}

// A destination suspension's row: key "dest:" + destination (':' is in no
// tenant name, so no tenant row starts so), no value, ms = since when.
constexpr std::string_view kDestinationRow = "dest:";

// The destination of a "dest:" row, if it is one and a name a queue could
// have (1..255 bytes, no control byte or space); else "".
std::string destination_of(const cluster::TableRow& row) {
  if (!row.key.starts_with(kDestinationRow)) return {};
  auto d = std::string_view(row.key).substr(kDestinationRow.size());
  if (d.empty() || d.size() > 255 || !row.value.empty()) return {};
  for (unsigned char c : d)
    if (c <= ' ' || c == 0x7f) return {};
  return std::string(d);
}

bool decode_shaping(const cluster::TableRow& row, egress::ShapingAction& out) {
  if (row.removed) return egress::decode_target_key(row.key, out);
  if (!egress::decode_shared_action(row.key, row.value, out)) return false;
  return !out.holds_tenant() ||
         tenancy::check({out.tenant, out.campaign, out.destination, out.since_ms, out.until_ms})
             .empty();
}

constexpr std::string_view kPendingPrefix = "cluster_pending/";
constexpr std::size_t kMaxSuspensionsFromRedis = 10'000;

// The spool rows of `table`'s queued changes, as TableReplica wants them.
template <class Replica>
void keep_pending(Replica& r, const std::string& table, spool::Store& store,
                  spool::SpoolWriter& writer) {
  const auto prefix = std::string(kPendingPrefix) + table + "/";
  auto key = [prefix](std::uint64_t seq) { return prefix + fmt::format("{:016x}", seq); };
  r.save = [&store, &writer, key](cluster::TableReplica::Saved rows) {
    spool::WriteSet set(store);
    for (const auto& [seq, text] : rows) set.put_cluster_pending(key(seq), text);
    writer.submit(std::move(set), true, [](std::error_code ec) {
      if (ec) spdlog::warn("cluster: queued changes not saved in the spool: {}", ec.message());
    });
  };
  r.forget = [&store, &writer, key](std::vector<std::uint64_t> seqs) {
    spool::WriteSet set(store);
    for (auto seq : seqs) set.remove_cluster_pending(key(seq));
    writer.submit(std::move(set), false, [](std::error_code) {});
  };
  r.load = [&store, prefix] {
    cluster::TableReplica::Saved out;
    for (auto& [k, v] : store.read_prefix(prefix)) {
      std::uint64_t seq = 0;
      const auto hex = std::string_view(k).substr(prefix.size());
      auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), seq, 16);
      // Only this code writes these keys: one it cannot read is skipped.
      if (ec == std::errc() && end == hex.data() + hex.size() && seq > 0)
        out.emplace_back(seq, std::move(v));
    }
    return out;
  };
}

}  // namespace

cluster::SuppressionReplica suppression_replica(suppression::SuppressionList& list,
                                                spool::Store& store, spool::SpoolWriter& writer) {
  cluster::SuppressionReplica r;
  keep_pending(r, "suppression", store, writer);
  r.apply = [&list](const cluster::SuppressionChange& c) {
    list.apply({c.removed, c.address, c.reason, c.ms});
  };
  r.snapshot = [&list] {
    std::vector<cluster::SuppressionChange> out;
    for (auto& e : list.all()) out.push_back({false, e.address, e.reason, e.added_ms});
    return out;
  };
  r.check = [](const cluster::SuppressionChange& c) {
    return suppression::SuppressionList::check({c.removed, c.address, c.reason, c.ms});
  };
  return r;
}

cluster::TableRow suspension_row(const tenancy::Suspension& s, bool removed, std::int64_t ms) {
  auto key = spool::tenant_suspension_key(s).substr(spool::kTenantSuspensionPrefix.size());
  return {removed, std::move(key), removed ? "" : spool::encode_tenant_suspension(s), ms};
}

cluster::TableRow destination_row(const std::string& destination, bool removed, std::int64_t ms) {
  return {removed, std::string(kDestinationRow) + destination, "", ms};
}

cluster::TableReplica suspension_replica(const std::unique_ptr<delivery::DeliveryEngine>& engine,
                                         spool::Store& store, spool::SpoolWriter& writer) {
  cluster::TableReplica r;
  keep_pending(r, "suspensions", store, writer);
  r.check = [&engine](const cluster::TableRow& row) -> std::string {
    if (row.key.starts_with(kDestinationRow))
      return destination_of(row).empty() ? "not a valid destination suspension" : "";
    tenancy::Suspension s;
    if (!decode_suspension(row, s)) return "not a valid tenant suspension";
    // Every rule is tested against every queued item: Redis (anyone's to
    // write) must not be able to add them without bound.
    if (!row.removed && engine && engine->tenant_holds_here() >= kMaxSuspensionsFromRedis)
      return "more than " + std::to_string(kMaxSuspensionsFromRedis) + " suspensions in force";
    return {};
  };
  r.apply = [&engine](const cluster::TableRow& row) {
    if (!engine) return;
    if (auto d = destination_of(row); !d.empty()) {
      engine->apply_shared_destination(d, row.removed, row.ms);
      return;
    }
    tenancy::Suspension s;
    if (decode_suspension(row, s)) engine->apply_shared_suspension(s, row.removed, row.ms);
  };
  r.snapshot = [&engine] {
    std::vector<cluster::TableRow> out;
    if (engine)
      for (const auto& s : engine->shared_suspensions())
        out.push_back(suspension_row(s, false, s.since_ms));
    if (engine)
      for (const auto& [d, since] : engine->suspended_destinations())
        out.push_back(destination_row(d, false, since));
    return out;
  };
  return r;
}

cluster::TableRow shaping_row(const egress::ShapingAction& a, bool removed, std::int64_t ms) {
  return {removed, egress::target_key(a), removed ? "" : egress::encode_shared_action(a), ms};
}

cluster::TableReplica shaping_replica(const std::unique_ptr<delivery::DeliveryEngine>& engine,
                                      spool::Store& store, spool::SpoolWriter& writer) {
  cluster::TableReplica r;
  keep_pending(r, "shaping", store, writer);
  r.check = [](const cluster::TableRow& row) -> std::string {
    egress::ShapingAction a;
    if (!decode_shaping(row, a)) return "not a valid shaping action";
    return {};
  };
  r.apply = [&engine](const cluster::TableRow& row) {
    egress::ShapingAction a;
    if (engine && decode_shaping(row, a)) engine->apply_shared_shaping(a, row.removed, row.ms);
  };
  r.snapshot = [&engine] {
    std::vector<cluster::TableRow> out;
    if (engine)
      for (const auto& a : engine->shaping_actions())
        out.push_back(shaping_row(a, false, a.since_ms));
    return out;
  };
  return r;
}

}  // namespace mailgate::app
