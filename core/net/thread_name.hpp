// thread_name: names the calling thread, so that top -H, perf and
// bench/compare --profile tell the gateway's threads apart ("worker-0",
// "spool-writer", ...). The kernel keeps 15 bytes of a name; a longer one is
// cut. A failure is ignored: a name is a diagnostic, never a dependency.
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace mailgate::net {

inline void name_this_thread(std::string_view name) {
  std::string n(name.substr(0, 15));
  pthread_setname_np(pthread_self(), n.c_str());
}

}  // namespace mailgate::net
