// Test helper: a fresh directory under /tmp, removed with everything in it.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace mailgate::spool::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mailgate-spool-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace mailgate::spool::testing

namespace mailgate::spool::testing {
// prefix + decimal n (spelled out: GCC 12's -Wrestrict misfires on "lit" + std::string).
inline std::string key(const char* prefix, long n) {
  std::string k(prefix);
  k.append(std::to_string(n));
  return k;
}
}  // namespace mailgate::spool::testing
