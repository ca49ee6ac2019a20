// bench/loadgen/load_stats: what one thread of the load generator measured:
// latency histograms per SMTP phase, message and session counts, and errors
// by reply code (or by the network error). One per thread, merged at the end.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "latency_histogram.hpp"

namespace mailgate::loadgen {

struct LoadStats {
  LatencyHistogram connect_banner;              // connect() start → greeting received
  LatencyHistogram mail;                        // MAIL sent → its reply
  LatencyHistogram end_of_data;                 // final "." sent → its reply
  LatencyHistogram start_lag;                   // fixed rate: how late messages started
  std::uint64_t accepted = 0;                   // messages answered 250 after the final dot
  std::uint64_t failed = 0;                     // messages not accepted (any reason)
  std::uint64_t sessions = 0;                   // sessions that got a 220 greeting
  std::uint64_t idle_held = 0;                  // idle mode: sessions held to the end
  std::uint64_t bytes = 0;                      // message bytes accepted
  std::map<std::string, std::uint64_t> errors;  // "421 4.3.2" / "connect: ..." → count

  void error(const std::string& what) { ++errors[what]; }
  void merge(const LoadStats& o);
};

}  // namespace mailgate::loadgen
