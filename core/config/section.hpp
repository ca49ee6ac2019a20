// config/section: what a module's config header needs to declare its
// section: the units' types and the names of Section and Context (the
// declaration itself, in the module's *_config.cpp, includes schema.hpp).
#pragma once

#include "config/units.hpp"

namespace mailgate::config {

template <class T>
class Section;
class Context;

}  // namespace mailgate::config
