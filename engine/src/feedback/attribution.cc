#include "feedback/attribution.h"

#include <algorithm>
#include <functional>

#include "store/store.h"

namespace tailor {
namespace {

uint8_t Bit(Outcome::Kind k) { return static_cast<uint8_t>(1u << static_cast<unsigned>(k)); }

// Whether an impression is what the event names: its offer, else its item (an
// offer's promoted item counts as the item).
bool MatchesOffer(const Impression& m, const Event& e) {
  return !e.offer_id.empty() && m.offer_id == e.offer_id;
}
bool MatchesItem(const Impression& m, const Event& e) {
  return !e.item_id.empty() && m.item_id == e.item_id;
}

// Index into a decision's impressions of the one e names: by offer, else by
// item, else the only one; -1 when none or ambiguous.
template <typename Get>
int PickInDecision(size_t n, const Get& get, const Event& e) {
  int only = -1, by_item = -1, count = 0;
  for (size_t i = 0; i < n; ++i) {
    const Impression& m = get(i);
    if (m.decision_id != e.decision_id) continue;
    ++count;
    only = static_cast<int>(i);
    if (MatchesOffer(m, e)) return static_cast<int>(i);
    if (by_item < 0 && MatchesItem(m, e)) by_item = static_cast<int>(i);
  }
  if (by_item >= 0) return by_item;
  if (e.offer_id.empty() && e.item_id.empty() && count == 1) return only;
  return -1;
}

}  // namespace

std::optional<Outcome::Kind> Attribution::KindOf(const std::string& t) {
  if (t == "click" || t == "offer_click") return Outcome::Kind::kClick;
  if (t == "convert" || t == "purchase") return Outcome::Kind::kConversion;
  if (t == "dismiss") return Outcome::Kind::kDismiss;
  return std::nullopt;
}

Attribution::Attribution(Store* store, Options options) : store_(store), options_(options) {
  if (options_.shards == 0) options_.shards = 1;
  if (options_.per_customer == 0) options_.per_customer = 1;
  per_shard_cap_ = std::max<size_t>(
      options_.per_customer, (options_.max_impressions + options_.shards - 1) / options_.shards);
  for (size_t i = 0; i < options_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
  SetWindows({});
}

void Attribution::SetWindows(const std::unordered_map<std::string, int64_t>& by_placement) {
  auto w = std::make_shared<Windows>();
  w->by_placement = by_placement;
  w->longest = options_.default_window_ms;
  for (const auto& [_, ms] : by_placement) w->longest = std::max(w->longest, ms);
  windows_.store(std::move(w));
}

int64_t Attribution::WindowOf(const std::string& placement) const {
  auto w = windows_.load();
  auto it = w->by_placement.find(placement);
  return it == w->by_placement.end() ? options_.default_window_ms : it->second;
}

int64_t Attribution::LongestWindow() const { return windows_.load()->longest; }

Attribution::Shard& Attribution::ShardFor(const std::string& id) {
  return *shards_[std::hash<std::string>{}(id) % shards_.size()];
}

void Attribution::AddLocked(Shard& s, Impression m, uint8_t joined) {
  auto [it, fresh] = s.customers.try_emplace(m.customer_id);
  Shard::Customer& c = it->second;
  if (fresh) {
    s.lru.push_front(m.customer_id);
    c.pos = s.lru.begin();
  } else {
    s.lru.splice(s.lru.begin(), s.lru, c.pos);
  }
  // Kept oldest first: a replay or a late explicit impression may be older
  // than the newest entry.
  auto at = std::upper_bound(c.entries.begin(), c.entries.end(), m.ts_ms,
                             [](int64_t ts, const Entry& x) { return ts < x.impression.ts_ms; });
  c.entries.insert(at, Entry{std::move(m), joined});
  ++s.impressions;
  if (c.entries.size() > options_.per_customer) {
    const Impression& oldest = c.entries.front().impression;
    if (oldest.ts_ms + WindowOf(oldest.placement) >= c.entries.back().impression.ts_ms)
      lossy_.store(true, std::memory_order_relaxed);
    c.entries.erase(c.entries.begin());
    --s.impressions;
    dropped_.fetch_add(1, std::memory_order_relaxed);
  }
  TrimLocked(s);
}

void Attribution::TrimLocked(Shard& s) {
  while (s.impressions > per_shard_cap_ && !s.lru.empty()) {
    const std::string victim = s.lru.back();
    auto it = s.customers.find(victim);
    const size_t n = it->second.entries.size();
    s.impressions -= n;
    dropped_.fetch_add(n, std::memory_order_relaxed);
    // Dropped without knowing whether they were still inside their window.
    lossy_.store(true, std::memory_order_relaxed);
    s.customers.erase(it);
    s.lru.pop_back();
  }
}

void Attribution::Shown(std::vector<Impression> impressions) {
  if (impressions.empty()) return;
  for (Impression& m : impressions) m.shown = true;
  if (store_) store_->LogImpressions(impressions);
  Shard& s = ShardFor(impressions.front().customer_id);
  std::lock_guard lock(s.mu);
  for (Impression& m : impressions) AddLocked(s, std::move(m), 0);
  shown_.fetch_add(impressions.size(), std::memory_order_relaxed);
}

void Attribution::Offered(std::vector<Impression> impressions) {
  if (impressions.empty()) return;
  for (Impression& m : impressions) m.shown = false;
  if (store_) store_->LogImpressions(impressions);
  Shard& s = ShardFor(impressions.front().customer_id);
  std::lock_guard lock(s.mu);
  for (Impression& m : impressions) AddLocked(s, std::move(m), 0);
  offered_.fetch_add(impressions.size(), std::memory_order_relaxed);
}

Attribution::Entry* Attribution::FindByDecisionLocked(Shard& s, const Event& e) {
  auto it = s.customers.find(e.customer_id);
  if (it == s.customers.end()) return nullptr;
  std::vector<Entry>& entries = it->second.entries;
  int i = PickInDecision(
      entries.size(), [&](size_t k) -> const Impression& { return entries[k].impression; }, e);
  return i < 0 ? nullptr : &entries[static_cast<size_t>(i)];
}

Attribution::Entry* Attribution::FindByWindowLocked(Shard& s, const Event& e) {
  auto it = s.customers.find(e.customer_id);
  if (it == s.customers.end()) return nullptr;
  std::vector<Entry>& entries = it->second.entries;
  Entry* best = nullptr;
  // Newest first; within one decision the best position wins.
  for (auto r = entries.rbegin(); r != entries.rend(); ++r) {
    const Impression& m = r->impression;
    if (best && m.ts_ms < best->impression.ts_ms) break;
    if (!m.shown || m.ts_ms > e.ts_ms + options_.clock_skew_ms) continue;
    if (e.ts_ms - m.ts_ms > WindowOf(m.placement)) continue;
    if (!MatchesOffer(m, e) && (!e.offer_id.empty() || !MatchesItem(m, e))) continue;
    if (!best || m.position < best->impression.position) best = &*r;
  }
  return best;
}

std::optional<Impression> Attribution::StoreByDecision(const Event& e) {
  if (!store_ || e.decision_id.empty()) return std::nullopt;
  store_lookups_.fetch_add(1, std::memory_order_relaxed);
  std::vector<Impression> all = store_->ImpressionsOf(e.decision_id);
  // Someone else's decision never takes this customer's response.
  int i = PickInDecision(
      all.size(), [&](size_t k) -> const Impression& { return all[k]; }, e);
  if (i < 0 || all[static_cast<size_t>(i)].customer_id != e.customer_id) return std::nullopt;
  return std::move(all[static_cast<size_t>(i)]);
}

std::optional<Impression> Attribution::StoreByWindow(const Event& e) {
  if (!store_) return std::nullopt;
  store_lookups_.fetch_add(1, std::memory_order_relaxed);
  const int64_t since = e.ts_ms - LongestWindow();
  std::optional<Impression> best;
  for (Impression& m : store_->RecentImpressions(e.customer_id, since, 4 * options_.per_customer)) {
    if (best && m.ts_ms < best->ts_ms) break;
    if (m.ts_ms > e.ts_ms + options_.clock_skew_ms || e.ts_ms - m.ts_ms > WindowOf(m.placement))
      continue;
    if (!MatchesOffer(m, e) && (!e.offer_id.empty() || !MatchesItem(m, e))) continue;
    if (!best || m.position < best->position) best = std::move(m);
  }
  return best;
}

bool Attribution::StoreJoined(const Impression& m, Outcome::Kind kind) {
  if (!store_) return false;
  for (const Outcome& o : store_->OutcomesOf(m.decision_id))
    if (o.impression.position == m.position && o.kind == kind) return true;
  return false;
}

std::vector<Impression> Attribution::Confirm(const Event& e) {
  std::vector<Impression> out;
  if (e.type != "impression" || e.decision_id.empty()) return out;
  Shard& s = ShardFor(e.customer_id);
  auto show = [&](Impression& m) {
    m.shown = true;
    m.ts_ms = e.ts_ms;
    if (store_) store_->MarkShown(m.decision_id, m.position, m.ts_ms);
    confirmed_.fetch_add(1, std::memory_order_relaxed);
    out.push_back(m);
  };
  const bool whole = e.offer_id.empty() && e.item_id.empty();  // the whole decision was shown
  {
    std::lock_guard lock(s.mu);
    auto it = s.customers.find(e.customer_id);
    if (it != s.customers.end()) {
      bool found = false;
      if (whole) {
        for (Entry& x : it->second.entries) {
          if (x.impression.decision_id != e.decision_id) continue;
          found = true;
          if (!x.impression.shown) show(x.impression);
        }
      } else if (Entry* x = FindByDecisionLocked(s, e)) {
        found = true;
        if (!x->impression.shown) show(x->impression);
      }
      if (found) {
        // Re-sorted: a shown impression's time is the render's.
        std::stable_sort(
            it->second.entries.begin(), it->second.entries.end(),
            [](const Entry& a, const Entry& b) { return a.impression.ts_ms < b.impression.ts_ms; });
        return out;
      }
    }
  }
  // Not in memory (dropped, or made before a restart): the store has it.
  if (!store_) return out;
  store_lookups_.fetch_add(1, std::memory_order_relaxed);
  for (Impression& m : store_->ImpressionsOf(e.decision_id)) {
    if (m.customer_id != e.customer_id || m.shown) continue;
    if (!whole && !MatchesOffer(m, e) && (!e.offer_id.empty() || !MatchesItem(m, e))) continue;
    show(m);
    std::lock_guard lock(s.mu);
    AddLocked(s, m, 0);
    if (!whole) break;
  }
  return out;
}

std::optional<Outcome> Attribution::Join(const Event& e) {
  std::optional<Outcome::Kind> kind = KindOf(e.type);
  if (!kind || e.customer_id.empty()) return std::nullopt;
  Outcome o;
  o.kind = *kind;
  o.event_type = e.type;
  o.value = *kind == Outcome::Kind::kConversion ? e.value : 0;
  o.ts_ms = e.ts_ms;
  o.event_seq = e.seq;
  o.by_decision_id = !e.decision_id.empty();
  bool found = false;
  Shard& s = ShardFor(e.customer_id);
  {
    std::lock_guard lock(s.mu);
    Entry* x = o.by_decision_id ? FindByDecisionLocked(s, e) : FindByWindowLocked(s, e);
    if (x) {
      found = true;
      // A response naming a decision proves the render an explicit placement
      // may not have reported.
      if (!x->impression.shown) {
        x->impression.shown = true;
        if (store_) store_->MarkShown(x->impression.decision_id, x->impression.position, e.ts_ms);
        confirmed_.fetch_add(1, std::memory_order_relaxed);
      }
      o.first_of_kind = !(x->joined & Bit(*kind));
      x->joined |= Bit(*kind);
      o.impression = x->impression;
      if (auto c = s.customers.find(e.customer_id); c != s.customers.end())
        s.lru.splice(s.lru.begin(), s.lru, c->second.pos);
    }
  }
  if (!found) {
    std::optional<Impression> m;
    if (o.by_decision_id)
      m = StoreByDecision(e);
    else if (lossy_.load(std::memory_order_relaxed))
      m = StoreByWindow(e);
    if (!m) {
      unjoined_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    o.first_of_kind = !StoreJoined(*m, *kind);
    if (!m->shown && store_) store_->MarkShown(m->decision_id, m->position, e.ts_ms);
    m->shown = true;
    o.impression = *m;
    std::lock_guard lock(s.mu);
    AddLocked(s, std::move(*m), Bit(*kind));
  }
  (o.by_decision_id ? by_decision_ : by_window_).fetch_add(1, std::memory_order_relaxed);
  if (store_) store_->LogOutcome(o);
  return o;
}

int64_t Attribution::Rebuild(int64_t now_ms) {
  if (!store_) return 0;
  const int64_t since = now_ms - LongestWindow();
  int64_t n = store_->ForEachImpression(since, [&](const Impression& m) {
    Shard& s = ShardFor(m.customer_id);
    std::lock_guard lock(s.mu);
    AddLocked(s, m, 0);
    return true;
  });
  if (n < 0) return -1;
  // Outcomes already joined mark their impressions, so a repeat after the
  // restart is still known as one.
  store_->ForEachOutcome(since, [&](const Outcome& o) {
    Shard& s = ShardFor(o.impression.customer_id);
    std::lock_guard lock(s.mu);
    auto it = s.customers.find(o.impression.customer_id);
    if (it == s.customers.end()) return true;
    for (Entry& x : it->second.entries)
      if (x.impression.decision_id == o.impression.decision_id &&
          x.impression.position == o.impression.position)
        x.joined |= Bit(o.kind);
    return true;
  });
  return n;
}

Attribution::Counts Attribution::counts() const {
  Counts c;
  c.shown = shown_.load();
  c.offered = offered_.load();
  c.confirmed = confirmed_.load();
  c.joined_by_decision = by_decision_.load();
  c.joined_by_window = by_window_.load();
  c.unjoined = unjoined_.load();
  c.dropped = dropped_.load();
  c.store_lookups = store_lookups_.load();
  return c;
}

void Attribution::Forget(const std::string& customer_id) {
  Shard& s = ShardFor(customer_id);
  std::lock_guard lock(s.mu);
  auto it = s.customers.find(customer_id);
  if (it == s.customers.end()) return;
  s.impressions -= it->second.entries.size();
  s.lru.erase(it->second.pos);
  s.customers.erase(it);
}

size_t Attribution::size() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mu);
    n += s->impressions;
  }
  return n;
}

}  // namespace tailor
