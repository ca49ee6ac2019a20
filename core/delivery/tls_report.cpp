// delivery/tls_report: see tls_report.hpp.
#include "delivery/tls_report.hpp"

namespace mailgate::delivery {

std::string_view to_string(TlsPolicyType t) {
  switch (t) {
    case TlsPolicyType::Sts:
      return "sts";
    case TlsPolicyType::Tlsa:
      return "tlsa";
    case TlsPolicyType::NoPolicyFound:
      break;
  }
  return "no-policy-found";
}

std::string_view result_name(TlsFailure f) {
  return f == TlsFailure::None ? std::string_view("success") : to_string(f);
}

TlsReportCounters::TlsReportCounters(std::size_t labels)
    : size_(labels * kTlsPolicyTypeCount * kTlsFailureCount),
      counts_(new std::atomic<std::uint64_t>[size_]) {
  for (std::size_t i = 0; i < size_; ++i) counts_[i].store(0, std::memory_order_relaxed);
}

std::size_t TlsReportCounters::index(std::size_t label, TlsPolicyType type, TlsFailure result) {
  return (label * kTlsPolicyTypeCount + static_cast<std::size_t>(type)) * kTlsFailureCount +
         static_cast<std::size_t>(result);
}

void TlsReportCounters::add(std::size_t label, TlsPolicyType type, TlsFailure result) {
  const auto i = index(label, type, result);
  if (i < size_) counts_[i].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace mailgate::delivery
