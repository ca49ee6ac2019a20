// dns/resolver: caching, coalescing and the mx()/addresses() coroutines on top
// of dns/channel (see resolver.hpp for the promises).
// Inside: the unit of lookup is a record set (name, type). lookup() serves
// what it can from the cache, registers a waiter for the rest — joining a
// query already in flight for the same key, else sending one — and suspends
// once for all of them (A and AAAA go out together). A query's completion
// (inside ares_process_fd, or inline in ares_query, or in ares_destroy at
// shutdown) caches the record set and hands it to every waiter; the waiting
// coroutine is resumed by asio::post on its own executor, never inline, so
// c-ares is never re-entered from a callback. The Core is shared by the
// Resolver and every coroutine in flight, so a coroutine resumed after the
// Resolver is gone still finds its state.
#include "dns/resolver.hpp"

#include <algorithm>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <functional>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "dns/cache.hpp"
#include "dns/channel.hpp"
#include "dns/idna.hpp"
#include "dns/mx_selection.hpp"
#include "dns/wire.hpp"

namespace mailgate::dns {

namespace {

constexpr const char* kShutDown = "DNS resolver shut down";

TtlRules ttl_rules(const ResolverOptions& o) {
  auto secs = [](std::chrono::seconds s) { return static_cast<std::uint32_t>(s.count()); };
  return TtlRules{secs(o.min_ttl), secs(o.max_ttl), secs(o.negative_ttl)};
}

RecordSet shut_down() {
  RecordSet rs;
  rs.status = Status::TempFail;
  rs.detail = kShutDown;
  return rs;
}

// Completion state shared by the waiters of one lookup() suspension.
template <class Handler>
struct Join {
  Join(Handler h, std::size_t n) : handler(std::move(h)), results(n), left(n) {}
  Handler handler;
  std::vector<RecordSet> results;
  std::size_t left;
};

}  // namespace

class Resolver::Core {
 public:
  Core(asio::io_context& ctx, const ResolverOptions& opts)
      : channel_(Channel::create(ctx, opts)),
        rules_(ttl_rules(opts)),
        cache_(opts.cache_entries),
        rng_(std::random_device{}()) {}
  ~Core() { shutdown(); }

  asio::awaitable<MxAnswer> mx(std::string domain);
  asio::awaitable<AddressAnswer> addresses(std::string host);
  asio::awaitable<TxtAnswer> txt(std::string name);
  asio::awaitable<TlsaAnswer> tlsa(std::string host, std::uint16_t port);
  void shutdown();

  Stats stats;
  std::size_t cache_size() const { return cache_.size(); }

 private:
  using Waiter = std::function<void(const RecordSet&)>;
  using Key = std::pair<std::string, RrType>;

  asio::awaitable<std::vector<RecordSet>> lookup(std::string name, std::vector<RrType> types);
  asio::awaitable<AddressAnswer> resolve_addresses(const std::string& name);
  void enqueue(const Key& key, Waiter w);
  void complete(const Key& key, const RecordSet& rs);
  void count(Status s);

  std::shared_ptr<Channel> channel_;
  TtlRules rules_;
  Cache cache_;
  std::mt19937_64 rng_;
  std::map<Key, std::vector<Waiter>> pending_;
};

asio::awaitable<std::vector<RecordSet>> Resolver::Core::lookup(std::string name,
                                                               std::vector<RrType> types) {
  std::vector<RecordSet> out(types.size());
  if (!channel_->open()) {
    for (auto& rs : out) rs = shut_down();
    co_return out;
  }
  std::vector<std::size_t> missing;
  const auto now = Cache::Clock::now();
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (auto hit = cache_.get(name, types[i], now)) {
      out[i] = std::move(*hit);
      stats.cache_hits.fetch_add(1, std::memory_order_relaxed);
    } else {
      missing.push_back(i);
    }
  }
  if (missing.empty()) co_return out;

  std::vector<Key> keys;
  for (auto i : missing) keys.emplace_back(name, types[i]);
  auto got =
      co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<RecordSet>)>(
          [this](auto handler, std::vector<Key> keys) {
            using H = decltype(handler);
            auto join = std::make_shared<Join<H>>(std::move(handler), keys.size());
            for (std::size_t i = 0; i < keys.size(); ++i) {
              enqueue(keys[i], [join, i](const RecordSet& rs) {
                join->results[i] = rs;
                if (--join->left > 0) return;
                auto ex = asio::get_associated_executor(join->handler);
                asio::post(ex, [join]() { std::move(join->handler)(std::move(join->results)); });
              });
            }
          },
          asio::use_awaitable, std::move(keys));
  for (std::size_t j = 0; j < missing.size(); ++j) out[missing[j]] = std::move(got[j]);
  co_return out;
}

void Resolver::Core::enqueue(const Key& key, Waiter w) {
  if (auto it = pending_.find(key); it != pending_.end()) {
    it->second.push_back(std::move(w));
    stats.coalesced.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!channel_->open()) {
    w(shut_down());
    return;
  }
  pending_[key].push_back(std::move(w));
  stats.queries.fetch_add(1, std::memory_order_relaxed);
  // May complete inline (bad name, no servers): pending_ is ready for that.
  channel_->query(key.first, static_cast<int>(key.second),
                  [this, key](int status, const unsigned char* abuf, int alen) {
                    complete(key, to_record_set(key.second, status, abuf, alen, rules_));
                  });
}

void Resolver::Core::complete(const Key& key, const RecordSet& rs) {
  if (rs.status != Status::TempFail && rs.status != Status::BadName && channel_->open())
    cache_.put(key.first, key.second, rs, Cache::Clock::now());
  auto node = pending_.extract(key);
  if (node.empty()) return;
  for (auto& w : node.mapped()) w(rs);
}

void Resolver::Core::count(Status s) {
  Stats::Counter* c = &stats.tempfail;
  switch (s) {
    case Status::Ok:
      c = &stats.ok;
      break;
    case Status::NxDomain:
      c = &stats.nxdomain;
      break;
    case Status::NoData:
      c = &stats.nodata;
      break;
    case Status::NullMx:
      c = &stats.nullmx;
      break;
    case Status::BadName:
      c = &stats.badname;
      break;
    case Status::TempFail:
      break;
  }
  c->fetch_add(1, std::memory_order_relaxed);
}

asio::awaitable<AddressAnswer> Resolver::Core::resolve_addresses(const std::string& name) {
  // (named vectors: g++ 12 cannot put a braced list into a coroutine frame)
  std::vector<RrType> types{RrType::A, RrType::AAAA};
  auto sets = co_await lookup(name, std::move(types));
  AddressAnswer out;
  std::uint32_t ttl = UINT32_MAX;
  const RecordSet* failed = nullptr;
  bool any_ok = false, any_nx = false;
  out.authentic = true;
  for (const auto& rs : sets) {
    out.authentic = out.authentic && rs.authentic;
    if (rs.status == Status::TempFail) {
      failed = &rs;
      continue;
    }
    ttl = std::min(ttl, rs.ttl);
    if (rs.status == Status::Ok) {
      any_ok = true;
      out.addresses.insert(out.addresses.end(), rs.addresses.begin(), rs.addresses.end());
    }
    if (rs.status == Status::NxDomain) any_nx = true;
  }
  out.ttl = ttl == UINT32_MAX ? 0 : ttl;
  if (any_ok) {
    out.status = Status::Ok;
  } else if (failed) {
    out.status = Status::TempFail;
    out.authentic = false;
    out.ttl = 0;
    out.detail = failed->detail;
  } else if (any_nx) {
    out.status = Status::NxDomain;
    out.detail = "domain does not exist (NXDOMAIN)";
  } else {
    out.status = Status::NoData;
    out.detail = "no A or AAAA records";
  }
  co_return out;
}

asio::awaitable<AddressAnswer> Resolver::Core::addresses(std::string host) {
  std::error_code ec;
  auto literal = asio::ip::make_address(host, ec);
  if (!ec && host.find('%') == std::string::npos) {
    count(Status::Ok);
    co_return AddressAnswer{Status::Ok, {literal}, 0, {}};
  }
  std::string error;
  auto name = to_a_label(host, error);
  if (!name) {
    count(Status::BadName);
    co_return AddressAnswer{Status::BadName, {}, 0, std::move(error)};
  }
  auto out = co_await resolve_addresses(*name);
  count(out.status);
  co_return out;
}

asio::awaitable<MxAnswer> Resolver::Core::mx(std::string domain) {
  std::string error;
  auto name = to_a_label(domain, error);
  if (!name) {
    count(Status::BadName);
    co_return MxAnswer{Status::BadName, {}, false, 0, std::move(error)};
  }
  std::vector<RrType> types{RrType::MX};
  auto sets = co_await lookup(*name, std::move(types));
  const RecordSet& mx = sets[0];
  MxAnswer out;
  out.status = mx.status;
  out.authentic = mx.authentic;
  out.ttl = mx.ttl;
  out.detail = mx.detail;
  if (mx.status == Status::Ok) {
    if (is_null_mx(mx.mx)) {
      out.status = Status::NullMx;
      out.detail = "domain publishes a null MX (RFC 7505)";
    } else {
      out.hosts = order_mx(mx.mx, rng_);
    }
  } else if (mx.status == Status::NoData) {
    // RFC 5321 §5.1: no MX records — the domain itself is the implicit MX.
    auto addr = co_await resolve_addresses(*name);
    out.authentic = out.authentic && addr.authentic;
    if (addr.status == Status::Ok) {
      out.status = Status::Ok;
      out.implicit = true;
      out.hosts = {MxHost{*name, 0}};
      out.ttl = std::min(mx.ttl, addr.ttl);
      out.detail.clear();
    } else if (addr.status == Status::NoData) {
      out.ttl = std::min(mx.ttl, addr.ttl);
      out.detail = "no MX and no A/AAAA records";
    } else {
      out.status = addr.status;
      out.ttl = addr.ttl;
      out.detail = addr.detail;
    }
  }
  count(out.status);
  co_return out;
}

asio::awaitable<TxtAnswer> Resolver::Core::txt(std::string name) {
  std::string error;
  auto a_label = to_a_label(name, error);
  if (!a_label) co_return TxtAnswer{Status::BadName, {}, 0, std::move(error)};
  std::vector<RrType> types{RrType::TXT};
  auto sets = co_await lookup(*a_label, std::move(types));
  TxtAnswer out;
  out.status = sets[0].status;
  out.records = std::move(sets[0].texts);
  out.ttl = sets[0].ttl;
  out.detail = std::move(sets[0].detail);
  co_return out;
}

asio::awaitable<TlsaAnswer> Resolver::Core::tlsa(std::string host, std::uint16_t port) {
  std::string error;
  auto a_label = to_a_label(host, error);
  if (!a_label) co_return TlsaAnswer{Status::BadName, {}, 0, std::move(error)};
  std::vector<RrType> types{RrType::TLSA};
  auto sets = co_await lookup("_" + std::to_string(port) + "._tcp." + *a_label, std::move(types));
  TlsaAnswer out;
  out.status = sets[0].status;
  out.records = std::move(sets[0].tlsa);
  out.authentic = sets[0].authentic;
  out.ttl = sets[0].ttl;
  out.detail = std::move(sets[0].detail);
  co_return out;
}

void Resolver::Core::shutdown() {
  channel_->shutdown();  // completes every pending query with TempFail
  for (auto& [key, waiters] : pending_)
    for (auto& w : waiters) w(shut_down());
  pending_.clear();
  cache_.clear();
}

Resolver::Resolver(asio::io_context& ctx, ResolverOptions opts)
    : core_(std::make_shared<Core>(ctx, opts)) {}

Resolver::~Resolver() { core_->shutdown(); }

asio::awaitable<MxAnswer> Resolver::mx(std::string domain) {
  auto core = core_;  // keeps the state alive while this call is suspended
  // Two statements: g++ 12 miscompiles `co_return co_await` of a class type.
  auto answer = co_await core->mx(std::move(domain));
  co_return answer;
}

asio::awaitable<AddressAnswer> Resolver::addresses(std::string host) {
  auto core = core_;
  auto answer = co_await core->addresses(std::move(host));
  co_return answer;
}

asio::awaitable<TxtAnswer> Resolver::txt(std::string name) {
  auto core = core_;
  auto answer = co_await core->txt(std::move(name));
  co_return answer;
}

asio::awaitable<TlsaAnswer> Resolver::tlsa(std::string host, std::uint16_t port) {
  auto core = core_;
  auto answer = co_await core->tlsa(std::move(host), port);
  co_return answer;
}

const Stats& Resolver::stats() const { return core_->stats; }
std::size_t Resolver::cache_size() const { return core_->cache_size(); }
void Resolver::shutdown() { core_->shutdown(); }

}  // namespace mailgate::dns
