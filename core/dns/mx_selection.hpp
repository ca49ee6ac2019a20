// dns/mx_selection: the pure part of RFC 5321 §5.1 MX selection, testable
// without DNS. Promises: order_mx() sorts by ascending preference and shuffles
// hosts of equal preference with the given generator (so load spreads across
// them), never reorders across preferences, drops null targets (".") and
// keeps each host once, at its lowest preference. A null MX (RFC 7505) is
// recognised only when null targets are all the domain publishes.
#pragma once

#include <random>
#include <string_view>
#include <vector>

#include "dns/answers.hpp"

namespace mailgate::dns {

// "" (how c-ares reports the root) or ".".
bool is_null_target(std::string_view host);

// True when `records` is non-empty and every record's target is the root:
// RFC 7505 "MX 0 ." (any preference is accepted; a lone "." cannot be
// delivered to either way). A "." among real hosts is a misconfiguration:
// not a null MX; order_mx() ignores that entry.
bool is_null_mx(const std::vector<MxHost>& records);

// Hosts in the order to try them (see the file comment). Names are compared
// case-insensitively for de-duplication; the returned names keep their case.
std::vector<MxHost> order_mx(std::vector<MxHost> records, std::mt19937_64& rng);

}  // namespace mailgate::dns
