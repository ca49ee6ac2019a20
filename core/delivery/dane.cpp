// delivery/dane: see dane.hpp.
#include "delivery/dane.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

namespace mailgate::delivery {

std::string_view to_string(DaneResult r) {
  switch (r) {
    case DaneResult::Verified:
      return "verified";
    case DaneResult::NoTlsa:
      return "no_tlsa";
    case DaneResult::Insecure:
      return "insecure";
    case DaneResult::Unusable:
      return "unusable";
    case DaneResult::Failed:
      return "failed";
    case DaneResult::LookupFailed:
      return "lookup_failed";
  }
  return "failed";
}

namespace {

// Full(0) data must be DER of what the selector names, or OpenSSL refuses
// the record when it is added (SSL_dane_tlsa_add returns 0): decided here,
// so that such a record counts as unusable rather than failing the session.
bool full_data_parses(std::uint8_t selector, const std::string& data) {
  auto p = reinterpret_cast<const unsigned char*>(data.data());
  const long n = static_cast<long>(data.size());
  if (selector == 0) {
    X509* cert = d2i_X509(nullptr, &p, n);
    const bool ok = cert != nullptr;
    X509_free(cert);
    return ok;
  }
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, n);
  const bool ok = key != nullptr;
  EVP_PKEY_free(key);
  return ok;
}

}  // namespace

bool usable_tlsa(const dns::TlsaRecord& r) {
  if (r.usage != 2 && r.usage != 3) return false;  // PKIX-TA/EE: unusable in SMTP (§3.1.3)
  if (r.selector > 1) return false;
  switch (r.matching_type) {
    case 0:
      return !r.data.empty() && full_data_parses(r.selector, r.data);
    case 1:
      return r.data.size() == 32;
    case 2:
      return r.data.size() == 64;
    default:
      return false;
  }
}

DanePlan insecure_plan() { return DanePlan{}; }

DanePlan plan_dane(const dns::TlsaAnswer& answer) {
  DanePlan plan;
  switch (answer.status) {
    case dns::Status::Ok:
      break;
    case dns::Status::NxDomain:
    case dns::Status::NoData:
      plan.result = answer.authentic ? DaneResult::NoTlsa : DaneResult::Insecure;
      return plan;
    case dns::Status::TempFail:
    case dns::Status::NullMx:  // not a TLSA status: as a failed lookup (fail closed)
    case dns::Status::BadName:
      plan.action = DanePlan::Action::Defer;
      plan.result = DaneResult::LookupFailed;
      plan.detail =
          "dane: TLSA lookup failed: " +
          (answer.detail.empty() ? std::string(dns::to_string(answer.status)) : answer.detail);
      return plan;
  }
  if (!answer.authentic) return plan;  // §2.2: insecure TLSA records are ignored
  for (const auto& r : answer.records)
    if (usable_tlsa(r)) plan.records.push_back(r);
  if (plan.records.empty()) {
    plan.action = DanePlan::Action::EncryptOnly;
    plan.result = DaneResult::Unusable;
  } else {
    plan.action = DanePlan::Action::Authenticate;
    plan.result = DaneResult::Verified;
  }
  return plan;
}

smtp::TlsMode session_mode(const DanePlan& plan, bool sts_enforced) {
  switch (plan.action) {
    case DanePlan::Action::Authenticate:
      return smtp::TlsMode::Dane;
    case DanePlan::Action::EncryptOnly:
      return sts_enforced ? smtp::TlsMode::Verify : smtp::TlsMode::Required;
    case DanePlan::Action::Opportunistic:
    case DanePlan::Action::Defer:  // never connects; the weakest mode is not what it gets
      break;
  }
  return sts_enforced || plan.action == DanePlan::Action::Defer ? smtp::TlsMode::Verify
                                                                : smtp::TlsMode::Opportunistic;
}

}  // namespace mailgate::delivery
