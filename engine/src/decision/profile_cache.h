// Bounded LRU cache of customer profiles, sharded to keep lock hold times
// short. Profiles are immutable once cached; an event replaces the entry with
// an updated copy, so a reader never sees a half-applied update.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/store.h"

namespace tailor {

class ProfileCache {
 public:
  explicit ProfileCache(size_t capacity, size_t shards = 16);

  std::shared_ptr<const Profile> Get(const std::string& customer_id);
  // A load from the store races with events: read Epoch() before loading and
  // pass it to Put, which then drops the profile if an event for this shard
  // arrived in between (the next request loads it afresh).
  uint64_t Epoch(const std::string& customer_id);
  void Put(const std::string& customer_id, std::shared_ptr<const Profile> profile, uint64_t epoch);
  // Applies an event to a cached profile (no-op when not cached).
  void ApplyEvent(const Event& e, size_t recent_limit);
  // The same for many events; consecutive events of one customer cost one
  // copy of the profile (a decision's impressions).
  void ApplyEvents(std::span<const Event> events, size_t recent_limit);
  void Erase(const std::string& customer_id);
  size_t size() const;

 private:
  struct Shard {
    mutable std::mutex mu;
    std::list<std::string> lru;  // front = most recent
    struct Entry {
      std::shared_ptr<const Profile> profile;
      std::list<std::string>::iterator pos;
    };
    std::unordered_map<std::string, Entry> map;
    uint64_t epoch = 0;  // bumped by every event for a customer of this shard
  };
  Shard& ShardFor(const std::string& id);
  // Events of one customer, applied to one copy of its cached profile.
  void ApplyRun(std::span<const Event> run, size_t recent_limit);

  size_t per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace tailor
