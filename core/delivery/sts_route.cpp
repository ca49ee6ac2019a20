// delivery/sts_route: MTA-STS (RFC 8461) in a delivery connection's route,
// and the TLS-RPT (RFC 8460) session counts of every connection. A policy
// in `enforce` mode keeps only the MX hosts it lists (none: the destination
// is deferred with 4.7.5) and makes the connection verify the certificate
// (delivery_attempt.cpp); `testing` delivers as without it and reports
// what would have failed. A policy that cannot be fetched or parsed (and is
// not cached) counts as a failure and the destination is delivered to as
// without a policy (§5: a failed discovery must not stop mail).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "delivery/delivery_worker.hpp"

namespace mailgate::delivery {

namespace {

std::string listed(const mtasts::Policy& p) {
  std::string out;
  for (const auto& mx : p.mx) out += (out.empty() ? "" : ", ") + mx;
  return out;
}

}  // namespace

void DeliveryEngine::Worker::report_tls(const std::string& destination, TlsPolicyType type,
                                        TlsFailure result) {
  tls_report.add(labels ? labels->index(destination) : 0, type, result);
}

asio::awaitable<void> DeliveryEngine::Worker::apply_mta_sts(const std::string& domain,
                                                            Route& route) {
  auto found = co_await mta_sts->lookup(*resolver, domain);
  using Outcome = mtasts::Lookup::Outcome;
  if (found.outcome != Outcome::Policy) {
    if (found.outcome == Outcome::NoPolicy) co_return;
    const auto failure = found.outcome == Outcome::FetchError ? TlsFailure::StsPolicyFetchError
                         : found.outcome == Outcome::Invalid  ? TlsFailure::StsPolicyInvalid
                                                              : TlsFailure::StsWebpkiInvalid;
    spdlog::warn("{}: MTA-STS policy discovery failed ({}): {}; delivering as without a policy",
                 domain, to_string(failure), found.detail);
    report_tls(domain, TlsPolicyType::Sts, failure);
    co_return;
  }
  spdlog::debug("{}: MTA-STS {} ({})", domain, mtasts::to_string(found.policy->mode), found.detail);
  if (found.policy->mode == mtasts::Mode::None) co_return;
  route.sts = found.policy;
  if (found.policy->mode != mtasts::Mode::Enforce) co_return;
  std::vector<Target> allowed;
  for (auto& t : route.targets)
    if (mtasts::mx_matches(*found.policy, t.host)) allowed.push_back(std::move(t));
  if (allowed.empty() && !route.targets.empty()) {
    route.failure = {451, "4.7.5",
                     fmt::format("no MX host of {} matches its MTA-STS policy (mx: {})", domain,
                                 listed(*found.policy))};
    route.tls_failure = TlsFailure::ValidationFailure;
    report_tls(domain, TlsPolicyType::Sts, TlsFailure::ValidationFailure);
  }
  route.targets = std::move(allowed);
}

void DeliveryEngine::Worker::report_session(const std::string& destination, const Route& route,
                                            smtp::TlsMode mode, const SmtpClient& client,
                                            const smtp::Reply& reply) {
  if (mode == smtp::TlsMode::Disabled) return;
  // RFC 8461 §2: where DANE applies (mode Dane: usable TLSA records), it is
  // the policy of the session, not MTA-STS.
  const auto type = mode == smtp::TlsMode::Dane ? TlsPolicyType::Tlsa
                    : route.sts                 ? TlsPolicyType::Sts
                                                : TlsPolicyType::NoPolicyFound;
  const bool sts = type == TlsPolicyType::Sts;
  TlsFailure result = client.tls_failure();
  if (result == TlsFailure::None) {
    if (reply.code / 100 != 2) return;  // no SMTP session: nothing about TLS to report
    if (!client.tls()) {
      result = TlsFailure::StarttlsNotSupported;
    } else if (sts && !client.tls_verified()) {
      result = client.certificate_failure();
      if (result == TlsFailure::None) result = TlsFailure::ValidationFailure;
    } else if (sts && !mtasts::mx_matches(*route.sts, client.peer_host())) {
      result = TlsFailure::ValidationFailure;
    }
  }
  report_tls(destination, type, result);
  if (sts && route.sts->mode == mtasts::Mode::Testing && result != TlsFailure::None &&
      reply.code / 100 == 2) {
    spdlog::info("{}: MTA-STS testing: {} [{}] would fail the policy ({}); delivering anyway",
                 destination, client.peer_host(), client.peer().address().to_string(),
                 to_string(result));
  }
}

}  // namespace mailgate::delivery
