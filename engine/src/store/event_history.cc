#include "store/event_history.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace tailor {
namespace {

// (type, id, role) -> times, ordered like Block::keys.
using Groups =
    std::map<std::tuple<std::string, std::string, uint8_t>, std::vector<int64_t>, std::less<>>;

void AddTo(Groups* groups, std::string_view type, std::string_view id, uint8_t role, int64_t ts) {
  auto probe = std::make_tuple(type, id, role);
  auto it = groups->lower_bound(probe);
  if (it == groups->end() || std::get<0>(it->first) != type || std::get<1>(it->first) != id ||
      std::get<2>(it->first) != role)
    it = groups->emplace_hint(it, std::make_tuple(std::string(type), std::string(id), role),
                              std::vector<int64_t>());
  it->second.push_back(ts);
}

// The keys one event is held under: its type's total, and each distinct id.
template <typename Fn>
void ForEachRole(std::string_view offer_id, std::string_view item_id, Fn fn) {
  fn(std::string_view(), uint8_t{0});
  if (!offer_id.empty() && offer_id == item_id) {
    fn(offer_id, uint8_t{3});
    return;
  }
  if (!offer_id.empty()) fn(offer_id, uint8_t{1});
  if (!item_id.empty()) fn(item_id, uint8_t{2});
}

}  // namespace

struct EventHistory::Grouped {
  Groups groups;
};

EventHistory::Builder::Builder() : groups_(std::make_unique<Grouped>()) {}
EventHistory::Builder::~Builder() = default;

void EventHistory::Builder::Add(std::string_view type, std::string_view offer_id,
                                std::string_view item_id, int64_t ts_ms) {
  ForEachRole(offer_id, item_id, [&](std::string_view id, uint8_t role) {
    AddTo(&groups_->groups, type, id, role, ts_ms);
  });
}

EventHistory EventHistory::Builder::Build(int64_t horizon_ms) {
  EventHistory h;
  h.block_ = Flatten(groups_.get(), horizon_ms);
  h.horizon_ms_ = horizon_ms;
  groups_->groups.clear();
  return h;
}

std::shared_ptr<const EventHistory::Block> EventHistory::Flatten(Grouped* g, int64_t horizon_ms) {
  auto block = std::make_shared<Block>();
  block->keys.reserve(g->groups.size());
  for (auto& [k, times] : g->groups) {
    // The store loads newest first: reversing is the common sort.
    if (std::is_sorted(times.begin(), times.end(), std::greater<>()))
      std::reverse(times.begin(), times.end());
    else
      std::sort(times.begin(), times.end());
    auto first = std::lower_bound(times.begin(), times.end(), horizon_ms);
    if (first == times.end()) continue;
    const auto begin = static_cast<uint32_t>(block->times.size());
    block->times.insert(block->times.end(), first, times.end());
    block->keys.push_back(Key{std::get<0>(k), std::get<1>(k), std::get<2>(k), begin,
                              static_cast<uint32_t>(block->times.size())});
  }
  return block;
}

std::pair<const EventHistory::Key*, const EventHistory::Key*> EventHistory::Keys(
    std::string_view type, std::string_view id) const {
  if (!block_) return {nullptr, nullptr};
  const std::vector<Key>& keys = block_->keys;
  auto less = [](const Key& k, std::pair<std::string_view, std::string_view> p) {
    return std::tie(k.type, k.id) < std::tie(p.first, p.second);
  };
  auto greater = [](std::pair<std::string_view, std::string_view> p, const Key& k) {
    return std::tie(p.first, p.second) < std::tie(k.type, k.id);
  };
  const auto probe = std::make_pair(type, id);
  auto lo = std::lower_bound(keys.begin(), keys.end(), probe, less);
  auto hi = std::upper_bound(lo, keys.end(), probe, greater);
  return {keys.data() + (lo - keys.begin()), keys.data() + (hi - keys.begin())};
}

int64_t EventHistory::Count(std::string_view type, std::string_view id, int64_t since_ms) const {
  int64_t n = 0;
  auto [lo, hi] = Keys(type, id);
  for (const Key* k = lo; k != hi; ++k) {
    const int64_t* first = block_->times.data() + k->begin;
    const int64_t* last = block_->times.data() + k->end;
    n += last - std::lower_bound(first, last, since_ms);
  }
  for (const Pending& p : tail_)
    if (p.ts >= since_ms && p.type == type && (id.empty() || p.offer_id == id || p.item_id == id))
      ++n;
  return n;
}

std::optional<int64_t> EventHistory::Newest(std::string_view type, std::string_view id) const {
  std::optional<int64_t> newest;
  auto take = [&](int64_t ts) {
    if (!newest || ts > *newest) newest = ts;
  };
  auto [lo, hi] = Keys(type, id);
  for (const Key* k = lo; k != hi; ++k) take(block_->times[k->end - 1]);
  for (const Pending& p : tail_)
    if (p.type == type && (id.empty() || p.offer_id == id || p.item_id == id)) take(p.ts);
  return newest;
}

std::optional<int64_t> EventHistory::NewestItem(std::string_view type,
                                                std::string_view item_id) const {
  std::optional<int64_t> newest;
  if (item_id.empty()) return newest;
  auto take = [&](int64_t ts) {
    if (!newest || ts > *newest) newest = ts;
  };
  auto [lo, hi] = Keys(type, item_id);
  for (const Key* k = lo; k != hi; ++k)
    if (k->role & kItem) take(block_->times[k->end - 1]);
  for (const Pending& p : tail_)
    if (p.type == type && p.item_id == item_id) take(p.ts);
  return newest;
}

void EventHistory::ForEachItem(std::string_view type,
                               const std::function<bool(std::string_view, int64_t)>& fn) const {
  if (block_) {
    const std::vector<Key>& keys = block_->keys;
    auto lo = std::lower_bound(keys.begin(), keys.end(), type,
                               [](const Key& k, std::string_view t) { return k.type < t; });
    for (auto it = lo; it != keys.end() && it->type == type; ++it)
      if ((it->role & kItem) && !fn(it->id, block_->times[it->end - 1])) return;
  }
  for (const Pending& p : tail_)
    if (p.type == type && !p.item_id.empty() && !fn(p.item_id, p.ts)) return;
}

void EventHistory::Add(std::string_view type, std::string_view offer_id, std::string_view item_id,
                       int64_t ts_ms) {
  if (ts_ms < horizon_ms_) return;
  tail_.push_back(Pending{std::string(type), std::string(offer_id), std::string(item_id), ts_ms});
  if (tail_.size() >= kTailMax) Merge();
}

void EventHistory::Merge() {
  Grouped g;
  if (block_)
    for (const Key& k : block_->keys)
      g.groups.emplace(
          std::make_tuple(k.type, k.id, k.role),
          std::vector<int64_t>(block_->times.begin() + k.begin, block_->times.begin() + k.end));
  for (const Pending& p : tail_)
    ForEachRole(p.offer_id, p.item_id, [&](std::string_view id, uint8_t role) {
      AddTo(&g.groups, p.type, id, role, p.ts);
    });
  block_ = Flatten(&g, horizon_ms_);
  tail_.clear();
}

size_t EventHistory::times() const {
  size_t n = block_ ? block_->times.size() : 0;
  for (const Pending& p : tail_) {
    ForEachRole(p.offer_id, p.item_id, [&](std::string_view, uint8_t) { ++n; });
  }
  return n;
}

}  // namespace tailor
