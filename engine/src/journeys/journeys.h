// Journey definitions from config/journeys/*.yaml (reference: docs/journeys.md).
//
// A journey is a list of stages a customer moves through (awareness ->
// consideration -> purchase -> ...). Events enter customers into a journey
// (`entry`) and move them between stages or out of it (`transitions`, on an
// event or after days of inactivity). Each stage may restrict the offers,
// categories and channels the engine may show, cap contacts per channel and
// window, and schedule outbound steps ("2d after entering, email offer X").
//
// Journeys is immutable once loaded and shared by every thread: it is part of
// the engine's reloadable snapshot. The per-customer state lives in
// JourneyRuntime (runtime.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace tailor {

// Conditions on one event; every condition set must hold (lists: any of).
struct JourneyTrigger {
  std::vector<std::string> events;  // event types, never empty
  std::vector<std::string> categories;
  std::vector<std::string> items;
  std::vector<std::string> offers;
  std::vector<std::string> channels;
  // Chat intents (the intent plugin's classification of a chat event, or the
  // event's properties.intent).
  std::vector<std::string> intents;
  std::optional<double> min_value, max_value;
  // Only when the event is the customer's first activity (no earlier event
  // other than impressions): "new customers".
  bool new_customer = false;
  std::string source;  // "file:line" for messages
};

// At most `max` contacts on `channel` (empty: all channels together) within
// the last `per_ms`.
struct JourneyCap {
  std::string channel;
  int64_t max = 0;
  int64_t per_ms = 0;
  std::string per_text;  // as written, e.g. "7d", for reasons
};

// An outbound message scheduled when a customer enters the stage.
struct JourneyStep {
  std::string name;  // unique within the journey
  int64_t delay_ms = 0;
  std::string channel;
  std::string offer;
  // true: cancelled unless the customer is still in the stage it was
  // scheduled from (the same visit) when it is due.
  bool requires_stage = false;
};

struct JourneyStage {
  std::string name;
  std::string description;
  // Allowed candidates: an offer listed in `offers` or promoting a category
  // listed in `categories`; both empty = any. `channels` empty = any.
  std::vector<std::string> offers;
  std::vector<std::string> categories;
  std::vector<std::string> channels;
  std::vector<JourneyCap> caps;
  std::vector<JourneyStep> steps;
};

struct JourneyEntry {
  JourneyTrigger trigger;
  size_t stage = 0;  // index into Journey::stages
};

struct JourneyTransition {
  std::vector<size_t> from;  // stage indices; empty = any stage
  bool exit = false;         // leave the journey instead of moving
  size_t to = 0;             // stage index when !exit
  // Exactly one of: an event trigger, or inactivity (no customer event other
  // than impressions for inactive_ms).
  std::optional<JourneyTrigger> trigger;
  int64_t inactive_ms = 0;
  std::string source;
};

struct Journey {
  std::string name;
  std::string description;
  std::string file;
  bool reentry = false;  // may a customer who left enter again?
  std::vector<JourneyStage> stages;
  std::vector<JourneyEntry> entries;
  std::vector<JourneyTransition> transitions;

  // Index of the named stage, or -1.
  int StageIndex(const std::string& stage) const;
};

class Journeys {
 public:
  // Loads every *.yaml / *.yml in dir, sorted by file name (which is also the
  // order in which journeys are evaluated). Appends every error found as
  // "file:line:col: key.path: message" and returns null when there was any.
  // Offers named anywhere must be in known_offer_ids. A missing directory is
  // an error; an empty one gives no journeys.
  static std::shared_ptr<const Journeys> Load(const std::string& dir,
                                              const std::set<std::string>& known_offer_ids,
                                              std::vector<std::string>* errors);
  // Same checks on in-memory files {file name, YAML text} (tests, tools).
  static std::shared_ptr<const Journeys> FromSources(
      const std::vector<std::pair<std::string, std::string>>& sources,
      const std::set<std::string>& known_offer_ids, std::vector<std::string>* errors);

  const std::vector<Journey>& journeys() const { return journeys_; }
  // Null when no journey has that name.
  const Journey* Find(const std::string& name) const;
  bool empty() const { return journeys_.empty(); }
  // Longest cap window of any stage: contacts older than this never matter.
  int64_t longest_cap_ms() const { return longest_cap_ms_; }

 private:
  std::vector<Journey> journeys_;
  std::unordered_map<std::string, size_t> index_;
  int64_t longest_cap_ms_ = 0;
};

// "30s", "15m", "36h", "2d", "1w" -> milliseconds; nullopt otherwise.
std::optional<int64_t> ParseJourneyDuration(const std::string& text);

}  // namespace tailor
