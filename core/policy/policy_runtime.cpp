// policy/policy_runtime: the current policy version of every worker, and
// reload. New states are built (the config file run once per worker) on the
// reloading thread; only when every one of them built does each worker swap
// its slot, on its own thread. Old versions live on in the transactions and
// delivery attempts that hold them. It also owns the process's crypt pool
// (mailgate.crypt_verify) unless the caller brought one.
#include <spdlog/spdlog.h>
#include <asio/post.hpp>
#include <future>

#include "policy/runtime.hpp"

#include "policy/crypt.hpp"

#include "dns/idna.hpp"
#include "text/ascii.hpp"

namespace mailgate::policy {

AddressInfo make_address_info(std::string_view address) {
  AddressInfo a;
  a.address = std::string(address);
  const auto at = address.rfind('@');
  if (at == std::string_view::npos) {
    a.user = a.address;
    return a;
  }
  a.user = std::string(address.substr(0, at));
  const auto domain = address.substr(at + 1);
  a.domain = dns::normalize_domain(domain);
  a.domain_unicode = text::is_ascii(domain) && a.domain.find("xn--") == std::string::npos
                         ? a.domain
                         : dns::to_unicode(domain);
  return a;
}

PolicyRuntime::PolicyRuntime(std::string config_path, std::vector<std::string> overrides,
                             const Config& config, Services services,
                             std::vector<asio::io_context*> contexts,
                             std::vector<dns::Resolver*> resolvers)
    : path_(std::move(config_path)),
      overrides_(std::move(overrides)),
      config_(config),
      services_(std::move(services)),
      contexts_(std::move(contexts)),
      resolvers_(std::move(resolvers)) {
  for (std::size_t i = 0; i < contexts_.size(); ++i)
    stats_.push_back(std::make_unique<HookStats>());
  current_.resize(contexts_.size());
  if (services_.crypt == nullptr) {
    crypt_ = std::make_unique<CryptPool>();
    services_.crypt = crypt_.get();
  }
}

PolicyRuntime::~PolicyRuntime() { shutdown(); }

void PolicyRuntime::shutdown() {
  if (crypt_) crypt_->stop();
}

void PolicyRuntime::start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    current_[i] = build_policy(path_, 1, config_, services_,
                               i < resolvers_.size() ? resolvers_[i] : nullptr, stats_[i].get());
  }
  version_ = 1;
}

PolicyRef PolicyRuntime::current(unsigned index) const { return current_[index]; }

std::string PolicyRuntime::reload() {
  std::lock_guard lock(reload_mu_);
  const auto next = version_.load() + 1;
  std::vector<PolicyRef> fresh;
  try {
    // The whole file is validated again, so an error anywhere is refused.
    (void)load_config(path_, overrides_);
    for (std::size_t i = 0; i < contexts_.size(); ++i) {
      fresh.push_back(build_policy(path_, next, config_, services_,
                                   i < resolvers_.size() ? resolvers_[i] : nullptr,
                                   stats_[i].get()));
    }
  } catch (const std::exception& e) {
    spdlog::error("reload refused, policy version {} keeps running: {}", version_.load(), e.what());
    return e.what();
  }
  std::vector<std::future<void>> swapped;
  for (std::size_t i = 0; i < contexts_.size(); ++i) {
    auto done = std::make_shared<std::promise<void>>();
    swapped.push_back(done->get_future());
    asio::post(*contexts_[i], [this, i, p = std::move(fresh[i]), done]() mutable {
      current_[i].swap(p);
      done->set_value();
      // `p` (the old version) is released here unless a call still holds it.
    });
  }
  for (auto& f : swapped) {
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
      return "reload: a worker did not take the new policy within 10s";
  }
  version_ = next;
  spdlog::info("reload: policy version {} active", next);
  return {};
}

}  // namespace mailgate::policy
