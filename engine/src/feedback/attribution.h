// The feedback contract (Rank -> Reward): which decision a response answers.
//
// A decision hands its candidates' impressions to Shown() (placements with
// `impressions: on_decide`) or Offered() (`impressions: explicit`: they wait
// for the app's `impression` event, which Confirm() turns into shown ones).
// Join() attributes a durable response event to one impression:
//   click, offer_click   -> Outcome::Kind::kClick
//   convert, purchase    -> Outcome::Kind::kConversion (the event's value)
//   dismiss              -> Outcome::Kind::kDismiss
// An event naming a `decision` joins to that decision's impression of its
// offer (else of its item; else the decision's only candidate), whatever its
// age. An event without one joins to the latest shown impression of that
// offer/item to that customer within the impression's placement window
// (`attribution_hours`, default 24). An item event matches an offer that
// promoted that item too, so a purchase of a promoted item is that offer's
// conversion.
//
// Every impression and outcome is also written to the store (impressions and
// outcomes tables, through its writer queue: nothing here waits for disk).
//
// Memory is bounded: at most per_customer impressions per customer (oldest
// dropped first) and max_impressions in all (least recently active customers
// dropped first), both split over shards. Once anything still inside a window
// was dropped, a window join that finds nothing in memory asks the store; a
// join by decision id always can.
//
// Thread-safe: Shown, Offered, Confirm and Join run from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/feedback.h"
#include "model/types.h"

namespace tailor {

class Store;

class Attribution {
 public:
  struct Options {
    size_t per_customer = 32;         // impressions kept per customer
    size_t max_impressions = 200000;  // in all (about 300 bytes each without features)
    size_t shards = 16;
    int64_t default_window_ms = 24 * 3600 * 1000;
    // Events stamped up to this much before the decision (client clocks) still
    // join it.
    int64_t clock_skew_ms = 5 * 60 * 1000;
  };

  struct Counts {
    uint64_t shown = 0;
    uint64_t offered = 0;    // waiting for an explicit impression
    uint64_t confirmed = 0;  // explicit impressions reported
    uint64_t joined_by_decision = 0;
    uint64_t joined_by_window = 0;
    uint64_t unjoined = 0;  // responses that matched no impression
    uint64_t dropped = 0;   // impressions dropped from memory by the bounds
    uint64_t store_lookups = 0;
  };

  // store may be null (nothing persisted, no fallback); it must outlive this.
  Attribution(Store* store, Options options);
  Attribution(const Attribution&) = delete;
  Attribution& operator=(const Attribution&) = delete;

  // Attribution window per placement (others: the default). Call at start
  // and on every reload.
  void SetWindows(const std::unordered_map<std::string, int64_t>& window_ms_by_placement);

  // A decision's shown candidates (one decision; positions from 1).
  void Shown(std::vector<Impression> impressions);
  // A decision's candidates that wait for the app's impression events.
  void Offered(std::vector<Impression> impressions);
  // An `impression` event naming a decision: the candidate it names (by
  // offer, else item), or every candidate of the decision when it names
  // neither, becomes shown at the event's time. Returns what this event
  // showed (empty when already shown or unknown).
  std::vector<Impression> Confirm(const Event& e);
  // A durable response event's outcome, also logged to the store; nullopt when
  // the event is no response or matches no impression. e.seq, when set, is
  // recorded as the outcome's event_seq.
  std::optional<Outcome> Join(const Event& e);

  // Erasure: drops the customer's impressions from memory.
  void Forget(const std::string& customer_id);

  // Rebuilds memory from the store's impressions and outcomes of the longest
  // window before now_ms. Returns the impressions read, -1 on error.
  int64_t Rebuild(int64_t now_ms);

  // The response kind of an event type; nullopt for anything else.
  static std::optional<Outcome::Kind> KindOf(const std::string& event_type);

  Counts counts() const;
  size_t size() const;  // impressions in memory

 private:
  struct Entry {
    Impression impression;
    uint8_t joined = 0;  // bit per Outcome::Kind already joined
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<std::string> lru;  // customers, front = most recently active
    struct Customer {
      std::vector<Entry> entries;  // oldest first
      std::list<std::string>::iterator pos;
    };
    std::unordered_map<std::string, Customer> customers;
    size_t impressions = 0;
  };

  Shard& ShardFor(const std::string& customer_id);
  int64_t WindowOf(const std::string& placement) const;
  int64_t LongestWindow() const;
  // Adds under the shard's lock; drops what the bounds require.
  void AddLocked(Shard& s, Impression m, uint8_t joined);
  void TrimLocked(Shard& s);
  // Finds the decision's entry matching e (offer, else item, else the only
  // one) in memory; null when none.
  Entry* FindByDecisionLocked(Shard& s, const Event& e);
  // The newest shown entry matching e's offer/item within its window.
  Entry* FindByWindowLocked(Shard& s, const Event& e);
  // Store fallbacks, without any lock held.
  std::optional<Impression> StoreByDecision(const Event& e);
  std::optional<Impression> StoreByWindow(const Event& e);
  bool StoreJoined(const Impression& m, Outcome::Kind kind);

  Store* store_;
  Options options_;
  size_t per_shard_cap_;
  std::vector<std::unique_ptr<Shard>> shards_;
  struct Windows {
    std::unordered_map<std::string, int64_t> by_placement;
    int64_t longest = 0;
  };
  std::atomic<std::shared_ptr<const Windows>> windows_;
  // Set once an impression still inside its window was dropped from memory:
  // from then on a window miss asks the store.
  std::atomic<bool> lossy_{false};

  std::atomic<uint64_t> shown_{0}, offered_{0}, confirmed_{0}, by_decision_{0}, by_window_{0},
      unjoined_{0}, dropped_{0}, store_lookups_{0};
};

}  // namespace tailor
