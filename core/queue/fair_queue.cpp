// queue/fair_queue: see fair_queue.hpp.
#include "queue/fair_queue.hpp"

#include <algorithm>

namespace mailgate::queue {

namespace {
// Stride = L / weight with L = 9 (the weights 3, 9, 1 divide it).
constexpr std::uint64_t kStride[tenancy::kPriorityCount] = {3, 1, 9};  // normal, high, bulk
}  // namespace

FairQueue::FairQueue() = default;
FairQueue::~FairQueue() = default;

std::string FairQueue::sub_key(int cls, std::string_view tenant, std::string_view campaign) {
  std::string k;
  k.reserve(3 + tenant.size() + campaign.size());
  k += static_cast<char>('0' + cls);
  k += tenant;
  k += '/';  // names never contain '/'
  k += campaign;
  return k;
}

std::string FairQueue::group_key(int cls, std::string_view tenant) {
  std::string k;
  k += static_cast<char>('0' + cls);
  k += tenant;
  return k;
}

void FairQueue::link(Sub& s) {
  if (s.linked || s.held || s.items.empty()) return;
  s.linked = true;
  Group& g = *s.group;
  g.ring.push_back(&s);
  if (!g.linked) {
    g.linked = true;
    Class& c = classes_[g.cls];
    // A class that comes back gets no credit for the time it had nothing.
    if (c.ring.empty()) c.pass = std::max(c.pass, vtime_);
    c.ring.push_back(&g);
  }
}

void FairQueue::unlink(Sub& s) {
  if (!s.linked) return;
  s.linked = false;
  Group& g = *s.group;
  g.ring.erase(std::find(g.ring.begin(), g.ring.end(), &s));
  if (g.ring.empty() && g.linked) {
    g.linked = false;
    auto& ring = classes_[g.cls].ring;
    ring.erase(std::find(ring.begin(), ring.end(), &g));
  }
}

void FairQueue::drop_if_empty(Sub& s) {
  if (!s.items.empty()) return;
  unlink(s);
  Group* g = s.group;
  subs_.erase(s.key);  // frees s
  if (--g->subs == 0) groups_.erase(g->key);
}

void FairQueue::push(Item item, const HoldTest& held) {
  const auto& t = item.tenancy_or_none();
  const int cls = static_cast<int>(t.priority);
  auto key = sub_key(cls, t.tenant, t.campaign);
  auto it = subs_.find(key);
  if (it == subs_.end()) {
    auto gkey = group_key(cls, t.tenant);
    auto git = groups_.find(gkey);
    if (git == groups_.end()) {
      auto g = std::make_unique<Group>();
      g->key = gkey;
      g->cls = cls;
      git = groups_.emplace(std::move(gkey), std::move(g)).first;
    }
    auto s = std::make_unique<Sub>();
    s->key = key;
    s->group = git->second.get();
    s->campaign = t.campaign;
    s->held = held && held(t);
    ++s->group->subs;
    it = subs_.emplace(std::move(key), std::move(s)).first;
  }
  Sub& s = *it->second;
  s.items.push_back(std::move(item));
  ++size_;
  if (s.held) ++held_;
  link(s);
}

const Item* FairQueue::peek() const {
  const Class* best = nullptr;
  for (const auto& c : classes_)  // the same choice as take()
    if (!c.ring.empty() && (!best || c.pass < best->pass)) best = &c;
  if (!best) return nullptr;
  return &best->ring.front()->ring.front()->items.front();
}

std::optional<Item> FairQueue::take() {
  Class* best = nullptr;
  for (auto& c : classes_)  // ties: normal, high, bulk order is fine (passes differ by design)
    if (!c.ring.empty() && (!best || c.pass < best->pass)) best = &c;
  if (!best) return std::nullopt;
  const auto cls = best - classes_;
  vtime_ = best->pass;
  best->pass += kStride[cls];
  Group& g = *best->ring.front();
  Sub& s = *g.ring.front();
  Item item = std::move(s.items.front());
  s.items.pop_front();
  --size_;
  // Round robin: this campaign goes behind the tenant's others, this tenant
  // behind the class's others.
  g.ring.pop_front();
  if (!s.items.empty())
    g.ring.push_back(&s);
  else
    s.linked = false;
  best->ring.pop_front();
  if (!g.ring.empty())
    best->ring.push_back(&g);
  else
    g.linked = false;
  if (s.items.empty()) drop_if_empty(s);
  return item;
}

bool FairQueue::rehold(const HoldTest& held) {
  bool freed = false;
  for (auto& [key, s] : subs_) {
    const bool h = held && held(s->items.front().tenancy_or_none());
    if (h == s->held) continue;
    s->held = h;
    if (h) {
      held_ += s->items.size();
      unlink(*s);
    } else {
      held_ -= s->items.size();
      link(*s);
      freed = true;
    }
  }
  return freed;
}

void FairQueue::for_each(const std::function<void(const Item&, bool held)>& f) const {
  for (const auto& [key, s] : subs_)
    for (const auto& item : s->items) f(item, s->held);
}

void FairQueue::erase_if(const std::function<bool(const Item&)>& pred,
                         const std::function<void(Item&&)>& out) {
  std::vector<Sub*> emptied;
  for (auto& [key, s] : subs_) {
    auto& q = s->items;
    const auto before = q.size();
    auto keep = q.begin();
    for (auto it = q.begin(); it != q.end(); ++it) {
      if (pred(*it))
        out(std::move(*it));
      else if (keep != it)
        *keep++ = std::move(*it);
      else
        ++keep;
    }
    q.erase(keep, q.end());
    const auto removed = before - q.size();
    size_ -= removed;
    if (s->held) held_ -= removed;
    if (q.empty()) emptied.push_back(s.get());
  }
  for (auto* s : emptied) drop_if_empty(*s);
}

}  // namespace mailgate::queue
