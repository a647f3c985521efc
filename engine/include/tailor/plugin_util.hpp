// Small helpers plugins share (optional; header-only, standard library only).
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace tailor::sdk {

// Hashes std::string and std::string_view alike, so that a StringMap can be
// searched with a view (a candidate's const char*) without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// An unordered map from strings, searchable with std::string_view.
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// Per-customer state that Observe changes while Score reads it
// (kConcurrentObserve): the customers are spread over 64 shards, each with its
// own lock, held only to copy or change one customer's value. Score then waits
// at most for one other customer's update in its shard, never for a whole
// Observe or for the plugin.
template <typename V>
class ShardedMap {
 public:
  // A copy of id's value, or nullopt.
  std::optional<V> Get(std::string_view id) const {
    const Shard& s = ShardOf(id);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end()) return std::nullopt;
    return it->second;
  }
  // Calls fn(const V&) on id's value under its lock, when there is one; false
  // when there is none. Cheaper than Get for a large value.
  template <typename Fn>
  bool With(std::string_view id, Fn&& fn) const {
    const Shard& s = ShardOf(id);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end()) return false;
    fn(it->second);
    return true;
  }
  // Calls fn(V&) on id's value (default-constructed when new), under its lock.
  template <typename Fn>
  void Update(std::string_view id, Fn&& fn) {
    Shard& s = ShardOf(id);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(id);
    if (it == s.map.end()) it = s.map.emplace(std::string(id), V{}).first;
    fn(it->second);
  }
  void Erase(std::string_view id) {
    Shard& s = ShardOf(id);
    std::lock_guard lock(s.mu);
    if (auto it = s.map.find(id); it != s.map.end()) s.map.erase(it);
  }
  // Adds id with value (loading a model); false when id is there already.
  bool Insert(std::string id, V value) {
    Shard& s = ShardOf(id);
    std::lock_guard lock(s.mu);
    return s.map.emplace(std::move(id), std::move(value)).second;
  }
  // fn(const std::string&, V&) on every entry, one shard at a time.
  template <typename Fn>
  void ForEach(Fn&& fn) {
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (auto& [id, v] : s.map) fn(id, v);
    }
  }
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (const auto& [id, v] : s.map) fn(id, v);
    }
  }
  size_t size() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.map.size();
    }
    return n;
  }
  void Clear() {
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      s.map.clear();
    }
  }

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    StringMap<V> map;
  };
  Shard& ShardOf(std::string_view id) { return shards_[StringHash{}(id) % kShards]; }
  const Shard& ShardOf(std::string_view id) const { return shards_[StringHash{}(id) % kShards]; }
  std::array<Shard, kShards> shards_;
};

}  // namespace tailor::sdk
