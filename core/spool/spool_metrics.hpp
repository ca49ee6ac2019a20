// spool/spool_metrics: the spool writer's metric families (batch writes,
// their sizes and errors, free disk space against spool.min_free_space) and
// the messages recovery quarantined.
#pragma once

#include "metrics/exposition.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"

namespace mailgate::spool {

void export_metrics(metrics::Exposition& e, const SpoolWriter& writer, const Store& store);

}  // namespace mailgate::spool
