// delivery/tls_report: TLS-RPT (RFC 8460) session counters: how many
// outbound SMTP sessions per destination label ran under which policy type
// (tlsa: DANE applied, with usable TLSA records; sts: an MTA-STS policy
// applied; no-policy-found: neither did) and how they
// ended ("success" or a failure result type, tls_client.hpp). Exposed as
// mailgate_tls_rpt_sessions_total{destination,policy,result}.
// Promises: labels are bounded (metrics.destinations + "other", 3 policy
// types, kTlsFailureCount results); one instance per worker, single writer,
// summed at scrape time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "delivery/tls_client.hpp"

namespace mailgate::delivery {

enum class TlsPolicyType : std::uint8_t { Sts, NoPolicyFound, Tlsa };
inline constexpr std::size_t kTlsPolicyTypeCount = 3;
std::string_view to_string(TlsPolicyType t);  // "sts", "no-policy-found", "tlsa"
// "success" for None, else the result type.
std::string_view result_name(TlsFailure f);

class TlsReportCounters {
 public:
  explicit TlsReportCounters(std::size_t labels);
  void add(std::size_t label, TlsPolicyType type, TlsFailure result);
  // Flat index order: label, then type, then result (see index()).
  std::size_t size() const { return size_; }
  std::uint64_t at(std::size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  static std::size_t index(std::size_t label, TlsPolicyType type, TlsFailure result);

 private:
  std::size_t size_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
};

}  // namespace mailgate::delivery
