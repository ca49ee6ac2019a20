// eventlog/eventlog_metrics: the delivery log's metric families (records
// dropped while its file could not be written, bytes waiting for the file).
#pragma once

#include "eventlog/delivery_log.hpp"
#include "metrics/exposition.hpp"

namespace mailgate::eventlog {

void export_metrics(metrics::Exposition& e, const DeliveryLog& log);

}  // namespace mailgate::eventlog
