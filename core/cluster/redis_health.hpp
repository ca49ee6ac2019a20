// cluster/redis_health: whether Redis counts as up, from the outcomes of the
// calls made to it (issue 16: "three misses in a row mean down"). Pure
// logic, one owner thread. Promises: starts down (nothing answered yet);
// one answered call makes it up; kMissesForDown failed calls in a row
// (timeouts, lost connections, error replies) make it down again; record()
// says when the state changed, so each transition is logged once.
#pragma once

#include <cstdint>

namespace mailgate::cluster {

class RedisHealth {
 public:
  static constexpr unsigned kMissesForDown = 3;
  enum class Change { None, Up, Down };

  Change record(bool answered) {
    if (answered) {
      misses_ = 0;
      if (up_) return Change::None;
      up_ = true;
      reported_down_ = false;
      return Change::Up;
    }
    ++failures_;
    ++misses_;
    if (misses_ != kMissesForDown || (!up_ && reported_down_)) return Change::None;
    up_ = false;
    reported_down_ = true;
    return Change::Down;
  }
  bool up() const { return up_; }
  unsigned misses() const { return misses_; }
  std::uint64_t failures() const { return failures_; }

 private:
  bool up_ = false;
  bool reported_down_ = false;
  unsigned misses_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace mailgate::cluster
