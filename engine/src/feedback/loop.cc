#include "feedback/loop.h"

#include <cmath>
#include <unordered_map>

#include "common/log.h"
#include "common/time.h"
#include "store/store.h"

namespace tailor {

using nlohmann::json;

FeedbackLoop::FeedbackLoop(Store* store, Options options, EventFn after_durable)
    : store_(store),
      options_(options),
      after_durable_(std::move(after_durable)),
      attribution_(store, options.attribution) {
  if (options_.max_pending == 0) options_.max_pending = 1;
  worker_ = std::thread([this] { Worker(); });
}

FeedbackLoop::~FeedbackLoop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void FeedbackLoop::Configure(const std::map<std::string, PlacementConfig>& placements) {
  std::unordered_map<std::string, int64_t> windows;
  for (const auto& [name, p] : placements)
    windows[name] = static_cast<int64_t>(std::llround(p.attribution_hours * 3600.0 * 1000.0));
  attribution_.SetWindows(windows);
}

std::vector<Event> FeedbackLoop::Decided(const PlacementConfig& placement,
                                         std::vector<Impression> impressions) {
  std::vector<Event> events;
  // An anonymous decision has nobody to attribute a response to.
  if (impressions.empty() || impressions.front().customer_id.empty()) return events;
  if (placement.impressions == PlacementConfig::Impressions::kExplicit) {
    attribution_.Offered(std::move(impressions));
    return events;
  }
  events.reserve(impressions.size());
  for (const Impression& m : impressions) {
    Event& e = events.emplace_back();
    e.customer_id = m.customer_id;
    e.type = "impression";
    e.offer_id = m.offer_id;
    // An offer's impression names the offer only: the promoted item was not
    // what the customer saw, and item caps must not count it.
    if (m.offer_id.empty()) e.item_id = m.item_id;
    e.decision_id = m.decision_id;
    e.channel = m.channel;
    e.ts_ms = m.ts_ms;
  }
  if (impression_observer_)
    for (const Impression& m : impressions) impression_observer_(m);
  attribution_.Shown(std::move(impressions));
  // A store without a writer (bulk tools) keeps no events: the cache only.
  if (!store_ || !store_->writable()) return events;
  std::unique_lock lock(mu_);
  for (const Event& e : events) {
    if (pending_.size() >= options_.max_pending) {
      waited_.fetch_add(1, std::memory_order_relaxed);
      space_cv_.wait(lock, [&] { return pending_.size() < options_.max_pending || stopping_; });
    }
    pending_.push_back(Pending{store_->AppendEvent(e, nullptr, /*urgent=*/false), e});
  }
  events_made_.fetch_add(events.size(), std::memory_order_relaxed);
  lock.unlock();
  cv_.notify_one();
  return events;
}

void FeedbackLoop::Worker() {
  for (;;) {
    Pending p;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, drained
      p = std::move(pending_.front());
      pending_.pop_front();
    }
    space_cv_.notify_all();
    Status st = p.durable.get();
    if (!st.ok()) {
      events_failed_.fetch_add(1, std::memory_order_relaxed);
      log::Error("feedback",
                 "impression of " + p.event.decision_id + " not stored: " + st.message());
      continue;
    }
    if (after_durable_) after_durable_(p.event);
  }
}

std::optional<Outcome> FeedbackLoop::Observe(const Event& e) {
  if (e.type == "impression") {
    for (const Impression& m : attribution_.Confirm(e))
      if (impression_observer_) impression_observer_(m);
    return std::nullopt;
  }
  std::optional<Outcome> o = attribution_.Join(e);
  if (o && observer_) observer_(*o);
  return o;
}

json FeedbackLoop::OutcomesJson(const std::string& decision_id) {
  json out = json::array();
  if (!store_) return out;
  // Outcomes are logged behind the events they answer.
  if (store_->PendingWrites() > 0) store_->Flush();
  for (const Outcome& o : store_->OutcomesOf(decision_id)) {
    json j = json::object();
    j["event"] = o.event_type;
    j["kind"] = OutcomeKindName(o.kind);
    if (!o.impression.offer_id.empty()) j["offer"] = o.impression.offer_id;
    if (!o.impression.item_id.empty()) j["item"] = o.impression.item_id;
    j["position"] = o.impression.position;
    j["value"] = o.value;
    j["ts"] = format_iso8601_ms(o.ts_ms);
    j["joined_by"] = o.by_decision_id ? "decision" : "window";
    if (!o.first_of_kind) j["repeat"] = true;
    out.push_back(std::move(j));
  }
  return out;
}

json FeedbackLoop::CountsJson() const {
  Attribution::Counts c = attribution_.counts();
  return {{"shown", c.shown},
          {"offered", c.offered},
          {"confirmed", c.confirmed},
          {"joined_by_decision", c.joined_by_decision},
          {"joined_by_window", c.joined_by_window},
          {"unjoined", c.unjoined},
          {"dropped", c.dropped},
          {"store_lookups", c.store_lookups},
          {"in_memory", attribution_.size()},
          {"impression_events", events_made_.load()},
          {"impression_events_failed", events_failed_.load()},
          {"decisions_waited", waited_.load()}};
}

}  // namespace tailor
