// policy/policy_metrics: mailgate_lua_hook_seconds{hook} and
// mailgate_lua_errors_total{hook}; `hook` is one of the fixed event names.
#include "policy/policy_metrics.hpp"

#include <string>

namespace mailgate::policy {
namespace {

constexpr metrics::Family kSeconds{"mailgate_lua_hook_seconds",
                                   metrics::Type::Histogram,
                                   "Lua hook calls (waits included)",
                                   {"hook"}};
constexpr metrics::Family kErrors{
    "mailgate_lua_errors_total",
    metrics::Type::Counter,
    "Lua hook errors and timeouts (SMTP-stage hooks then answer 451 4.3.0)",
    {"hook"}};

}  // namespace

void export_metrics(metrics::Exposition& e, const PolicyRuntime& runtime, unsigned workers) {
  for (int i = 0; i < kEventCount; ++i) {
    const auto event = static_cast<Event>(i);
    if (event == Event::Auth) continue;  // no AUTH yet
    metrics::HistogramSnapshot h;
    double errors = 0;
    for (unsigned w = 0; w < workers; ++w) {
      const auto& s = runtime.stats(w);
      s.seconds[i]->add_to(h);
      errors += static_cast<double>(s.errors[i].load());
    }
    e.add(kSeconds, h, {event_name(event)});
    e.add(kErrors, errors, {event_name(event)});
  }
}

}  // namespace mailgate::policy
