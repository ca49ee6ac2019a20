// dns/dns_metrics: lookups by result, summed over resolvers (delivery's and
// the hooks' mailgate.dns.mx), and their metric family.
#pragma once

#include <cstdint>

#include "dns/resolver.hpp"
#include "metrics/exposition.hpp"

namespace mailgate::dns {

struct LookupTotals {
  std::uint64_t ok = 0, nxdomain = 0, nodata = 0, tempfail = 0, nullmx = 0, badname = 0;
  void add(const Stats& s);  // relaxed loads
};

void export_metrics(metrics::Exposition& e, const LookupTotals& t);

}  // namespace mailgate::dns
