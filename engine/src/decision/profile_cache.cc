#include "decision/profile_cache.h"

#include <functional>

namespace tailor {

ProfileCache::ProfileCache(size_t capacity, size_t shards) {
  if (shards == 0) shards = 1;
  per_shard_ = capacity / shards + (capacity % shards ? 1 : 0);
  for (size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

ProfileCache::Shard& ProfileCache::ShardFor(const std::string& id) {
  return *shards_[std::hash<std::string>{}(id) % shards_.size()];
}

std::shared_ptr<const Profile> ProfileCache::Get(const std::string& id) {
  Shard& s = ShardFor(id);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(id);
  if (it == s.map.end()) return nullptr;
  s.lru.splice(s.lru.begin(), s.lru, it->second.pos);
  return it->second.profile;
}

uint64_t ProfileCache::Epoch(const std::string& id) {
  Shard& s = ShardFor(id);
  std::lock_guard lock(s.mu);
  return s.epoch;
}

void ProfileCache::Put(const std::string& id, std::shared_ptr<const Profile> profile,
                       uint64_t epoch) {
  if (per_shard_ == 0) return;
  Shard& s = ShardFor(id);
  std::lock_guard lock(s.mu);
  if (s.epoch != epoch) return;
  auto it = s.map.find(id);
  if (it != s.map.end()) {
    it->second.profile = std::move(profile);
    s.lru.splice(s.lru.begin(), s.lru, it->second.pos);
    return;
  }
  s.lru.push_front(id);
  s.map.emplace(id, Shard::Entry{std::move(profile), s.lru.begin()});
  while (s.map.size() > per_shard_) {
    s.map.erase(s.lru.back());
    s.lru.pop_back();
  }
}

void ProfileCache::ApplyEvent(const Event& e, size_t recent_limit) {
  ApplyEvents(std::span<const Event>(&e, 1), recent_limit);
}

void ProfileCache::ApplyEvents(std::span<const Event> events, size_t recent_limit) {
  for (size_t i = 0; i < events.size();) {
    size_t j = i + 1;
    while (j < events.size() && events[j].customer_id == events[i].customer_id) ++j;
    ApplyRun(events.subspan(i, j - i), recent_limit);
    i = j;
  }
}

void ProfileCache::ApplyRun(std::span<const Event> run, size_t recent_limit) {
  const std::string& id = run.front().customer_id;
  Shard& s = ShardFor(id);
  std::lock_guard lock(s.mu);
  ++s.epoch;
  auto it = s.map.find(id);
  if (it == s.map.end()) return;
  // One copy for the whole run: a decision's impressions come together.
  auto updated = std::make_shared<Profile>(*it->second.profile);
  updated->known = true;
  for (const Event& e : run) {
    updated->counts[e.type]++;
    if (updated->first_seen_ms == 0 || e.ts_ms < updated->first_seen_ms)
      updated->first_seen_ms = e.ts_ms;
    if (e.ts_ms > updated->last_seen_ms) updated->last_seen_ms = e.ts_ms;
    updated->history.Add(e.type, e.offer_id, e.item_id, e.ts_ms);
    updated->recent.push_back(e);
  }
  if (updated->recent.size() > recent_limit)
    updated->recent.erase(updated->recent.begin(),
                          updated->recent.begin() +
                              static_cast<std::ptrdiff_t>(updated->recent.size() - recent_limit));
  it->second.profile = std::move(updated);
}

void ProfileCache::Erase(const std::string& id) {
  Shard& s = ShardFor(id);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(id);
  if (it == s.map.end()) return;
  s.lru.erase(it->second.pos);
  s.map.erase(it);
}

size_t ProfileCache::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    n += s->map.size();
  }
  return n;
}

}  // namespace tailor
