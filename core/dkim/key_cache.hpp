// dkim/key_cache: the process's DKIM keys by file path, each read from disk
// once and shared by every worker and signing thread; clear() on reload
// makes the next use read the file again.
// Promises: thread-safe. get() reads a key the cache does not hold (a
// blocking file read: never call it on a worker's event loop) and keeps it
// only when it loaded; a failure is a KeyError and is not cached, so a key
// fixed on disk works at the next use.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "dkim/signing_key.hpp"

namespace mailgate::dkim {

class KeyCache {
 public:
  std::shared_ptr<const SigningKey> get(const std::string& path);
  void clear();
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const SigningKey>> keys_;
};

}  // namespace mailgate::dkim
