// dns/dns_metrics: mailgate_dns_queries_total{result}.
#include "dns/dns_metrics.hpp"

namespace mailgate::dns {
namespace {

constexpr metrics::Family kQueries{"mailgate_dns_queries_total",
                                   metrics::Type::Counter,
                                   "DNS lookups (MX or address) by result",
                                   {"result"}};

}  // namespace

void LookupTotals::add(const Stats& s) {
  ok += s.ok.load(std::memory_order_relaxed);
  nxdomain += s.nxdomain.load(std::memory_order_relaxed);
  nodata += s.nodata.load(std::memory_order_relaxed);
  tempfail += s.tempfail.load(std::memory_order_relaxed);
  nullmx += s.nullmx.load(std::memory_order_relaxed);
  badname += s.badname.load(std::memory_order_relaxed);
}

void export_metrics(metrics::Exposition& e, const LookupTotals& t) {
  auto v = [](std::uint64_t n) { return static_cast<double>(n); };
  e.add(kQueries, v(t.ok), {"ok"});
  e.add(kQueries, v(t.nxdomain), {"nxdomain"});
  e.add(kQueries, v(t.nodata), {"nodata"});
  e.add(kQueries, v(t.tempfail), {"tempfail"});
  e.add(kQueries, v(t.nullmx), {"nullmx"});
  e.add(kQueries, v(t.badname), {"badname"});
}

}  // namespace mailgate::dns
