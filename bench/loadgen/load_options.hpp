// bench/loadgen/load_options: what one load-generator run does (the command
// line, parsed and checked), and the message-size distribution it draws from.
// Promises: parse_sizes() accepts "1024", "1k", "100KiB" or a weighted mix
// "1k:80,100k:20" and refuses anything else with a message; a SizeMix draws
// sizes with the given weights from any uniform random source.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mailgate::loadgen {

class SizeMix {
 public:
  // (size in bytes, weight); weights > 0.
  explicit SizeMix(std::vector<std::pair<std::uint64_t, unsigned>> sizes = {{1024, 1}});
  // `r` uniform in [0, total_weight()).
  std::uint64_t pick(std::uint64_t r) const;
  std::uint64_t total_weight() const { return total_; }
  std::string describe() const;

 private:
  std::vector<std::pair<std::uint64_t, unsigned>> sizes_;
  std::uint64_t total_ = 0;
};

// "1k:80,100k:20" → SizeMix; nullopt and `error` set when malformed.
std::optional<SizeMix> parse_sizes(const std::string& spec, std::string& error);

struct LoadOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 25;
  unsigned connections = 50;         // concurrent sessions
  std::uint64_t messages = 10'000;   // in all (closed loop and fixed rate)
  std::chrono::seconds duration{0};  // > 0: stop starting messages after it
  unsigned per_connection = 1;       // messages per session (0: all on one session)
  unsigned recipients = 1;           // RCPTs per message
  SizeMix sizes;
  bool pipelining = false;  // MAIL+RCPT+DATA in one write when offered
  bool starttls = false;
  std::string auth;                  // "user:password" → AUTH PLAIN
  double rate = 0;                   // > 0: fixed total rate (msgs/s), open loop
  std::vector<std::string> sources;  // local addresses to bind, round robin
  unsigned threads = 1;
  std::string from = "loadgen@example.org";
  std::string to = "rcpt{n}@example.com";  // {n}: the message number
  std::string ehlo = "loadgen.example.org";
  std::chrono::milliseconds timeout{60'000};  // per reply
  // Idle mode: open this many sessions, EHLO, hold them `hold`, then QUIT.
  unsigned idle = 0;
  std::chrono::seconds hold{10};
  bool json = false;
};

}  // namespace mailgate::loadgen
