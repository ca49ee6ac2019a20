// spool/spool_metrics: the spool families (see the header).
#include "spool/spool_metrics.hpp"

namespace mailgate::spool {
namespace {

using metrics::Family;
using metrics::Type;

constexpr Family kWriteSeconds{"mailgate_spool_write_seconds", Type::Histogram,
                               "One spool batch write (with fsync when synced)"};
constexpr Family kBatchSize{"mailgate_spool_batch_size", Type::Histogram,
                            "Requests per spool batch"};
constexpr Family kWriteErrors{"mailgate_spool_write_errors_total", Type::Counter,
                              "Failed spool writes"};
constexpr Family kFreeBytes{"mailgate_spool_free_bytes", Type::Gauge,
                            "Free disk space under the spool"};
constexpr Family kMinFreeBytes{"mailgate_spool_min_free_bytes", Type::Gauge,
                               "spool.min_free_space"};
constexpr Family kQuarantined{"mailgate_spool_quarantined_messages", Type::Gauge,
                              "Messages with a spool record recovery could not read, set aside "
                              "in the quarantine column family"};

}  // namespace

void export_metrics(metrics::Exposition& e, const SpoolWriter& writer, const Store& store) {
  const auto& w = writer.stats();
  metrics::HistogramSnapshot write, batch;
  w.write_seconds.add_to(write);
  w.batch_size.add_to(batch);
  e.add(kWriteSeconds, write);
  e.add(kBatchSize, batch);
  e.add(kWriteErrors, static_cast<double>(w.errors.load()));
  e.add(kFreeBytes, static_cast<double>(w.free_bytes.load()));
  e.add(kMinFreeBytes, static_cast<double>(writer.min_free_space()));
  e.add(kQuarantined, static_cast<double>(store.quarantined_messages()));
}

}  // namespace mailgate::spool
