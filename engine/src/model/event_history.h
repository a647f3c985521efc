// A customer's event times by (event type, offer or item id), for the rules'
// history.* questions: "purchases of i7 in 30 days", "impressions of o_x in
// 7 days", "seconds since the last click". Answers are exact for any window
// back to horizon_ms(): every event time since the horizon is held, to the
// millisecond, so a "12h" window ending mid-day counts exactly the events at
// or after now - 12h (no day or hour buckets to round to).
//
// Cost: one int64 per event for its type and one per distinct id it names
// (offer, item): 8 to 24 bytes an event. Queries are binary searches.
//
// Copies are cheap: the bulk is an immutable block shared between copies,
// and events applied after the load go to a short tail that is merged into a
// fresh block once it is full. The profile cache copies a profile on every
// event; with this it copies the tail, not the history.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailor {

class EventHistory {
  struct Grouped;  // (type, id, role) -> times, while building

 public:
  // Days of events a profile load keeps unless configured (store.history_days).
  static constexpr int64_t kDefaultDays = 400;

  // Collects events (in any order) and builds the history.
  class Builder {
   public:
    Builder();
    ~Builder();
    void Add(std::string_view type, std::string_view offer_id, std::string_view item_id,
             int64_t ts_ms);
    // Events before horizon_ms are dropped (the caller did not load them).
    EventHistory Build(int64_t horizon_ms);

   private:
    std::unique_ptr<Grouped> groups_;
  };

  // Events at or after since_ms of this type, naming id as their offer or item
  // (any event of the type when id is empty).
  int64_t Count(std::string_view type, std::string_view id, int64_t since_ms) const;
  // Time of the newest such event, if any is held.
  std::optional<int64_t> Newest(std::string_view type, std::string_view id) const;
  // Replaces *out with the times, ascending, of the events in [since_ms,
  // until_ms] of this type naming id as their offer or item: for policies that
  // look at when each event happened (decision/suppression.h).
  void Times(std::string_view type, std::string_view id, int64_t since_ms, int64_t until_ms,
             std::vector<int64_t>* out) const;
  // Time of the newest event of this type whose item is item_id.
  std::optional<int64_t> NewestItem(std::string_view type, std::string_view item_id) const;
  // Calls fn(item_id, newest_ms) for the items named by events of this type;
  // an item may be visited more than once (fn sees its newest time at least
  // once). fn returns false to stop.
  void ForEachItem(std::string_view type,
                   const std::function<bool(std::string_view, int64_t)>& fn) const;

  // An event applied after the load (events before the horizon are ignored,
  // as a fresh load would not hold them).
  void Add(std::string_view type, std::string_view offer_id, std::string_view item_id,
           int64_t ts_ms);

  // Events before this time are not held: windows reaching further back see
  // only the events since it.
  int64_t horizon_ms() const { return horizon_ms_; }
  // Event times held (an event naming an offer and an item counts three).
  size_t times() const;

 private:
  // Which id of the event a key holds: none (the type's total), its offer,
  // its item, or both (offer_id == item_id).
  enum Role : uint8_t { kAny = 0, kOffer = 1, kItem = 2, kBoth = 3 };
  struct Key {
    std::string type, id;
    uint8_t role;
    uint32_t begin, end;  // into Block::times, ascending
  };
  struct Block {
    std::vector<Key> keys;  // sorted by (type, id, role)
    std::vector<int64_t> times;
  };
  struct Pending {
    std::string type, offer_id, item_id;
    int64_t ts;
  };
  static constexpr size_t kTailMax = 32;
  // (type, id, role) -> times into one block; times before horizon dropped.
  static std::shared_ptr<const Block> Flatten(Grouped* g, int64_t horizon_ms);
  // Keys of (type, id) in the block: one per role present.
  std::pair<const Key*, const Key*> Keys(std::string_view type, std::string_view id) const;
  void Merge();

  std::shared_ptr<const Block> block_;
  std::vector<Pending> tail_;  // applied since the block was built
  int64_t horizon_ms_ = INT64_MIN;
};

}  // namespace tailor
