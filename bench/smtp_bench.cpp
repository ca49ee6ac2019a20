// smtp_bench: micro-benchmarks of the smtp/ protocol code: DataScanner
// throughput (DATA and BDAT modes, whole buffers and 16 KiB socket-sized
// reads) on a ~1 MB message, and MAIL FROM / path parsing.
// Promises: measures only; bytes/s are reported through SetBytesProcessed.
#include <benchmark/benchmark.h>

#include <string>
#include <variant>

#include "smtp/address.hpp"
#include "smtp/command.hpp"
#include "smtp/data_scanner.hpp"

namespace {

using mailgate::smtp::DataScanner;

// ~1 MB message: headers, then 78-octet text lines, some dot-stuffed.
const std::string& message_1mb(bool terminated) {
  static const std::string base = [] {
    std::string m =
        "Received: from client.example (client.example [192.0.2.1])\r\n"
        "\tby gw.example (mailgate) with ESMTP id 0123456789abcdef; Mon, 1 Jan 2024 00:00:00 "
        "+0000\r\n"
        "From: sender@example.com\r\nTo: rcpt@example.org\r\nSubject: benchmark\r\n\r\n";
    std::size_t n = 0;
    while (m.size() < (1u << 20)) {
      if (++n % 50 == 0) m += "..a dot-stuffed line\r\n";
      m += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempo\r\n";
    }
    return m;
  }();
  static const std::string dot = base + ".\r\n";
  return terminated ? dot : base;
}

void BM_DataScannerDot(benchmark::State& state) {
  const std::string& msg = message_1mb(true);
  const std::size_t read_size = static_cast<std::size_t>(state.range(0));
  std::string out;
  out.reserve(msg.size());
  for (auto _ : state) {
    DataScanner s(DataScanner::Mode::Dot);
    out.clear();
    std::size_t pos = 0;
    while (pos < msg.size()) {
      const std::size_t n = std::min(read_size, msg.size() - pos);
      auto st = s.feed(std::string_view(msg).substr(pos, n), out);
      pos += st.consumed;
      if (st.done) break;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(s.received_headers());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(msg.size()));
}
BENCHMARK(BM_DataScannerDot)->Arg(2 << 20)->Arg(16 << 10)->Arg(1500);

void BM_DataScannerChunk(benchmark::State& state) {
  const std::string& msg = message_1mb(false);
  const std::size_t read_size = static_cast<std::size_t>(state.range(0));
  std::string out;
  out.reserve(msg.size());
  for (auto _ : state) {
    DataScanner s(DataScanner::Mode::Chunk);
    out.clear();
    for (std::size_t pos = 0; pos < msg.size(); pos += read_size) {
      s.feed(std::string_view(msg).substr(pos, read_size), out);
    }
    s.finish();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(msg.size()));
}
BENCHMARK(BM_DataScannerChunk)->Arg(2 << 20)->Arg(16 << 10);

// Beyond the size limit: counting only, nothing stored.
void BM_DataScannerOverLimit(benchmark::State& state) {
  const std::string& msg = message_1mb(true);
  std::string out;
  for (auto _ : state) {
    DataScanner s(DataScanner::Mode::Dot);
    out.clear();
    auto st = s.feed(msg, out, 4096);
    benchmark::DoNotOptimize(st);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(msg.size()));
}
BENCHMARK(BM_DataScannerOverLimit);

void BM_ParseMailFrom(benchmark::State& state) {
  const std::string arg =
      "FROM:<bounces+12345-abcd-user=example.org@mail.sender.example> SIZE=123456 "
      "BODY=8BITMIME RET=HDRS ENVID=QQ314159";
  for (auto _ : state) {
    auto r = mailgate::smtp::parse_mail_from(arg);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ParseMailFrom);

void BM_ParsePath(benchmark::State& state) {
  static const char* const kPaths[] = {
      "<user@example.com>",
      "<first.last+tag@sub.domain.example.org>",
      "<\"john doe\"@example.com>",
      "<user@[IPv6:2001:db8::1]>",
  };
  const char* path = kPaths[state.range(0)];
  for (auto _ : state) {
    auto r = mailgate::smtp::parse_path(path, {.allow_null = false, .smtputf8 = false});
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ParsePath)->DenseRange(0, 3);

void BM_ParseCommand(benchmark::State& state) {
  const std::string line = "RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE";
  for (auto _ : state) {
    auto c = mailgate::smtp::parse_command(line);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_ParseCommand);

}  // namespace

BENCHMARK_MAIN();
