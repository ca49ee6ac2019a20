// policy/units: the config units under their policy:: names (hooks take
// durations and rates too). The units live in core/config (config/units.hpp).
#pragma once

#include "config/units.hpp"

namespace mailgate::policy {

using config::Duration;
using config::format_duration;
using config::format_size;
using config::parse_duration;
using config::parse_rate;
using config::parse_size;
using config::Rate;

}  // namespace mailgate::policy
