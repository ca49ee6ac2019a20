// bench/loadgen: an SMTP load generator (issue 15). N concurrent sessions on
// T threads send numbered messages (closed loop, or open loop at a fixed
// rate) to one SMTP server, or hold N idle sessions open (RSS per session),
// and print throughput, latency percentiles per phase (connect→banner,
// MAIL→reply, end of data→reply) and errors by reply code — as a table, or
// as one JSON object (--json) for bench/compare. Exit status: 0 when every
// message was accepted (idle mode: every session held), 1 otherwise, 2 on
// bad arguments.
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl/context.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "load_options.hpp"
#include "load_session.hpp"

namespace lg = mailgate::loadgen;
using Clock = std::chrono::steady_clock;

namespace {

nlohmann::json percentiles(const lg::LatencyHistogram& h) {
  return {{"count", h.count()},
          {"p50_us", h.percentile(0.50)},
          {"p99_us", h.percentile(0.99)},
          {"p999_us", h.percentile(0.999)},
          {"max_us", h.max()}};
}

void print_row(const char* name, const lg::LatencyHistogram& h) {
  if (h.count() == 0) return;
  auto ms = [](std::uint64_t us) { return static_cast<double>(us) / 1000.0; };
  std::printf("  %-16s %10llu %9.3f %9.3f %9.3f %9.3f\n", name,
              static_cast<unsigned long long>(h.count()), ms(h.percentile(0.5)),
              ms(h.percentile(0.99)), ms(h.percentile(0.999)), ms(h.max()));
}

// The soft limit of open files raised to the hard one: each session is a socket.
void raise_nofile() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  lg::LoadOptions o;
  std::string target = "127.0.0.1:25", sizes = "1024", sources;
  unsigned timeout_s = 60, duration_s = 0, hold_s = 10;
  CLI::App app{"mailgate loadgen: SMTP load generator with latency percentiles"};
  app.add_option("target", target, "HOST:PORT of the SMTP server")->required();
  app.add_option("-c,--connections", o.connections, "concurrent sessions")->capture_default_str();
  app.add_option("-m,--messages", o.messages, "messages in all")->capture_default_str();
  app.add_option("--duration", duration_s, "seconds: stop starting messages after it (0: none)");
  app.add_option("-d,--per-connection", o.per_connection,
                 "messages per session before QUIT (0: unlimited)")
      ->capture_default_str();
  app.add_option("-r,--recipients", o.recipients, "RCPTs per message")->capture_default_str();
  app.add_option("-s,--size", sizes, "message size or weighted mix, e.g. 1k or 1k:80,100k:20")
      ->capture_default_str();
  app.add_flag("-P,--pipelining", o.pipelining, "MAIL, RCPTs and DATA in one write when offered");
  app.add_flag("--starttls", o.starttls, "STARTTLS after EHLO (certificate not checked)");
  app.add_option("--auth", o.auth, "USER:PASSWORD for AUTH PLAIN");
  app.add_option("--rate", o.rate, "fixed total rate in msgs/s (open loop; 0: closed loop)");
  app.add_option("--sources", sources, "comma-separated local addresses to bind, round robin");
  app.add_option("-t,--threads", o.threads, "client threads")->capture_default_str();
  app.add_option("--from", o.from, "envelope sender")->capture_default_str();
  app.add_option("--to", o.to, "recipient; {n} is the message number")->capture_default_str();
  app.add_option("--ehlo", o.ehlo, "EHLO name")->capture_default_str();
  app.add_option("--timeout", timeout_s, "seconds to wait for each reply")->capture_default_str();
  app.add_option("--idle", o.idle, "idle mode: hold this many sessions open after EHLO");
  app.add_option("--hold", hold_s, "idle mode: seconds to hold them")->capture_default_str();
  app.add_flag("--json", o.json, "one JSON object instead of the table");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  auto mix = lg::parse_sizes(sizes, error);
  if (!mix) {
    std::fprintf(stderr, "loadgen: --size: %s\n", error.c_str());
    return 2;
  }
  o.sizes = *mix;
  o.timeout = std::chrono::seconds(timeout_s);
  o.duration = std::chrono::seconds(duration_s);
  o.hold = std::chrono::seconds(hold_s);
  for (std::size_t p = 0; !sources.empty() && p <= sources.size();) {
    auto e = sources.find(',', p);
    if (e == std::string::npos) e = sources.size();
    o.sources.push_back(sources.substr(p, e - p));
    p = e + 1;
  }
  const auto colon = target.rfind(':');
  if (colon == std::string::npos || o.connections == 0 || o.threads == 0 || o.recipients == 0) {
    std::fprintf(stderr, "loadgen: need HOST:PORT and connections, threads, recipients > 0\n");
    return 2;
  }
  o.host = target.substr(0, colon);
  if (o.host.size() > 2 && o.host.front() == '[') o.host = o.host.substr(1, o.host.size() - 2);
  o.port = static_cast<std::uint16_t>(std::stoul(target.substr(colon + 1)));
  std::error_code ec;
  const asio::ip::tcp::endpoint ep(asio::ip::make_address(o.host, ec), o.port);
  if (ec) {
    std::fprintf(stderr, "loadgen: %s is not an IP address\n", o.host.c_str());
    return 2;
  }
  raise_nofile();

  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_verify_mode(asio::ssl::verify_none);
  const unsigned sessions = o.idle > 0 ? o.idle : o.connections;
  const auto start = Clock::now();
  lg::Dispatcher dispatcher(o, start);
  std::vector<std::unique_ptr<asio::io_context>> ctxs;
  std::vector<lg::LoadStats> stats(o.threads);
  for (unsigned t = 0; t < o.threads; ++t) ctxs.push_back(std::make_unique<asio::io_context>(1));
  const auto hold_until = start + o.hold;
  for (unsigned i = 0; i < sessions; ++i) {
    const unsigned t = i % o.threads;
    asio::co_spawn(*ctxs[t], lg::run_session(o, dispatcher, tls, ep, i, stats[t], hold_until),
                   asio::detached);
  }
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < o.threads; ++t) threads.emplace_back([&, t] { ctxs[t]->run(); });
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  lg::LoadStats all;
  for (const auto& s : stats) all.merge(s);
  const double rate = static_cast<double>(all.accepted) / elapsed;
  const bool ok =
      o.idle > 0 ? all.idle_held == o.idle
                 : all.accepted == dispatcher.claimed() || (all.failed == 0 && all.accepted > 0);
  if (o.json) {
    nlohmann::json j = {{"target", target},
                        {"connections", sessions},
                        {"threads", o.threads},
                        {"sizes", o.sizes.describe()},
                        {"recipients", o.recipients},
                        {"per_connection", o.per_connection},
                        {"pipelining", o.pipelining},
                        {"starttls", o.starttls},
                        {"rate_target", o.rate},
                        {"elapsed_s", elapsed},
                        {"accepted", all.accepted},
                        {"failed", all.failed},
                        {"sessions", all.sessions},
                        {"idle_held", all.idle_held},
                        {"msgs_per_s", rate},
                        {"mib_per_s", static_cast<double>(all.bytes) / elapsed / 1048576.0},
                        {"connect_banner", percentiles(all.connect_banner)},
                        {"mail", percentiles(all.mail)},
                        {"end_of_data", percentiles(all.end_of_data)},
                        {"start_lag", percentiles(all.start_lag)},
                        {"errors", all.errors}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "loadgen → %s: %u sessions on %u threads, size %s, %u rcpt(s), %s%s%s\n", target.c_str(),
        sessions, o.threads, o.sizes.describe().c_str(), o.recipients,
        o.rate > 0 ? ("fixed rate " + std::to_string(o.rate) + "/s").c_str() : "closed loop",
        o.pipelining ? ", pipelining" : "", o.starttls ? ", STARTTLS" : "");
    if (o.idle > 0)
      std::printf("idle: %llu of %u sessions held for %us\n",
                  static_cast<unsigned long long>(all.idle_held), o.idle, hold_s);
    std::printf("accepted %llu, failed %llu in %.2fs: %.1f msgs/s, %.2f MiB/s, %llu sessions\n",
                static_cast<unsigned long long>(all.accepted),
                static_cast<unsigned long long>(all.failed), elapsed, rate,
                static_cast<double>(all.bytes) / elapsed / 1048576.0,
                static_cast<unsigned long long>(all.sessions));
    std::printf("  %-16s %10s %9s %9s %9s %9s\n", "latency (ms)", "count", "p50", "p99", "p99.9",
                "max");
    print_row("connect→banner", all.connect_banner);
    print_row("MAIL→reply", all.mail);
    print_row("end of data→250", all.end_of_data);
    print_row("start lag", all.start_lag);
    for (const auto& [k, v] : all.errors)
      std::printf("  error %-40s %llu\n", k.c_str(), static_cast<unsigned long long>(v));
  }
  return ok ? 0 : 1;
}
