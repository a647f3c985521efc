#include "model/event_history.h"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <unordered_map>

namespace tailor {
namespace {

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

// (type, id, role) -> times, hashed: a load adds up to three times per event.
struct EventHistory::Grouped {
  std::unordered_map<std::string, std::vector<int64_t>> slots;
  std::string buf;  // the key being looked up, reused

  // Key: the type's length (4 bytes), the type, the id, the role.
  std::vector<int64_t>& Slot(std::string_view type, std::string_view id, uint8_t role) {
    const auto n = static_cast<uint32_t>(type.size());
    buf.assign(reinterpret_cast<const char*>(&n), sizeof n);
    buf.append(type).append(id).push_back(static_cast<char>(role));
    auto it = slots.find(buf);
    if (it == slots.end()) it = slots.emplace(buf, std::vector<int64_t>()).first;
    return it->second;
  }
};

EventHistory::Builder::Builder() : groups_(std::make_unique<Grouped>()) {}
EventHistory::Builder::~Builder() = default;

void EventHistory::Builder::Add(std::string_view type, std::string_view offer_id,
                                std::string_view item_id, int64_t ts_ms) {
  ForEachRole(offer_id, item_id, [&](std::string_view id, uint8_t role) {
    groups_->Slot(type, id, role).push_back(ts_ms);
  });
}

EventHistory EventHistory::Builder::Build(int64_t horizon_ms) {
  EventHistory h;
  h.block_ = Flatten(groups_.get(), horizon_ms);
  h.horizon_ms_ = horizon_ms;
  groups_->slots.clear();
  return h;
}

std::shared_ptr<const EventHistory::Block> EventHistory::Flatten(Grouped* g, int64_t horizon_ms) {
  struct Entry {
    std::string_view type, id;
    uint8_t role;
    std::vector<int64_t>* times;
  };
  std::vector<Entry> entries;
  entries.reserve(g->slots.size());
  for (auto& [k, times] : g->slots) {
    uint32_t n = 0;
    std::memcpy(&n, k.data(), sizeof n);
    const std::string_view key(k);
    entries.push_back(Entry{key.substr(sizeof n, n),
                            key.substr(sizeof n + n, key.size() - sizeof n - n - 1),
                            static_cast<uint8_t>(key.back()), &times});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.type, a.id, a.role) < std::tie(b.type, b.id, b.role);
  });
  auto block = std::make_shared<Block>();
  block->keys.reserve(entries.size());
  for (const Entry& e : entries) {
    std::vector<int64_t>& times = *e.times;
    // The store loads newest first: reversing is the common sort.
    if (std::is_sorted(times.begin(), times.end(), std::greater<>()))
      std::reverse(times.begin(), times.end());
    else
      std::sort(times.begin(), times.end());
    auto first = std::lower_bound(times.begin(), times.end(), horizon_ms);
    if (first == times.end()) continue;
    const auto begin = static_cast<uint32_t>(block->times.size());
    block->times.insert(block->times.end(), first, times.end());
    block->keys.push_back(Key{std::string(e.type), std::string(e.id), e.role, begin,
                              static_cast<uint32_t>(block->times.size())});
  }
  return block;
}

std::pair<const EventHistory::Key*, const EventHistory::Key*> EventHistory::Keys(
    std::string_view type, std::string_view id) const {
  if (!block_) return {nullptr, nullptr};
  const std::vector<Key>& keys = block_->keys;
  using View = std::pair<std::string_view, std::string_view>;
  auto less = [](const Key& k, View p) { return View(k.type, k.id) < p; };
  auto greater = [](View p, const Key& k) { return p < View(k.type, k.id); };
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

void EventHistory::Times(std::string_view type, std::string_view id, int64_t since_ms,
                         int64_t until_ms, std::vector<int64_t>* out) const {
  out->clear();
  auto [lo, hi] = Keys(type, id);
  for (const Key* k = lo; k != hi; ++k) {
    const int64_t* first = block_->times.data() + k->begin;
    const int64_t* last = block_->times.data() + k->end;
    out->insert(out->end(), std::lower_bound(first, last, since_ms),
                std::upper_bound(first, last, until_ms));
  }
  for (const Pending& p : tail_)
    if (p.ts >= since_ms && p.ts <= until_ms && p.type == type &&
        (id.empty() || p.offer_id == id || p.item_id == id))
      out->push_back(p.ts);
  // Roles (offer, item) and the tail each hold their own ascending run.
  if (hi - lo > 1 || !tail_.empty()) std::sort(out->begin(), out->end());
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
      g.Slot(k.type, k.id, k.role)
          .assign(block_->times.begin() + k.begin, block_->times.begin() + k.end);
  for (const Pending& p : tail_)
    ForEachRole(p.offer_id, p.item_id, [&](std::string_view id, uint8_t role) {
      g.Slot(p.type, id, role).push_back(p.ts);
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
