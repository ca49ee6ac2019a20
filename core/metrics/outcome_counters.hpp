// metrics/outcome_counters: delivery outcomes by result and destination
// label, the data of mailgate_deliveries_total{result,destination}. Labels
// are bounded (DESIGN §9): a destination keeps its own label only when it is
// listed in metrics.destinations; every other one counts as "other".
// One instance per worker (single writer), summed at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::metrics {

// Same names as the delivery log's events.
enum class Outcome { Delivery, TransientFailure, Bounce, Expiration, AdminBounce, Discard };
inline constexpr std::size_t kOutcomeCount = 6;
std::string_view outcome_name(Outcome o);
// The outcome of a delivery-log event name (false when it is not one).
bool parse_outcome(std::string_view event, Outcome& out);

class DestinationLabels {
 public:
  explicit DestinationLabels(std::vector<std::string> names);
  std::size_t index(std::string_view destination) const;  // size()-1 = "other"
  std::size_t size() const { return names_.size() + 1; }
  std::string_view name(std::size_t i) const;

 private:
  std::vector<std::string> names_;  // lower-cased
};

class OutcomeCounters {
 public:
  explicit OutcomeCounters(std::size_t labels);
  void add(Outcome o, std::size_t label, std::uint64_t n = 1);
  std::uint64_t get(Outcome o, std::size_t label) const;
  std::size_t labels() const { return labels_; }

 private:
  std::size_t labels_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
};

}  // namespace mailgate::metrics
