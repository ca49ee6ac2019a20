// dkim/key_cache: the process's DKIM keys by file path, each read from disk
// once and shared by every worker and signing thread. A reload reads the keys
// its config declares again, from disk, into a staging set: if the reload
// succeeds that set replaces the cached keys (keys first used in hooks are
// then read again at their next use), if it fails the cached keys stay.
// Promises: thread-safe. get() reads a key the cache does not hold (a
// blocking file read: never call it on a worker's event loop for a key that
// may be new) and keeps it only when it loaded; a failure is a KeyError and
// is not cached, so a key fixed on disk works at the next use. Between
// begin_reload() and end_reload(), get() on the reloading thread reads every
// key fresh (once per path) into the staging set; other threads keep using
// the cached keys.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "dkim/signing_key.hpp"

namespace mailgate::dkim {

class KeyCache {
 public:
  std::shared_ptr<const SigningKey> get(const std::string& path);
  void begin_reload();
  // commit: the staging set becomes the cache; else it is dropped.
  void end_reload(bool commit);
  std::size_t size() const;

 private:
  using Keys = std::map<std::string, std::shared_ptr<const SigningKey>>;
  mutable std::mutex mu_;
  Keys keys_;
  std::optional<Keys> staging_;
  std::thread::id reloader_;
};

}  // namespace mailgate::dkim
