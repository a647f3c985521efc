// content: content-based recommendations from catalog features.
//
// Every catalog item becomes a sparse, L2-normalised feature vector over five
// namespaces: category=, brand=, a price band (quantiles within the item's
// category, or global), attributes (key=value) and TF-IDF words and word
// pairs of title and description. The vectors sit in one CSR block (offsets, feature indices,
// weights), rows sorted by feature. A customer's taste is the time-decayed,
// event-weighted sum of the vectors of the items they interacted with, kept
// per customer in feature space and updated by every observed event; at score
// time the request's newer recent events are folded in, so one event is
// enough. A candidate scores the cosine between taste and item: items nobody
// touched score as soon as the catalog describes them. See README.md.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tailor/plugin_io.hpp"
#include "tailor/plugin_sdk.hpp"
#include "tailor/plugin_util.hpp"

namespace {

using tailor::sdk::Host;
using tailor::sdk::InvalidConfig;
using tailor::sdk::NotFound;
using tailor::sdk::Reasons;
using tailor::sdk::Request;
using tailor::sdk::StringMap;

constexpr double kMsPerDay = 86400000.0;
// Taste weights are forward-decayed (see Model); once an event is this many
// half-lives past the reference time, every taste is rescaled once.
constexpr double kRebaseHalfLives = 64;
// Score cannot rebase (it is const): it clamps the exponent instead, which
// keeps every float finite.
constexpr double kMaxScoreExponent = 100;
constexpr std::string_view kMagic = "tailor-content-model\n";
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kEndianMark = 0x01020304;
constexpr size_t kMaxReasonFeatures = 8;
constexpr size_t kMaxAttributeValue = 64;
// max_df never drops a word that is in this many items or fewer, so that a
// small catalog keeps its words.
constexpr double kMinMaxDf = 3;

using Weights = std::map<std::string, double, std::less<>>;

// Feature namespaces. The value is stored in model files: append only.
enum class Kind : uint8_t { kCategory = 0, kBrand = 1, kPrice = 2, kAttribute = 3, kWord = 4 };
constexpr uint8_t kKinds = 5;

// ---------------------------------------------------------------------------
// Configuration

struct Config {
  // Event type -> weight in the taste; types not listed count 0.
  Weights weights = {{"view", 1}, {"click", 2}, {"add_to_cart", 4}, {"purchase", 8}};
  double half_life_days = 60;  // 0: no time decay
  // Weight of each namespace in an item's vector (each group is unit length
  // before its weight, so a long title does not drown the category).
  double w_category = 1, w_brand = 1, w_price = 0.25, w_attributes = 0.5, w_text = 1;
  int price_bands = 5;
  int min_category_items = 20;  // fewer priced items: the category uses global bands
  bool bigrams = true;          // adjacent word pairs ("hanging heart") count as words too
  int min_df = 1;               // words in fewer items are left out
  // Words in a larger share of items (and in more than kMinMaxDf items)
  // carry no taste.
  double max_df = 0.05;
  int max_taste_features = 256;
  // Not part of the model:
  int reason_features = 3;
  // Every candidate's score when there is no taste: no opinion by default,
  // so the blend is left to the other plugins.
  double cold_score = TAILOR_SCORE_ABSTAIN;

  // Identifies what a saved model was built with; Load refuses another.
  std::string Fingerprint() const {
    nlohmann::json j = {{"weights", weights},
                        {"half_life_days", half_life_days},
                        {"features",
                         {{"category", w_category},
                          {"brand", w_brand},
                          {"price", w_price},
                          {"attributes", w_attributes},
                          {"text", w_text}}},
                        {"price_bands", price_bands},
                        {"min_category_items", min_category_items},
                        {"bigrams", bigrams},
                        {"min_df", min_df},
                        {"max_df", max_df},
                        {"max_taste_features", max_taste_features}};
    return j.dump();
  }
};

Config ParseConfig(std::string_view text) {
  using nlohmann::json;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw InvalidConfig("content config: not valid JSON");
  if (!j.is_object()) throw InvalidConfig("content config: expected a JSON object");
  Config cfg;
  std::vector<std::string> errors;
  auto number = [&](const std::string& key, const json& v, double lo, double hi, double& out) {
    if (!v.is_number() || !(v.get<double>() >= lo) || !(v.get<double>() <= hi)) {
      char range[64];
      std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
      errors.push_back(key + ": expected a number in " + range + ", got " + v.dump());
      return;
    }
    out = v.get<double>();
  };
  auto integer = [&](const std::string& key, const json& v, int lo, int hi, int& out) {
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      errors.push_back(key + ": expected an integer in [" + std::to_string(lo) + ", " +
                       std::to_string(hi) + "], got " + v.dump());
      return;
    }
    out = static_cast<int>(v.get<int64_t>());
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "weights") {
      if (!v.is_object()) {
        errors.push_back("weights: expected an object of event type -> weight, got " + v.dump());
        continue;
      }
      for (const auto& [type, w] : v.items()) {
        double d = 0;
        const size_t before = errors.size();
        number("weights." + type, w, 0, 1e6, d);
        if (errors.size() == before) cfg.weights[type] = d;  // merges over the defaults
      }
    } else if (key == "half_life_days") {
      number(key, v, 0, 36500, cfg.half_life_days);
    } else if (key == "features") {
      if (!v.is_object()) {
        errors.push_back("features: expected an object of group -> weight, got " + v.dump());
        continue;
      }
      for (const auto& [g, w] : v.items()) {
        double* slot = g == "category"     ? &cfg.w_category
                       : g == "brand"      ? &cfg.w_brand
                       : g == "price"      ? &cfg.w_price
                       : g == "attributes" ? &cfg.w_attributes
                       : g == "text"       ? &cfg.w_text
                                           : nullptr;
        if (slot == nullptr) {
          errors.push_back("features." + g +
                           ": unknown group (known: category, brand, price, attributes, text)");
        } else {
          number("features." + g, w, 0, 100, *slot);
        }
      }
    } else if (key == "price_bands") {
      integer(key, v, 1, 100, cfg.price_bands);
    } else if (key == "min_category_items") {
      integer(key, v, 1, 1000000, cfg.min_category_items);
    } else if (key == "bigrams") {
      if (v.is_boolean()) {
        cfg.bigrams = v.get<bool>();
      } else {
        errors.push_back("bigrams: expected true or false, got " + v.dump());
      }
    } else if (key == "min_df") {
      integer(key, v, 1, 1000000, cfg.min_df);
    } else if (key == "max_df") {
      number(key, v, 1e-6, 1, cfg.max_df);
    } else if (key == "max_taste_features") {
      integer(key, v, 1, 1000000, cfg.max_taste_features);
    } else if (key == "reason_features") {
      integer(key, v, 1, static_cast<int>(kMaxReasonFeatures), cfg.reason_features);
    } else if (key == "cold_score") {
      if (v.is_string() && v.get<std::string>() == "abstain")
        cfg.cold_score = TAILOR_SCORE_ABSTAIN;
      else
        number(key, v, 0, 1, cfg.cold_score);
    } else {
      errors.push_back(
          "unknown key '" + key +
          "' (known: weights, half_life_days, features, price_bands, "
          "min_category_items, bigrams, min_df, max_df, max_taste_features, reason_features, "
          "cold_score)");
    }
  }
  tailor::sdk::ThrowIfConfigErrors("content", errors);
  return cfg;
}

// ---------------------------------------------------------------------------
// Text

bool IsStopWord(std::string_view w) {
  static const std::set<std::string_view> kStop = {
      "a",    "an",   "and",  "are",  "as",   "at",  "be",  "by",   "for",
      "from", "has",  "in",   "is",   "it",   "its", "new", "of",   "on",
      "or",   "our",  "that", "the",  "this", "to",  "was", "will", "with",
      "you",  "your", "set",  "pack", "size", "pcs", "pc",  "item", "assorted"};
  return kStop.count(w) > 0;
}

// Crude English plural folding, enough for product titles: hearts -> heart,
// boxes -> box, berries -> berry; glass, cactus, iris and christmas stay.
std::string Singular(std::string w) {
  const size_t n = w.size();
  auto ends = [&](std::string_view s) {
    return n >= s.size() && std::string_view(w).substr(n - s.size()) == s;
  };
  if (n > 4 && ends("ies")) {
    w.replace(n - 3, 3, "y");
  } else if (n > 4 && (ends("xes") || ends("ches") || ends("shes") || ends("sses"))) {
    w.resize(n - 2);
  } else if (n > 3 && w[n - 1] == 's' && !ends("ss") && !ends("us") && !ends("is") && !ends("as")) {
    w.resize(n - 1);
  }
  return w;
}

// Lowercased ASCII letters and digits (bytes >= 0x80 kept as they are, so
// UTF-8 words survive whole); no stop words, no pure numbers, no single
// characters.
std::vector<std::string> Tokens(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    const bool digits =
        std::all_of(cur.begin(), cur.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (cur.size() >= 2 && !digits) {
      std::string w = Singular(std::move(cur));
      if (!IsStopWord(w)) out.push_back(std::move(w));
    }
    cur.clear();
  };
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 'A' && c <= 'Z') {
      cur.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80) {
      cur.push_back(ch);
    } else {
      flush();
    }
  }
  flush();
  return out;
}

// ---------------------------------------------------------------------------
// Item id -> row: a flat open-addressing table over one contiguous block of
// id bytes, so a lookup is one hash, one probe run of 8-byte slots and one
// memcmp, with no node chasing.

uint64_t HashId(std::string_view s) {
  // 64-bit FNV-1a over 8-byte words, then a murmur finaliser.
  uint64_t h = 0xcbf29ce484222325ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < s.size(); ++i) h = (h ^ static_cast<unsigned char>(s[i])) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

class IdIndex {
 public:
  // ids must be unique; returns false (and leaves the index empty) otherwise.
  bool Build(const std::vector<std::string>& ids) {
    blob_.clear();
    off_.assign(1, 0);
    for (const std::string& id : ids) {
      blob_ += id;
      off_.push_back(static_cast<uint64_t>(blob_.size()));
    }
    size_t cap = 16;
    while (cap < ids.size() * 2) cap *= 2;
    slots_.assign(cap, Slot{0, 0});
    mask_ = cap - 1;
    for (size_t i = 0; i < ids.size(); ++i) {
      const uint64_t h = HashId(ids[i]);
      size_t s = h & mask_;
      for (; slots_[s].row_plus_1 != 0; s = (s + 1) & mask_) {
        if (slots_[s].tag == Tag(h) && id(slots_[s].row_plus_1 - 1) == ids[i]) {
          *this = IdIndex();
          return false;
        }
      }
      slots_[s] = Slot{static_cast<uint32_t>(i + 1), Tag(h)};
    }
    return true;
  }

  // The row of id, or -1.
  int64_t Find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t h = HashId(key);
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      const Slot slot = slots_[s];
      if (slot.row_plus_1 == 0) return -1;
      if (slot.tag == Tag(h) && id(slot.row_plus_1 - 1) == key) return slot.row_plus_1 - 1;
    }
  }

  size_t size() const { return off_.empty() ? 0 : off_.size() - 1; }
  std::string_view id(size_t i) const {
    return std::string_view(blob_).substr(off_[i], off_[i + 1] - off_[i]);
  }
  size_t bytes() const {
    return blob_.capacity() + off_.capacity() * sizeof(uint64_t) + slots_.capacity() * sizeof(Slot);
  }

 private:
  struct Slot {
    uint32_t row_plus_1;  // 0 = empty
    uint32_t tag;         // high bits of the hash, to skip most id compares
  };
  static uint32_t Tag(uint64_t h) { return static_cast<uint32_t>(h >> 32); }

  std::string blob_;           // every id, back to back
  std::vector<uint64_t> off_;  // id i is blob_[off_[i], off_[i + 1])
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// ---------------------------------------------------------------------------
// The model

struct TasteEntry {
  uint32_t f;  // feature index
  float w;     // forward-decayed weight, > 0
};

struct Taste {
  std::vector<TasteEntry> e;       // sorted by f, at most max_taste_features
  int64_t last_ts_ms = INT64_MIN;  // newest event folded in
};

// Item vectors in CSR form: row i is col/val[row_start[i], row_start[i + 1]),
// columns ascending, L2 norm 1 (or empty). Tastes are forward-decayed: an
// event at t adds w * 2^((t - t_ref) / half_life); the common factor that
// decays them all as time passes cancels in the cosine, so nothing needs
// touching as time passes and one event touches one customer.
struct Model {
  IdIndex items;
  std::vector<uint32_t> row_start = {0};
  std::vector<uint32_t> col;
  std::vector<float> val;
  std::vector<std::string> feature_names;  // display text, e.g. "brand=Apple", "heart"
  std::vector<uint8_t> feature_kind;       // Kind
  StringMap<uint32_t> category_feature;    // category -> its feature, for category candidates
  // Observe runs beside Score (kConcurrentObserve): a taste changes under its
  // shard's lock, and the time reference under ref_mu, held shared by Score
  // and Observe and exclusively only to move it (every 64 half-lives).
  mutable std::shared_mutex ref_mu;
  bool has_ref = false;
  int64_t t_ref_ms = 0;
  tailor::sdk::ShardedMap<Taste> tastes;

  size_t n_items() const { return row_start.size() - 1; }
  size_t n_features() const { return feature_names.size(); }

  size_t Bytes() const {
    size_t b = items.bytes() + row_start.capacity() * 4 + col.capacity() * 4 + val.capacity() * 4 +
               feature_kind.capacity();
    for (const auto& f : feature_names)
      b += sizeof(std::string) + (f.size() > 15 ? f.capacity() : 0);
    b += category_feature.size() * 64;
    tastes.ForEach([&](const std::string& id, const Taste& t) {
      // Node, key, vector header and entries.
      b += 64 + (id.size() > 15 ? id.capacity() : 0) + t.e.capacity() * sizeof(TasteEntry);
    });
    return b;
  }
};

// Keeps the cap strongest entries (ties: the lower feature), sorted by f.
// Runs on every event of a customer whose taste is full: the cut-off weight
// comes from a selection over a copy of the weights, and one ordered pass
// keeps the entries above it, so the kept ones need no sort.
void Prune(std::vector<TasteEntry>& e, size_t cap) {
  if (e.size() <= cap) return;
  if (cap == 0) {
    e.clear();
    return;
  }
  thread_local std::vector<float> w;
  w.resize(e.size());
  for (size_t i = 0; i < e.size(); ++i) w[i] = e[i].w;
  std::nth_element(w.begin(), w.begin() + static_cast<ptrdiff_t>(cap - 1), w.end(),
                   std::greater<float>());
  const float cut = w[cap - 1];
  size_t above = 0;
  for (const TasteEntry& x : e) above += x.w > cut;
  size_t ties = cap - above;  // entries at the cut, lowest features first
  size_t out = 0;
  for (const TasteEntry& x : e)
    if (x.w > cut || (x.w == cut && ties > 0 && ties--)) e[out++] = x;
  e.resize(out);
}

// ---------------------------------------------------------------------------
// Binary model files (tailor/plugin_io.hpp: native byte order; an endianness
// mark in the header refuses others).
using Writer = tailor::sdk::ModelWriter;
using Reader = tailor::sdk::ModelReader;

// Appends to a fixed buffer, truncating; for reasons without allocation.
class Line {
 public:
  void Add(std::string_view s) {
    const size_t k = std::min(s.size(), sizeof buf_ - len_);
    std::memcpy(buf_ + len_, s.data(), k);
    len_ += k;
  }
  std::string_view view() const { return {buf_, len_}; }

 private:
  char buf_[256];
  size_t len_ = 0;
};

// Score's working memory, reused across calls so that a call allocates
// nothing: a dense taste over the features (all zeros between calls), the
// features it touched, the candidates' rows. Score may run on several
// threads at once; each takes its own.
struct Scratch {
  std::vector<float> taste;
  std::vector<uint32_t> touched;
  std::vector<int64_t> rows;
};

class ScratchPool {
 public:
  ScratchPool() { free_.reserve(kMaxPooled); }  // so that giving back never allocates
  class Lease {
   public:
    Lease(ScratchPool& pool, size_t n_features) : pool_(pool) {
      {
        std::lock_guard lock(pool_.mu_);
        if (!pool_.free_.empty()) {
          s_ = std::move(pool_.free_.back());
          pool_.free_.pop_back();
        }
      }
      if (!s_) s_ = std::make_unique<Scratch>();
      if (s_->taste.size() != n_features) s_->taste.assign(n_features, 0.0f);
    }
    ~Lease() {
      for (uint32_t f : s_->touched) s_->taste[f] = 0;
      s_->touched.clear();
      std::lock_guard lock(pool_.mu_);
      if (pool_.free_.size() < kMaxPooled) pool_.free_.push_back(std::move(s_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Scratch* operator->() const { return s_.get(); }

   private:
    ScratchPool& pool_;
    std::unique_ptr<Scratch> s_;
  };

 private:
  static constexpr size_t kMaxPooled = 64;  // more concurrent calls allocate
  std::mutex mu_;
  std::vector<std::unique_ptr<Scratch>> free_;
};

// ---------------------------------------------------------------------------
// The plugin

class Content {
 public:
  // Observe changes one customer's taste under its shard's lock (Model).
  static constexpr bool kConcurrentObserve = true;

  static std::unique_ptr<Content> Create(std::string_view config_json, const Host& host) {
    return std::unique_ptr<Content>(new Content(ParseConfig(config_json), host));
  }

  void Score(const Request& req, std::span<const tailor_candidate> candidates,
             std::span<float> scores, Reasons& reasons) const {
    const auto cold = static_cast<float>(cfg_.cold_score);
    std::fill(scores.begin(), scores.end(), cold);
    if (candidates.empty()) return;
    const Model& m = *model_;
    if (m.n_features() == 0) return;

    // The taste, dense over the features for O(1) gathers, normalised to 1,
    // in pooled memory that is all zeros again when the lease ends.
    ScratchPool::Lease scratch(pool_, m.n_features());
    std::vector<float>& taste = scratch->taste;
    std::vector<uint32_t>& touched = scratch->touched;
    auto add = [&](uint32_t f, float w) {
      if (!(w > 0)) return;
      if (taste[f] == 0) touched.push_back(f);
      taste[f] += w;
    };
    auto add_row = [&](size_t i, float w) {
      for (uint32_t p = m.row_start[i]; p < m.row_start[i + 1]; ++p) add(m.col[p], w * m.val[p]);
    };
    const std::optional<size_t> anchor = Anchor(m, req);
    if (anchor) {
      add_row(*anchor, 1.0f);  // "similar to this item"
    } else {
      int64_t since = INT64_MIN, t_ref;
      {
        std::shared_lock ref(m.ref_mu);  // the taste and t_ref it is relative to
        if (auto id = req.customer_id()) {
          m.tastes.With(*id, [&](const Taste& t) {
            for (const TasteEntry& e : t.e) add(e.f, e.w);
            since = t.last_ts_ms;
          });
        }
        t_ref = m.has_ref ? m.t_ref_ms : req.now_ms();
      }
      // Recent events the model has not folded in yet count at once.
      for (const tailor_event_view& ev : req.recent()) {
        if (ev.ts_ms <= since || ev.item_id == nullptr) continue;
        const double w = WeightOf(ev.type);
        if (!(w > 0)) continue;
        const int64_t i = m.items.Find(ev.item_id);
        if (i < 0) continue;
        double x = hl_ms_ > 0 ? static_cast<double>(ev.ts_ms - t_ref) / hl_ms_ : 0;
        x = std::clamp(x, -kMaxScoreExponent, kMaxScoreExponent);
        add_row(static_cast<size_t>(i), static_cast<float>(w * std::exp2(x)));
      }
    }
    double norm2 = 0;
    for (uint32_t f : touched) norm2 += static_cast<double>(taste[f]) * taste[f];
    if (!(norm2 > 0) || !std::isfinite(norm2)) return;  // no taste: cold_score for all
    const auto inv = static_cast<float>(1 / std::sqrt(norm2));
    for (uint32_t f : touched) taste[f] *= inv;

    // Pass 1 resolves every candidate to its row: independent hash probes
    // that the CPU overlaps. Pass 2 gathers the taste at each row's features
    // from the contiguous CSR block, prefetching a few rows ahead.
    std::vector<int64_t>& rows = scratch->rows;
    rows.resize(candidates.size());
    for (size_t c = 0; c < candidates.size(); ++c)
      rows[c] = candidates[c].item_id != nullptr ? m.items.Find(candidates[c].item_id) : -1;
    const float* t = taste.data();
    const uint32_t* rs = m.row_start.data();
    const uint32_t* col = m.col.data();
    const float* val = m.val.data();
    constexpr size_t kAhead = 4;
    for (size_t c = 0; c < candidates.size(); ++c) {
      if (c + kAhead < rows.size() && rows[c + kAhead] >= 0) {
        __builtin_prefetch(col + rs[rows[c + kAhead]]);
        __builtin_prefetch(val + rs[rows[c + kAhead]]);
      }
      const int64_t row = rows[c];
      float s = 0;
      uint32_t cat_f = UINT32_MAX;
      if (row >= 0) {
        if (anchor && static_cast<size_t>(row) == *anchor) {
          scores[c] = 0;  // not similar to itself
          continue;
        }
        for (uint32_t p = rs[row]; p < rs[row + 1]; ++p) s += t[col[p]] * val[p];
      } else if (candidates[c].category != nullptr) {
        // An offer for a category, or an item the catalog does not describe:
        // cosine with the unit vector of its category.
        auto it = m.category_feature.find(std::string_view(candidates[c].category));
        if (it != m.category_feature.end()) {
          cat_f = it->second;
          s = t[cat_f];
        }
      }
      s = std::clamp(s, 0.0f, 1.0f);
      scores[c] = s;
      if (s > 0 && reasons.enabled()) {
        Line line;
        if (row >= 0) {
          Explain(m, t, static_cast<size_t>(row), line);
        } else {
          line.Add("matches: ");
          line.Add(m.feature_names[cat_f]);
        }
        reasons.Set(c, line.view());
      }
    }
  }

  void Observe(const tailor_event_view& ev) {
    if (ev.item_id == nullptr || ev.customer_id == nullptr) return;
    const double w = WeightOf(ev.type);
    if (!(w > 0)) return;
    Model& m = *model_;
    const int64_t i = m.items.Find(ev.item_id);
    if (i < 0) return;  // not in the catalog of the last Train
    std::shared_lock ref(m.ref_mu);
    const auto x = static_cast<float>(w * ObserveFactor(m, ev.ts_ms, ref));
    if (!(x > 0) || !std::isfinite(x)) return;
    m.tastes.Update(ev.customer_id, [&](Taste& taste) { Fold(m, i, x, ev.ts_ms, taste); });
  }

  // Merges item i's row, weighted x, into the taste (both sorted).
  void Fold(const Model& m, int64_t i, float x, int64_t ts_ms, Taste& taste) const {
    // Merge the item's row (sorted) into the taste (sorted).
    std::vector<TasteEntry> merged;
    merged.reserve(taste.e.size() + (m.row_start[i + 1] - m.row_start[i]));
    size_t a = 0;
    uint32_t p = m.row_start[i];
    const uint32_t end = m.row_start[i + 1];
    while (a < taste.e.size() || p < end) {
      if (p == end || (a < taste.e.size() && taste.e[a].f < m.col[p])) {
        merged.push_back(taste.e[a++]);
      } else if (a == taste.e.size() || m.col[p] < taste.e[a].f) {
        merged.push_back({m.col[p], x * m.val[p]});
        ++p;
      } else {
        merged.push_back({m.col[p], taste.e[a++].w + x * m.val[p]});
        ++p;
      }
    }
    Prune(merged, static_cast<size_t>(cfg_.max_taste_features));
    taste.e = std::move(merged);
    taste.last_ts_ms = std::max(taste.last_ts_ms, ts_ms);
  }

  // 2^((ts - t_ref) / half_life) for an event observed at ts, with ref held
  // shared on m.ref_mu. The first event, or one too far past t_ref, moves
  // t_ref first: exclusively, rescaling every taste.
  double ObserveFactor(Model& m, int64_t ts_ms, std::shared_lock<std::shared_mutex>& ref) const {
    if (hl_ms_ <= 0) return 1;
    if (!m.has_ref || static_cast<double>(ts_ms - m.t_ref_ms) / hl_ms_ > kRebaseHalfLives) {
      ref.unlock();
      {
        std::unique_lock all(m.ref_mu);
        Advance(m, ts_ms, [&](float scale) {
          m.tastes.ForEach([&](const std::string&, Taste& t) {
            for (TasteEntry& e : t.e) e.w *= scale;
          });
        });
      }
      ref.lock();
    }
    return std::exp2(static_cast<double>(ts_ms - m.t_ref_ms) / hl_ms_);
  }

  // Rebuilds item features from the catalog and tastes from the stored
  // events into a fresh model; the old one keeps serving on failure.
  // Erasure: the customer's taste goes.
  void Forget(std::string_view customer_id) {
    if (model_) model_->tastes.Erase(customer_id);
  }

  void Train() {
    auto m = std::make_unique<Model>();
    BuildItems(*m);
    const int64_t events = BuildTastes(*m);
    host_.Log(TAILOR_LOG_INFO, "described " + std::to_string(m->n_items()) + " items with " +
                                   std::to_string(m->n_features()) + " features (" +
                                   std::to_string(m->col.size()) + " non-zeros); " +
                                   std::to_string(m->tastes.size()) + " customer tastes from " +
                                   std::to_string(events) + " events; model " +
                                   std::to_string(m->Bytes() / 1024) + " KiB");
    model_ = std::move(m);
  }

  // Format (native byte order, see README.md):
  //   "tailor-content-model\n", u32 version, u32 0x01020304, str config fingerprint,
  //   u8 has_ref, i64 t_ref_ms,
  //   u64 n_items, n x str id, vec<u32> row_start, vec<u32> col, vec<f32> val,
  //   u64 n_features, n x (u8 kind, str name),
  //   u64 n_tastes, n x (str customer, i64 last_ts_ms, vec<{u32 f, f32 w}>)
  // where str = u64 length + bytes and vec = u64 count + raw elements.
  void Save(const std::string& path) const {
    const Model& m = *model_;
    tailor::sdk::SaveModelFile(path, [&](std::ostream& out) {
      out.write(kMagic.data(), static_cast<std::streamsize>(kMagic.size()));
      Writer w(out);
      w.Pod(kFormatVersion);
      w.Pod(kEndianMark);
      w.Str(cfg_.Fingerprint());
      w.Pod(static_cast<uint8_t>(m.has_ref));
      w.Pod(m.t_ref_ms);
      w.Pod(static_cast<uint64_t>(m.n_items()));
      for (size_t i = 0; i < m.n_items(); ++i) w.Str(m.items.id(i));
      w.Vec(m.row_start);
      w.Vec(m.col);
      w.Vec(m.val);
      w.Pod(static_cast<uint64_t>(m.n_features()));
      for (size_t f = 0; f < m.n_features(); ++f) {
        w.Pod(m.feature_kind[f]);
        w.Str(m.feature_names[f]);
      }
      // Customers in id order, so that equal models write equal files.
      // Save runs alone (the ABI's rule), so the pointers stay valid.
      std::vector<std::pair<const std::string*, const Taste*>> tastes;
      m.tastes.ForEach(
          [&](const std::string& id, const Taste& t) { tastes.emplace_back(&id, &t); });
      std::sort(tastes.begin(), tastes.end(),
                [](const auto& a, const auto& b) { return *a.first < *b.first; });
      w.Pod(static_cast<uint64_t>(tastes.size()));
      for (const auto& [id, t] : tastes) {
        w.Str(*id);
        w.Pod(t->last_ts_ms);
        w.Vec(t->e);
      }
    });
  }

  void Load(const std::string& path) {
    const std::string data = tailor::sdk::ReadModelFile(path);
    if (data.compare(0, kMagic.size(), kMagic) != 0)
      throw std::runtime_error(path + ": not a content model file (no '" +
                               std::string(kMagic.substr(0, kMagic.size() - 1)) + "' header)");
    Reader r(path, "content", data, kMagic.size());
    const auto version = r.Pod<uint32_t>();
    if (version != kFormatVersion)
      throw std::runtime_error(path + ": content model format version " + std::to_string(version) +
                               " is not supported (this plugin reads " +
                               std::to_string(kFormatVersion) + "); retrain");
    if (r.Pod<uint32_t>() != kEndianMark)
      throw std::runtime_error(path + ": content model written with another byte order; retrain");
    const std::string fp = r.Str();
    if (fp != cfg_.Fingerprint())
      throw InvalidConfig(path + ": model was built with another configuration; retrain (built " +
                          "with " + fp + ", configured with " + cfg_.Fingerprint() + ")");
    auto m = std::make_unique<Model>();
    m->has_ref = r.Pod<uint8_t>() != 0;
    m->t_ref_ms = r.Pod<int64_t>();
    const uint64_t n = r.Count(sizeof(uint64_t));
    std::vector<std::string> ids;
    ids.reserve(n);
    for (uint64_t i = 0; i < n; ++i) ids.push_back(r.Str());
    if (!m->items.Build(ids)) r.Fail("duplicate item id");
    m->row_start = r.Vec<uint32_t>();
    m->col = r.Vec<uint32_t>();
    m->val = r.Vec<float>();
    const uint64_t nf = r.Count(1 + sizeof(uint64_t));
    for (uint64_t f = 0; f < nf; ++f) {
      const auto kind = r.Pod<uint8_t>();
      if (kind >= kKinds) r.Fail("unknown feature kind " + std::to_string(kind));
      m->feature_kind.push_back(kind);
      m->feature_names.push_back(r.Str());
    }
    if (m->row_start.size() != n + 1 || m->row_start.front() != 0 ||
        m->row_start.back() != m->col.size() || m->col.size() != m->val.size())
      r.Fail("item vectors do not match the item count");
    for (size_t i = 0; i < n; ++i) {
      if (m->row_start[i] > m->row_start[i + 1]) r.Fail("item vector offsets decrease");
      for (uint32_t p = m->row_start[i]; p < m->row_start[i + 1]; ++p) {
        if (m->col[p] >= nf || (p > m->row_start[i] && m->col[p] <= m->col[p - 1]))
          r.Fail("item " + std::to_string(i) + ": feature indices out of range or unsorted");
        if (!std::isfinite(m->val[p]) || m->val[p] < 0) r.Fail("bad item feature weight");
      }
    }
    const uint64_t users = r.Count(3 * sizeof(uint64_t));
    for (uint64_t u = 0; u < users; ++u) {
      std::string id = r.Str();
      Taste t;
      t.last_ts_ms = r.Pod<int64_t>();
      t.e = r.Vec<TasteEntry>();
      for (size_t k = 0; k < t.e.size(); ++k) {
        if (t.e[k].f >= nf || (k > 0 && t.e[k].f <= t.e[k - 1].f) || !std::isfinite(t.e[k].w) ||
            t.e[k].w < 0)
          r.Fail("customer " + id + ": bad taste entry");
      }
      if (!m->tastes.Insert(id, std::move(t))) r.Fail("duplicate customer " + id);
    }
    if (!r.AtEnd()) r.Fail("trailing bytes");
    IndexCategories(*m);
    model_ = std::move(m);  // one pointer swap; the old model served until here
  }

 private:
  Content(Config cfg, const Host& host)
      : cfg_(std::move(cfg)),
        hl_ms_(cfg_.half_life_days * kMsPerDay),
        host_(host),
        model_(std::make_unique<Model>()) {}

  double WeightOf(const char* type) const {
    if (type == nullptr) return 0;
    auto it = cfg_.weights.find(std::string_view(type));
    return it == cfg_.weights.end() ? 0 : it->second;
  }

  // 2^((ts - t_ref) / half_life) for an event at ts, first setting t_ref, or
  // moving it (and rescaling every weight through rescale) when ts is too
  // far past it.
  double Advance(Model& m, int64_t ts_ms, const std::function<void(float)>& rescale) const {
    if (hl_ms_ <= 0) return 1;
    if (!m.has_ref) {
      m.has_ref = true;
      m.t_ref_ms = ts_ms;
    }
    double x = static_cast<double>(ts_ms - m.t_ref_ms) / hl_ms_;
    if (x > kRebaseHalfLives) {
      rescale(static_cast<float>(std::exp2(-x)));
      m.t_ref_ms = ts_ms;
      x = 0;
    }
    return std::exp2(x);
  }

  static void IndexCategories(Model& m) {
    m.category_feature.clear();
    constexpr std::string_view kPrefix = "category=";
    for (size_t f = 0; f < m.n_features(); ++f) {
      if (m.feature_kind[f] == static_cast<uint8_t>(Kind::kCategory))
        m.category_feature.emplace(m.feature_names[f].substr(kPrefix.size()),
                                   static_cast<uint32_t>(f));
    }
  }

  void BuildItems(Model& m) const {
    struct Raw {
      std::string id, category, brand;
      double price = 0;
      std::vector<std::string> attrs, words;
    };
    std::vector<Raw> raw;
    StringMap<size_t> seen;
    host_.ForEachItem([&](const tailor_item_view& it) {
      Raw r;
      r.id = it.item_id;
      if (it.category != nullptr) r.category = it.category;
      if (it.brand != nullptr) r.brand = it.brand;
      r.price = std::isfinite(it.price) && it.price > 0 ? it.price : 0;
      const auto attrs = nlohmann::json::parse(
          it.attributes_json != nullptr ? it.attributes_json : "{}", nullptr, false);
      if (attrs.is_object()) {
        for (const auto& [k, v] : attrs.items()) {
          std::string value = v.is_string()                     ? v.get<std::string>()
                              : v.is_number() || v.is_boolean() ? v.dump()
                                                                : std::string();
          if (!value.empty() && value.size() <= kMaxAttributeValue)
            r.attrs.push_back(k + "=" + value);
        }
      }
      std::string text = it.title != nullptr ? it.title : "";
      if (it.description != nullptr) text.append(" ").append(it.description);
      r.words = Tokens(text);
      if (cfg_.bigrams) {
        const size_t nw = r.words.size();
        for (size_t k = 0; k + 1 < nw; ++k) r.words.push_back(r.words[k] + " " + r.words[k + 1]);
      }
      auto [pos, fresh] = seen.try_emplace(r.id, raw.size());
      if (fresh) {
        raw.push_back(std::move(r));
      } else {
        raw[pos->second] = std::move(r);  // the catalog's last word
      }
    });
    // Id order: the same catalog gives the same model whatever the host's order.
    std::sort(raw.begin(), raw.end(), [](const Raw& a, const Raw& b) { return a.id < b.id; });
    const size_t n = raw.size();
    {
      std::vector<std::string> ids;
      for (const Raw& r : raw) ids.push_back(r.id);
      m.items.Build(ids);  // unique by construction
    }

    // Price bands: quantile edges within each category that has enough
    // priced items, global edges for the rest. Bands are shared features
    // ("price band 2 of 5"): a taste for the cheap end carries across
    // categories.
    const auto bands = static_cast<size_t>(cfg_.price_bands);
    auto edges_of = [&](std::vector<double> prices) {
      std::sort(prices.begin(), prices.end());
      std::vector<double> edges;  // upper edges of bands 1 .. bands-1
      for (size_t b = 1; b < bands && !prices.empty(); ++b)
        edges.push_back(prices[prices.size() * b / bands]);
      return edges;
    };
    std::map<std::string, std::vector<double>> by_category;
    std::vector<double> all_prices;
    for (const Raw& r : raw) {
      if (r.price <= 0) continue;
      by_category[r.category].push_back(r.price);
      all_prices.push_back(r.price);
    }
    const std::vector<double> global_edges = edges_of(all_prices);
    std::map<std::string, std::vector<double>> category_edges;
    for (auto& [cat, prices] : by_category) {
      if (!cat.empty() && prices.size() >= static_cast<size_t>(cfg_.min_category_items))
        category_edges[cat] = edges_of(std::move(prices));
    }

    // Document frequencies, each word once per item.
    StringMap<uint32_t> df;
    for (const Raw& r : raw) {
      std::vector<std::string_view> u(r.words.begin(), r.words.end());
      std::sort(u.begin(), u.end());
      u.erase(std::unique(u.begin(), u.end()), u.end());
      for (std::string_view w : u) ++df[std::string(w)];
    }
    const double max_df = std::max(cfg_.max_df * static_cast<double>(n), kMinMaxDf);

    StringMap<uint32_t> feat_index;  // kind byte + display name -> feature
    auto feature = [&](Kind kind, const std::string& name) {
      std::string key(1, static_cast<char>(kind));
      key += name;
      auto [it, fresh] = feat_index.try_emplace(key, static_cast<uint32_t>(m.n_features()));
      if (fresh) {
        m.feature_names.push_back(name);
        m.feature_kind.push_back(static_cast<uint8_t>(kind));
      }
      return it->second;
    };

    m.row_start.assign(1, 0);
    std::vector<std::pair<uint32_t, double>> v;
    std::map<std::string_view, int> tf;
    for (const Raw& r : raw) {
      v.clear();
      if (!r.category.empty() && cfg_.w_category > 0)
        v.emplace_back(feature(Kind::kCategory, "category=" + r.category), cfg_.w_category);
      if (!r.brand.empty() && cfg_.w_brand > 0)
        v.emplace_back(feature(Kind::kBrand, "brand=" + r.brand), cfg_.w_brand);
      if (r.price > 0 && cfg_.w_price > 0 && bands > 1) {
        auto ce = category_edges.find(r.category);
        const std::vector<double>& edges = ce != category_edges.end() ? ce->second : global_edges;
        const auto b = static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), r.price) -
                                           edges.begin());
        v.emplace_back(feature(Kind::kPrice, "price band " + std::to_string(b + 1) + " of " +
                                                 std::to_string(bands)),
                       cfg_.w_price);
      }
      if (!r.attrs.empty() && cfg_.w_attributes > 0) {
        const double w = cfg_.w_attributes / std::sqrt(static_cast<double>(r.attrs.size()));
        for (const auto& a : r.attrs) v.emplace_back(feature(Kind::kAttribute, a), w);
      }
      if (cfg_.w_text > 0) {
        tf.clear();
        for (const auto& w : r.words) {
          const uint32_t d = df.find(w)->second;
          if (d >= static_cast<uint32_t>(cfg_.min_df) && d <= max_df) ++tf[w];
        }
        const size_t first = v.size();
        double norm = 0;
        for (const auto& [w, c] : tf) {
          const double idf =
              std::log((1.0 + static_cast<double>(n)) / (1.0 + df.find(w)->second)) + 1;
          const double x = (1 + std::log(static_cast<double>(c))) * idf;
          v.emplace_back(feature(Kind::kWord, std::string(w)), x);
          norm += x * x;
        }
        for (size_t k = first; k < v.size(); ++k) v[k].second *= cfg_.w_text / std::sqrt(norm);
      }
      // Sort by feature and normalise. An item's features are distinct by
      // construction; adding up equal ones is only a guard.
      std::sort(v.begin(), v.end());
      double norm = 0;
      for (const auto& [f, x] : v) norm += x * x;
      for (size_t k = 0; k < v.size(); ++k) {
        if (k > 0 && v[k].first == v[k - 1].first) {
          m.val.back() += static_cast<float>(v[k].second / std::sqrt(norm));
          continue;
        }
        m.col.push_back(v[k].first);
        m.val.push_back(static_cast<float>(v[k].second / std::sqrt(norm)));
      }
      m.row_start.push_back(static_cast<uint32_t>(m.col.size()));
    }
    IndexCategories(m);
  }

  // Folds every stored event into per-customer tastes. Returns the number of
  // events visited. Memory while training: 8 bytes per useful event.
  int64_t BuildTastes(Model& m) const {
    struct ItemW {
      uint32_t item;
      float w;
    };
    StringMap<uint32_t> customer_index;
    std::vector<const std::string*> customers;
    std::vector<std::vector<ItemW>> acc;
    std::vector<int64_t> last;
    const int64_t events = host_.ForEachEvent(0, [&](const tailor_event_view& ev) {
      if (ev.item_id == nullptr) return;
      const double w = WeightOf(ev.type);
      if (!(w > 0)) return;
      const int64_t i = m.items.Find(ev.item_id);
      if (i < 0) return;
      const double f = Advance(m, ev.ts_ms, [&](float scale) {
        for (auto& list : acc)
          for (ItemW& x : list) x.w *= scale;
      });
      const auto x = static_cast<float>(w * f);
      if (!(x > 0) || !std::isfinite(x)) return;
      auto [it, fresh] =
          customer_index.try_emplace(ev.customer_id, static_cast<uint32_t>(customers.size()));
      if (fresh) {
        customers.push_back(&it->first);
        acc.emplace_back();
        last.push_back(INT64_MIN);
      }
      acc[it->second].push_back({static_cast<uint32_t>(i), x});
      last[it->second] = std::max(last[it->second], ev.ts_ms);
    });

    std::vector<float> dense(m.n_features(), 0.0f);
    std::vector<uint32_t> touched;
    for (size_t c = 0; c < customers.size(); ++c) {
      std::vector<ItemW>& list = acc[c];
      std::sort(list.begin(), list.end(),
                [](const ItemW& a, const ItemW& b) { return a.item < b.item; });
      for (size_t k = 0; k < list.size();) {
        const uint32_t i = list[k].item;
        float w = 0;
        for (; k < list.size() && list[k].item == i; ++k) w += list[k].w;
        for (uint32_t p = m.row_start[i]; p < m.row_start[i + 1]; ++p) {
          if (dense[m.col[p]] == 0) touched.push_back(m.col[p]);
          dense[m.col[p]] += w * m.val[p];
        }
      }
      Taste t;
      t.last_ts_ms = last[c];
      std::sort(touched.begin(), touched.end());
      for (uint32_t f : touched) {
        if (dense[f] > 0) t.e.push_back({f, dense[f]});
        dense[f] = 0;
      }
      touched.clear();
      Prune(t.e, static_cast<size_t>(cfg_.max_taste_features));
      t.e.shrink_to_fit();
      std::vector<ItemW>().swap(list);
      m.tastes.Insert(*customers[c], std::move(t));
    }
    return events;
  }

  // The item in the request's context ({"item": "<id>"}, a product page):
  // then the taste is that item, for "similar items".
  std::optional<size_t> Anchor(const Model& m, const Request& req) const {
    const std::string_view ctx = req.context_json();
    if (ctx.find("\"item\"") == std::string_view::npos) return std::nullopt;
    const auto j = nlohmann::json::parse(ctx, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    auto it = j.find("item");
    if (it == j.end() || !it->is_string()) return std::nullopt;
    const int64_t i = m.items.Find(it->get_ref<const std::string&>());
    if (i < 0) return std::nullopt;
    return static_cast<size_t>(i);
  }

  // "matches: brand=Apple, category=phones, words: heart, lantern": the
  // features that add most to the cosine, strongest first, words last.
  void Explain(const Model& m, const float* taste, size_t row, Line& line) const {
    const size_t k = static_cast<size_t>(cfg_.reason_features);
    std::pair<float, uint32_t> top[kMaxReasonFeatures];
    size_t nt = 0;
    for (uint32_t p = m.row_start[row]; p < m.row_start[row + 1]; ++p) {
      const float v = taste[m.col[p]] * m.val[p];
      if (!(v > 0) || (nt == k && v <= top[nt - 1].first)) continue;
      size_t j = nt < k ? nt++ : nt - 1;
      for (; j > 0 && top[j - 1].first < v; --j) top[j] = top[j - 1];
      top[j] = {v, m.col[p]};
    }
    line.Add("matches: ");
    bool first = true;
    for (size_t j = 0; j < nt; ++j) {
      if (m.feature_kind[top[j].second] == static_cast<uint8_t>(Kind::kWord)) continue;
      if (!first) line.Add(", ");
      line.Add(m.feature_names[top[j].second]);
      first = false;
    }
    bool words = false;
    for (size_t j = 0; j < nt; ++j) {
      if (m.feature_kind[top[j].second] != static_cast<uint8_t>(Kind::kWord)) continue;
      line.Add(words ? ", " : first ? "words: " : ", words: ");
      line.Add(m.feature_names[top[j].second]);
      words = true;
    }
  }

  const Config cfg_;
  const double hl_ms_;  // 0: no decay
  const Host& host_;    // owned by the SDK; outlives this instance
  std::unique_ptr<Model> model_;
  mutable ScratchPool pool_;  // Score's working memory
};

}  // namespace

TAILOR_PLUGIN(Content, "content", "1.0.0");
