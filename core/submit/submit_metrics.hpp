// submit/submit_metrics: the submission stage's counters summed over the
// workers, and its metric families (messages and bytes accepted, by
// protocol). The stage's refusals and HTTP inject's recipients are counted
// here too but exported by the families they belong to (server: recipients;
// delivery: discards).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "metrics/exposition.hpp"
#include "submit/submitter.hpp"

namespace mailgate::submit {

struct SubmitTotals {
  std::uint64_t received[kSourceCount] = {};
  std::uint64_t bytes = 0, rejected_data = 0, rejected_message = 0;
  std::uint64_t http_accepted = 0, http_rejected = 0;
  std::uint64_t dkim_signed = 0, dkim_failed = 0, dkim_sent_unsigned = 0;
  std::vector<std::uint64_t> discards;       // route {discard = true}, per destination label
  std::uint64_t feedback_events[2][2] = {};  // [bounce|complaint][unmatched|matched]
  std::uint64_t feedback_unparsed[2] = {};
  std::map<std::string, std::array<std::uint64_t, 2>> feedback_tenants;
};

// Relaxed loads of every worker's counters.
SubmitTotals sum_stats(const std::vector<Submitter*>& submitters);

void export_metrics(metrics::Exposition& e, const SubmitTotals& t);

}  // namespace mailgate::submit
