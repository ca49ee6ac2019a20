// bench/dkim_bench: the CPU cost of one DKIM signature per message (issue 11):
// body hash (relaxed) + header selection + signing, for RSA-2048 and
// Ed25519 on 1 KB and 100 KB bodies. What it decides: an RSA-2048 signature
// costs about 0.3 ms of CPU, so the submission stage signs on the shared CPU
// pool rather than on a worker's event loop.
#include <benchmark/benchmark.h>

#include <string>

#include "dkim/canonicalization.hpp"
#include "dkim/signer.hpp"
#include "dkim/signing_key.hpp"

namespace {

using namespace mailgate;

const std::string kHeaders =
    "Received: from client.example (client.example [192.0.2.1]) by gw.example.com (mailgate) "
    "with ESMTP id 0191f0c2a4e1000000000100000002a1; Fri, 04 Dec 2026 12:00:00 +0000\r\n"
    "From: Shop <news@example.com>\r\nTo: someone@example.net\r\n"
    "Subject: Your weekly offers\r\nDate: Fri, 04 Dec 2026 12:00:00 +0000\r\n"
    "Message-ID: <0191f0c2a4e1@example.com>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "List-Unsubscribe: <mailto:unsub@example.com>\r\n";

std::string body_of(std::size_t size) {
  std::string line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do  \r\n";
  std::string body;
  while (body.size() < size) body += line;
  body.resize(size - 2);
  return body + "\r\n";
}

void sign(benchmark::State& state, dkim::Algorithm algorithm) {
  const auto key = dkim::SigningKey::generate(algorithm, 2048);
  const std::string body = body_of(static_cast<std::size_t>(state.range(0)));
  dkim::SignRequest r;
  r.domain = "example.com";
  r.selector = "s1";
  r.key_path = "bench";
  for (auto _ : state) {
    const auto bh = dkim::body_hash(dkim::Canonicalization::Relaxed, body);
    auto field = dkim::signature_field(r, *key, kHeaders, bh, 1796400000);
    benchmark::DoNotOptimize(field);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

void BM_DkimSignRsa2048(benchmark::State& s) { sign(s, dkim::Algorithm::RsaSha256); }
void BM_DkimSignEd25519(benchmark::State& s) { sign(s, dkim::Algorithm::Ed25519Sha256); }

BENCHMARK(BM_DkimSignRsa2048)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_DkimSignEd25519)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
