// metrics/outcome_counters: see outcome_counters.hpp.
#include "metrics/outcome_counters.hpp"

#include "text/ascii.hpp"

namespace mailgate::metrics {

namespace {
constexpr std::array<std::string_view, kOutcomeCount> kNames = {
    "delivery", "transient_failure", "bounce", "expiration", "admin_bounce", "discard"};
}

std::string_view outcome_name(Outcome o) { return kNames[static_cast<std::size_t>(o)]; }

bool parse_outcome(std::string_view event, Outcome& out) {
  for (std::size_t i = 0; i < kOutcomeCount; ++i) {
    if (kNames[i] == event) {
      out = static_cast<Outcome>(i);
      return true;
    }
  }
  return false;
}

DestinationLabels::DestinationLabels(std::vector<std::string> names) : names_(std::move(names)) {
  for (auto& n : names_) n = text::to_lower(n);
}

std::size_t DestinationLabels::index(std::string_view destination) const {
  for (std::size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == destination) return i;
  return names_.size();
}

std::string_view DestinationLabels::name(std::size_t i) const {
  return i < names_.size() ? std::string_view(names_[i]) : std::string_view("other");
}

OutcomeCounters::OutcomeCounters(std::size_t labels)
    : labels_(labels),
      counts_(std::make_unique<std::atomic<std::uint64_t>[]>(labels * kOutcomeCount)) {
  for (std::size_t i = 0; i < labels * kOutcomeCount; ++i) counts_[i].store(0);
}

void OutcomeCounters::add(Outcome o, std::size_t label, std::uint64_t n) {
  if (label >= labels_) label = labels_ - 1;
  counts_[label * kOutcomeCount + static_cast<std::size_t>(o)].fetch_add(n,
                                                                         std::memory_order_relaxed);
}

std::uint64_t OutcomeCounters::get(Outcome o, std::size_t label) const {
  return counts_[label * kOutcomeCount + static_cast<std::size_t>(o)].load(
      std::memory_order_relaxed);
}

}  // namespace mailgate::metrics
