// The engine's side of the feedback contract: what a decision's record stage
// and the event path hand to attribution (feedback/attribution.h).
//
// Decided() takes a decision's impressions. On a placement with
// `impressions: on_decide` they are shown now: stored, indexed, and turned
// into one `impression` event per shown offer/item (customer, offer/item,
// decision id, channel) that is appended to the event log without waiting for
// it, returned for the caller to apply to its profile cache at once (so the
// next decision's frequency caps count it), and handed to after_durable on
// the loop's own thread once durable (journeys count contacts, plugins
// observe). On `impressions: explicit` they wait for the app's `impression`
// events.
//
// Observe() runs on the event path after an event is durable: an
// `impression` event confirms an explicit impression, a response is joined
// and its outcome stored and handed to the observer (learning).
//
// Bounds: impression events waiting for durability are at most max_pending;
// a decision that would exceed it waits for the oldest (the store is that far
// behind). The attribution index has its own bounds.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "config/config.h"
#include "feedback/attribution.h"
#include "model/feedback.h"
#include "model/types.h"

namespace tailor {

class Store;

class FeedbackLoop {
 public:
  struct Options {
    Attribution::Options attribution;
    size_t max_pending = 4096;  // impression events appended, not yet durable
  };
  using EventFn = std::function<void(const Event&)>;
  using OutcomeFn = std::function<void(const Outcome&)>;

  // store must outlive the loop; after_durable runs on the loop's thread.
  FeedbackLoop(Store* store, Options options, EventFn after_durable);
  ~FeedbackLoop();  // hands every pending impression event to after_durable first
  FeedbackLoop(const FeedbackLoop&) = delete;
  FeedbackLoop& operator=(const FeedbackLoop&) = delete;

  // Windows and impression modes of the placements; at start and on reload.
  void Configure(const std::map<std::string, PlacementConfig>& placements);
  // Rebuilds the attribution index from the store (start-up).
  int64_t Rebuild(int64_t now_ms) { return attribution_.Rebuild(now_ms); }
  // Set before serving: receives every joined outcome, on the event path.
  void SetObserver(OutcomeFn observer) { observer_ = std::move(observer); }
  // Set before serving: receives every impression once it is shown (on
  // decide, or when the app's `impression` event confirms it).
  void SetImpressionObserver(std::function<void(const Impression&)> observer) {
    impression_observer_ = std::move(observer);
  }

  // One decision's impressions, positions from 1. Returns the impression
  // events made (on_decide) for the caller's profile cache; empty otherwise.
  std::vector<Event> Decided(const PlacementConfig& placement, std::vector<Impression> impressions);
  // A durable event: confirms explicit impressions, joins responses.
  std::optional<Outcome> Observe(const Event& e);

  // A decision's outcomes for explain: [{event, kind, offer|item, value, ts,
  // position, joined_by: decision|window}] in the order they were joined.
  nlohmann::json OutcomesJson(const std::string& decision_id);
  // Counters for stats.
  nlohmann::json CountsJson() const;

  Attribution& attribution() { return attribution_; }

 private:
  void Worker();

  Store* store_;
  Options options_;
  EventFn after_durable_;
  OutcomeFn observer_;
  std::function<void(const Impression&)> impression_observer_;
  Attribution attribution_;

  struct Pending {
    std::future<Status> durable;
    Event event;
  };
  std::mutex mu_;
  std::condition_variable cv_, space_cv_;
  std::deque<Pending> pending_;
  bool stopping_ = false;
  std::atomic<uint64_t> events_made_{0}, events_failed_{0}, waited_{0};
  std::thread worker_;
};

}  // namespace tailor
