// eventlog/eventlog_metrics: the delivery log families (see the header).
#include "eventlog/eventlog_metrics.hpp"

namespace mailgate::eventlog {
namespace {

constexpr metrics::Family kDropped{
    "mailgate_delivery_log_dropped_total", metrics::Type::Counter,
    "Delivery log records dropped: log.max_pending reached while the file could not be written, "
    "or not written within the stop bound"};
constexpr metrics::Family kPending{"mailgate_delivery_log_pending_bytes", metrics::Type::Gauge,
                                   "Delivery log bytes waiting to be written"};

}  // namespace

void export_metrics(metrics::Exposition& e, const DeliveryLog& log) {
  e.add(kDropped, static_cast<double>(log.dropped()));
  e.add(kPending, static_cast<double>(log.pending_bytes()));
}

}  // namespace mailgate::eventlog
