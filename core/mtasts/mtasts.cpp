// mtasts/mtasts: see mtasts.hpp (the discovery steps of RFC 8461 §3 and
// the cache rules of §5.1).
#include "mtasts/mtasts.hpp"

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "dns/resolver.hpp"

namespace mailgate::mtasts {

PolicyService::PolicyService(httpclient::Client& http, std::string ca_file, unsigned port)
    : port_(port), fetcher_(http, std::move(ca_file)) {}

std::shared_ptr<const Policy> PolicyService::cached(const std::string& domain, std::string* id) {
  std::lock_guard lock(mu_);
  auto it = cache_.find(domain);
  if (it == cache_.end()) return nullptr;
  if (it->second.expires <= Clock::now()) {
    cache_.erase(it);
    return nullptr;
  }
  if (id) *id = it->second.id;
  return it->second.policy;
}

void PolicyService::remember(const std::string& domain, std::shared_ptr<const Policy> p,
                             std::string id) {
  const auto now = Clock::now();
  std::lock_guard lock(mu_);
  if (cache_.size() >= kMaxCachedDomains && !cache_.count(domain)) {
    std::erase_if(cache_, [now](const auto& kv) { return kv.second.expires <= now; });
    if (cache_.size() >= kMaxCachedDomains) cache_.erase(cache_.begin());
  }
  const auto age = std::chrono::seconds(p->max_age);
  cache_[domain] = Cached{std::move(p), std::move(id), now + age};
}

asio::awaitable<FetchResult> PolicyService::fetch(FetchRequest request) {
  auto result = co_await asio::async_initiate<decltype(asio::use_awaitable), void(FetchResult)>(
      [this](auto handler, FetchRequest req) {
        using H = decltype(handler);
        // The fetcher's callback must be copyable; the handler is move-only.
        auto h = std::make_shared<H>(std::move(handler));
        fetcher_.fetch(std::move(req), [h](FetchResult r) {
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
        });
      },
      asio::use_awaitable, std::move(request));
  co_return result;
}

asio::awaitable<Lookup> PolicyService::lookup(dns::Resolver& resolver, std::string domain) {
  Lookup out;
  std::string cached_id;
  auto old = cached(domain, &cached_id);
  auto keep_old = [&](Lookup::Outcome failed, std::string detail) {
    if (old) {
      out.outcome = Lookup::Outcome::Policy;
      out.policy = old;
      out.detail = detail + "; using the cached policy";
    } else {
      out.outcome = failed;
      out.detail = std::move(detail);
    }
    return out;
  };

  auto txt = co_await resolver.txt("_mta-sts." + domain);
  if (txt.status != dns::Status::Ok) {
    co_return keep_old(Lookup::Outcome::NoPolicy, "_mta-sts." + domain + ": " + txt.detail);
  }
  std::string error;
  auto id = parse_txt_id(txt.records, error);
  if (!id) co_return keep_old(Lookup::Outcome::NoPolicy, "_mta-sts." + domain + ": " + error);
  if (old && cached_id == *id) {
    out.outcome = Lookup::Outcome::Policy;
    out.policy = old;
    out.detail = "cached policy id " + *id;
    co_return out;
  }

  const std::string host = "mta-sts." + domain;
  auto addresses = co_await resolver.addresses(host);
  if (addresses.status != dns::Status::Ok || addresses.addresses.empty()) {
    co_return keep_old(Lookup::Outcome::FetchError, host + ": " + addresses.detail);
  }
  FetchRequest req{domain, addresses.addresses.front().to_string(), port_};
  auto fetched = co_await fetch(std::move(req));
  if (fetched.status == FetchResult::Status::Certificate)
    co_return keep_old(Lookup::Outcome::WebpkiInvalid, fetched.error);
  if (fetched.status != FetchResult::Status::Ok)
    co_return keep_old(Lookup::Outcome::FetchError, fetched.error);
  auto parsed = parse_policy(fetched.body);
  if (!parsed.policy)
    co_return keep_old(Lookup::Outcome::Invalid, host + " policy: " + parsed.error);
  auto policy = std::make_shared<const Policy>(std::move(*parsed.policy));
  remember(domain, policy, *id);
  out.outcome = Lookup::Outcome::Policy;
  out.policy = std::move(policy);
  out.detail = "fetched policy id " + *id;
  co_return out;
}

}  // namespace mailgate::mtasts
