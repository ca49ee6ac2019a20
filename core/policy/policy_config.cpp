// policy/policy_config: the keys of the `policy` section.
#include "policy/policy_config.hpp"

#include "config/schema.hpp"

namespace mailgate::policy {

const config::Section<PolicyConfig>& policy_section() {
  using C = PolicyConfig;
  static const config::Section<C> s{{
      config::duration("hook_timeout", &C::hook_timeout,
                       "longest a Lua hook call may take (wall clock, DNS waits included); past it "
                       "the call fails (`451 4.3.0` at an SMTP stage)"),
      // A state with the libraries, the API and the shipped plugins needs well under 1MB.
      config::size("memory_limit", &C::memory_limit,
                   "memory of one Lua state (there is one per worker and policy version); an "
                   "allocation past it fails the hook call (`451 4.3.0` at an SMTP stage) and the "
                   "state is replaced by a fresh one (see \"Limits and sandbox\")",
                   1'000'000),
  }};
  return s;
}

}  // namespace mailgate::policy
