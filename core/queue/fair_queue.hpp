// queue/fair_queue: the ready items of one destination, scheduled fairly
// between tenants (DESIGN §6b, issue 12 item 5). Items are grouped in
// sub-queues by (priority class, tenant, campaign), FIFO inside each. take()
// picks the priority class by stride scheduling with weights high:normal:bulk
// = 9:3:1 among the classes that have something to take (so `high` gets at
// most 90% of the takes while another class waits, and nothing starves),
// then round-robins between the class's tenants, then between the tenant's
// campaigns. A held sub-queue (its tenant or campaign is suspended) keeps its
// items but is out of the rotation, so it never blocks the others.
// Promises: push and take are O(1) (amortized; plus one hash lookup of the
// sub-queue's key on push); mail without a tenancy is one sub-queue, i.e.
// plain FIFO as before; empty sub-queues and tenant groups are freed, so
// memory follows what is queued; every item (held or not) is visited by
// for_each / erase_if (admin listings, expiry, bounce).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "queue/item.hpp"

namespace mailgate::queue {

class FairQueue {
 public:
  // Is a sub-queue of this tenancy held (its tenant or campaign suspended)?
  using HoldTest = std::function<bool(const tenancy::Tenancy&)>;

  FairQueue();
  ~FairQueue();
  FairQueue(FairQueue&&) = delete;

  // Appends `item` to its sub-queue; `held` is asked only when the
  // sub-queue is new (rehold() changes it later).
  void push(Item item, const HoldTest& held);
  // The next item by the fair order, skipping held sub-queues; nothing when
  // every item is held (or there is none).
  std::optional<Item> take();
  // The item take() would return next (nothing changes), or null.
  const Item* peek() const;
  // Asks `held` again for every sub-queue (a suspension was added, removed
  // or expired). Returns true when something became takeable.
  bool rehold(const HoldTest& held);

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t held() const { return held_; }              // items in held sub-queues
  std::size_t takeable() const { return size_ - held_; }  // what take() can return

  // Every item, held or not, in no particular order; `held` says which.
  void for_each(const std::function<void(const Item&, bool held)>& f) const;
  // Removes the items `pred` picks (handing each to `out`), keeping the
  // order of the rest.
  void erase_if(const std::function<bool(const Item&)>& pred,
                const std::function<void(Item&&)>& out);

  // Share weights of the priority classes (tests, README).
  static constexpr std::uint64_t kWeight[tenancy::kPriorityCount] = {3, 9,
                                                                     1};  // normal, high, bulk

 private:
  struct Group;
  struct Sub {
    std::string key;  // in subs_
    Group* group = nullptr;
    std::string campaign;
    std::deque<Item> items;
    bool held = false;
    bool linked = false;  // in group->ring
  };
  struct Group {      // one tenant within one priority class
    std::string key;  // in groups_
    int cls = 0;
    std::deque<Sub*> ring;  // takeable, non-empty sub-queues
    std::size_t subs = 0;   // all its sub-queues, held or empty-in-the-making too
    bool linked = false;    // in classes_[cls].ring
  };
  struct Class {
    std::deque<Group*> ring;  // groups with a takeable sub-queue
    std::uint64_t pass = 0;   // stride scheduling: lowest pass goes next
  };

  static std::string sub_key(int cls, std::string_view tenant, std::string_view campaign);
  static std::string group_key(int cls, std::string_view tenant);
  void link(Sub& s);
  void unlink(Sub& s);
  void drop_if_empty(Sub& s);

  std::unordered_map<std::string, std::unique_ptr<Sub>> subs_;
  std::unordered_map<std::string, std::unique_ptr<Group>> groups_;
  Class classes_[tenancy::kPriorityCount];
  std::uint64_t vtime_ = 0;  // pass of the last class taken from
  std::size_t size_ = 0, held_ = 0;
};

}  // namespace mailgate::queue
