// cf: collaborative filtering from implicit feedback. Two model families,
// chosen by config: EASE (Steck 2019, a closed-form item-item linear model;
// the default) and implicit ALS (Hu, Koren, Volinsky 2008) trained with
// conjugate gradient (Takacs, Pilaszy, Tikk 2011). The user side is never
// stored as a trained factor: it is folded in at request time from the
// customer's history plus the request's recent events, so a new event changes
// the next answer without retraining. See README.md.
#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

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
constexpr std::string_view kMagic = "tailor-cf-model\n";
constexpr uint32_t kFormatVersion = 3;
// Candidates that get a reason naming the history item behind them: the best
// ones by cf score (a decision shows at most 100 offers). The rest get a
// generic reason, which costs nothing.
constexpr size_t kNamedReasons = 100;
// Scoring gathers the candidates' entries of each history row while the
// candidates are fewer than n / kDenseRatio; beyond that one streaming pass
// over the whole rows is cheaper than that many scattered reads.
constexpr size_t kDenseRatio = 16;

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using Weights = std::map<std::string, double, std::less<>>;

enum class Algorithm : uint32_t { kAuto = 0, kEase = 1, kAls = 2 };

const char* AlgorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::kAuto:
      return "auto";
    case Algorithm::kEase:
      return "ease";
    case Algorithm::kAls:
      return "als";
  }
  return "?";
}

struct Config {
  // auto: EASE while the catalog has at most max_items items with events,
  // ALS beyond (EASE costs n^2 floats).
  Algorithm algorithm = Algorithm::kAuto;
  // Strength of one event by type; types not listed count 0.
  Weights weights = {{"view", 1}, {"click", 2}, {"add_to_cart", 4}, {"purchase", 8}};
  // Summed strength at which a customer-item cell is full (1): one purchase
  // or eight views. More repeats add nothing, so that bulk buyers do not
  // dominate the item-item statistics.
  double saturation = 8;
  // Training: an event loses half its weight every half_life_days before the
  // newest event in the store (0: no decay).
  double half_life_days = 30;
  // Scoring: a customer's own history decays the same way before now, so
  // that their newest events lead (0: no decay).
  double history_half_life_days = 60;
  size_t max_items = 20000;  // EASE: the items with the most customers kept
  size_t max_history = 500;  // newest events kept per customer
  double ease_lambda = 600;  // L2 regularisation of EASE
  // Dropout-style regularisation of EASE (EDLAE, Steck 2020): item i's ridge
  // grows by p / (1 - p) times its own Gram diagonal, so that popular items
  // are shrunk more. 0 = plain EASE.
  double ease_dropout = 0;
  // Training rows are scaled by (items of the customer)^-user_norm / 2, so a
  // customer's weight in the item-item statistics grows like |items|^(1 -
  // user_norm): wholesale-sized histories do not drown everyone else.
  double user_norm = 0;
  // EASE ridge per item: lambda * ((1 + c_i) / (1 + median c))^lambda_alpha,
  // c_i = customers with item i; > 0 shrinks popular items more.
  double lambda_alpha = 0;
  // Columns of B divided by (popularity_j / median)^pop_beta (RP3beta-style
  // popularity penalty); 0 = none.
  double pop_beta = 0.35;
  // Baskets (events of one customer less than session_gap_minutes apart)
  // add their own co-occurrence, weighted basket_weight, to the Gram matrix.
  double basket_weight = 0;
  double session_gap_minutes = 30;
  // Scoring: an event also counts history_rank_decay^k, k = the number of the
  // customer's baskets newer than its own (1 = off).
  double history_rank_decay = 1;
  // Trending prior: item popularity decayed with trend_half_life_days before
  // the newest training event; trend_weight * scale * trend_c / (10th best
  // trend) is added to the raw score (0 = off).
  double trend_half_life_days = 14;
  double trend_weight = 0.2;
  // Next-basket model (EASE only): a ridge regression, with its own
  // next_basket_lambda, from a customer's history before each basket to the
  // items new to them in that basket, each basket weighted like a training
  // event (half_life_days). Its weights, rescaled so that a customer's
  // typical 10th best score equals EASE's, are added to B times
  // next_basket_weight (0 = off): one matrix, so scoring costs nothing more.
  double next_basket_weight = 0.3;
  double next_basket_lambda = 600;
  // A customer without usable history: TAILOR_SCORE_ABSTAIN (the other
  // plugins decide), or with cold_popularity the model's own popularity.
  bool cold_popularity = false;
  int als_factors = 64;
  int als_iterations = 15;
  int als_cg_steps = 3;
  double als_lambda = 0.1;
  double als_alpha = 10;  // confidence = 1 + alpha * strength
  uint32_t seed = 42;
  std::vector<std::string> similar_placements;  // placements that score similar items
  // Diversification (ABI 1.2 similarity): each item keeps its this many
  // nearest items by cosine over customers (bought or not); 0 = none.
  size_t diversity_neighbours = 100;

  // What a saved model depends on; Load refuses a file built otherwise.
  // Scoring-only keys (history_half_life_days, max_history,
  // similar_placements) are left out: changing them needs no retraining.
  std::string Fingerprint() const {
    nlohmann::json j = {{"algorithm", AlgorithmName(algorithm)},
                        {"weights", weights},
                        {"saturation", saturation},
                        {"half_life_days", half_life_days},
                        {"max_items", max_items}};
    if (algorithm != Algorithm::kAls) {
      j["ease_lambda"] = ease_lambda;
      j["ease_dropout"] = ease_dropout;
      j["user_norm"] = user_norm;
      j["lambda_alpha"] = lambda_alpha;
      j["pop_beta"] = pop_beta;
      j["basket_weight"] = basket_weight;
      j["next_basket_weight"] = next_basket_weight;
      j["next_basket_lambda"] = next_basket_lambda;
    }
    j["session_gap_minutes"] = session_gap_minutes;
    j["trend_half_life_days"] = trend_half_life_days;
    j["diversity_neighbours"] = diversity_neighbours;
    if (algorithm != Algorithm::kEase) {
      j["als"] = {als_factors, als_iterations, als_cg_steps, als_lambda, als_alpha, seed};
    }
    return j.dump();
  }
};

constexpr const char* kKnownKeys =
    "algorithm, weights, saturation, half_life_days, history_half_life_days, max_items, "
    "max_history, ease_lambda, ease_dropout, user_norm, lambda_alpha, pop_beta, basket_weight, "
    "session_gap_minutes, history_rank_decay, trend_half_life_days, trend_weight, "
    "next_basket_weight, next_basket_lambda, cold_popularity, als_factors, als_iterations, "
    "als_cg_steps, als_lambda, als_alpha, seed, similar_placements, diversity_neighbours";

// Parses the plugin's config block; collects every problem before throwing.
Config ParseConfig(std::string_view text) {
  using nlohmann::json;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw InvalidConfig("cf config: not valid JSON");
  if (!j.is_object()) throw InvalidConfig("cf config: expected a JSON object");
  Config cfg;
  std::vector<std::string> errors;
  bool unknown = false;
  auto number = [&](const std::string& key, const json& v, double lo, double hi, double& out) {
    if (!v.is_number() || !(v.get<double>() >= lo) || !(v.get<double>() <= hi)) {
      errors.push_back(key + ": expected a number in [" + json(lo).dump() + ", " + json(hi).dump() +
                       "], got " + v.dump());
      return false;
    }
    out = v.get<double>();
    return true;
  };
  for (const auto& [key, v] : j.items()) {
    double d = 0;
    if (key == "algorithm") {
      if (v == "auto") {
        cfg.algorithm = Algorithm::kAuto;
      } else if (v == "ease") {
        cfg.algorithm = Algorithm::kEase;
      } else if (v == "als") {
        cfg.algorithm = Algorithm::kAls;
      } else {
        errors.push_back("algorithm: expected \"auto\", \"ease\" or \"als\", got " + v.dump());
      }
    } else if (key == "weights") {
      if (!v.is_object()) {
        errors.push_back("weights: expected an object of event type -> weight, got " + v.dump());
        continue;
      }
      for (const auto& [type, w] : v.items()) {
        if (number("weights." + type, w, 0, 1e6, d)) cfg.weights[type] = d;  // merged
      }
    } else if (key == "saturation") {
      if (number(key, v, 1e-6, 1e9, d)) cfg.saturation = d;
    } else if (key == "half_life_days") {
      if (number(key, v, 0, 36500, d)) cfg.half_life_days = d;
    } else if (key == "history_half_life_days") {
      if (number(key, v, 0, 36500, d)) cfg.history_half_life_days = d;
    } else if (key == "max_items") {
      if (number(key, v, 1, 100000, d)) cfg.max_items = static_cast<size_t>(d);
    } else if (key == "max_history") {
      if (number(key, v, 1, 100000, d)) cfg.max_history = static_cast<size_t>(d);
    } else if (key == "ease_lambda") {
      if (number(key, v, 1e-6, 1e9, d)) cfg.ease_lambda = d;
    } else if (key == "ease_dropout") {
      if (number(key, v, 0, 0.95, d)) cfg.ease_dropout = d;
    } else if (key == "user_norm") {
      if (number(key, v, 0, 2, d)) cfg.user_norm = d;
    } else if (key == "lambda_alpha") {
      if (number(key, v, -2, 2, d)) cfg.lambda_alpha = d;
    } else if (key == "pop_beta") {
      if (number(key, v, -1, 1, d)) cfg.pop_beta = d;
    } else if (key == "basket_weight") {
      if (number(key, v, 0, 1e3, d)) cfg.basket_weight = d;
    } else if (key == "session_gap_minutes") {
      if (number(key, v, 0, 1e7, d)) cfg.session_gap_minutes = d;
    } else if (key == "history_rank_decay") {
      if (number(key, v, 1e-3, 1, d)) cfg.history_rank_decay = d;
    } else if (key == "trend_half_life_days") {
      if (number(key, v, 0, 36500, d)) cfg.trend_half_life_days = d;
    } else if (key == "trend_weight") {
      if (number(key, v, 0, 1e3, d)) cfg.trend_weight = d;
    } else if (key == "next_basket_weight") {
      if (number(key, v, 0, 1e3, d)) cfg.next_basket_weight = d;
    } else if (key == "next_basket_lambda") {
      if (number(key, v, 1e-6, 1e9, d)) cfg.next_basket_lambda = d;
    } else if (key == "cold_popularity") {
      if (v.is_boolean()) {
        cfg.cold_popularity = v.get<bool>();
      } else {
        errors.push_back("cold_popularity: expected true or false, got " + v.dump());
      }
    } else if (key == "als_factors") {
      if (number(key, v, 1, 1024, d)) cfg.als_factors = static_cast<int>(d);
    } else if (key == "als_iterations") {
      if (number(key, v, 1, 1000, d)) cfg.als_iterations = static_cast<int>(d);
    } else if (key == "als_cg_steps") {
      if (number(key, v, 1, 100, d)) cfg.als_cg_steps = static_cast<int>(d);
    } else if (key == "als_lambda") {
      if (number(key, v, 0, 1e6, d)) cfg.als_lambda = d;
    } else if (key == "als_alpha") {
      if (number(key, v, 0, 1e6, d)) cfg.als_alpha = d;
    } else if (key == "seed") {
      if (number(key, v, 0, 4294967295.0, d)) cfg.seed = static_cast<uint32_t>(d);
    } else if (key == "diversity_neighbours") {
      if (number(key, v, 0, 10000, d)) cfg.diversity_neighbours = static_cast<size_t>(d);
    } else if (key == "similar_placements") {
      if (!v.is_array()) {
        errors.push_back("similar_placements: expected a list of placement names, got " + v.dump());
        continue;
      }
      for (const auto& p : v) {
        if (p.is_string()) {
          cfg.similar_placements.push_back(p.get<std::string>());
        } else {
          errors.push_back("similar_placements: expected strings, got " + p.dump());
        }
      }
    } else {
      errors.push_back("unknown key '" + key + "'");
      unknown = true;
    }
  }
  // The long list of known keys last, where a truncated message loses it.
  tailor::sdk::ThrowIfConfigErrors(
      "cf", errors, unknown ? std::string(" (known keys: ") + kKnownKeys + ")" : std::string());
  return cfg;
}

// What kind of interaction an event was, for the wording of reasons.
enum Kind : uint32_t { kOther = 0, kViewed = 1, kAdded = 2, kBought = 3 };

Kind KindOf(const char* type) {
  if (type == nullptr) return kOther;
  const std::string_view t(type);
  if (t == "purchase" || t == "convert") return kBought;
  if (t == "add_to_cart") return kAdded;
  if (t == "view" || t == "click") return kViewed;
  return kOther;
}

const char* Verb(uint32_t kind) {
  switch (kind) {
    case kBought:
      return "bought";
    case kAdded:
      return "added to your cart";
    case kViewed:
      return "viewed";
    default:
      return "liked";
  }
}

// One remembered interaction of a customer, by model item index.
struct HistEvent {
  int64_t ts_ms;
  uint32_t item;
  uint32_t kind;
  float weight;
};

struct History {
  std::vector<HistEvent> events;   // oldest first, at most max_history
  int64_t last_ts_ms = INT64_MIN;  // the newest event included
};

// One entry of a customer's vector: model item, strength in (0, 1], and the
// strongest kind of event behind it.
struct UserEntry {
  uint32_t item;
  float x;
  uint32_t kind;
};

// Training rows of the next-basket model: per (customer, basket) with items
// new to the customer, the customer's items before the basket (strength
// min(1, summed weight / saturation), no decay; sorted by item), those new
// items, and the basket's training weight.
struct NextBasketRows {
  std::vector<std::vector<UserEntry>> history;
  std::vector<std::vector<uint32_t>> fresh;
  std::vector<float> weight;
};

// The trained model: immutable once built, shared by every Score call that
// started with it.
struct Model {
  Algorithm algorithm = Algorithm::kEase;  // never kAuto here
  std::vector<std::string> ids;
  std::vector<std::string> titles;  // for reasons; may be empty strings
  StringMap<uint32_t> index;
  std::vector<float> popularity;   // summed strength, for the cold-start prior
  std::vector<float> trend;        // popularity decayed with trend_half_life_days
  float trend_ref = 1;             // the 10th best trend: trend / trend_ref ~ 1 at the top
  std::vector<uint32_t> pop_rank;  // 1 = most popular
  float pop_median = 1;
  // A customer's typical 10th best raw score, from training customers:
  // the personal score is r / (r + scale), so that value maps to 1/2.
  float scale = 1;
  // EASE: n x n, row-major; row j = what having item j predicts for every item.
  RowMajorF ease;
  std::vector<float> row_max;  // EASE: max of each row, the similar-items scale
  // ALS: n x k item factors, one contiguous row per item.
  RowMajorF factors;
  std::vector<float> factor_norm;
  Eigen::MatrixXd yty;  // ALS: Y^T Y + lambda I, the fold-in's fixed part
  // Each item's nearest items by cosine over customers, for Similarity:
  // item i's are nb_item / nb_sim [nb_start[i], nb_start[i + 1]).
  std::vector<uint64_t> nb_start;
  std::vector<uint32_t> nb_item;
  std::vector<float> nb_sim;
  int64_t trained_events = 0;
  size_t customers = 0;

  size_t n() const { return ids.size(); }
  size_t Bytes() const {
    size_t b =
        static_cast<size_t>(ease.size() + factors.size()) * sizeof(float) +
        static_cast<size_t>(yty.size()) * sizeof(double) +
        (popularity.size() + trend.size() + row_max.size() + factor_norm.size() + nb_sim.size()) *
            sizeof(float) +
        (pop_rank.size() + nb_item.size()) * sizeof(uint32_t) + nb_start.size() * sizeof(uint64_t);
    for (size_t i = 0; i < ids.size(); ++i) b += ids[i].size() * 2 + titles[i].size() + 64;
    return b;
  }
};

// What Score reads: the model plus the customers' histories. Train and Load
// build a new one and publish it with one atomic pointer swap; Observe
// appends to one customer's history under its shard's lock while Score runs
// (kConcurrentObserve), and Score works on a copy of the history it needs.
struct State {
  std::shared_ptr<const Model> model;
  tailor::sdk::ShardedMap<History> histories;
};

// --- binary model files: tailor/plugin_io.hpp (native byte order) ----------
using Writer = tailor::sdk::ModelWriter;
using Reader = tailor::sdk::ModelReader;

std::string Short(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t len = n;
  while (len > 0 && (static_cast<unsigned char>(s[len]) & 0xC0) == 0x80) --len;
  return std::string(s.substr(0, len)) + "...";
}

double Decay(double half_life_ms, int64_t age_ms) {
  if (!(half_life_ms > 0) || age_ms <= 0) return 1;
  return std::exp2(-static_cast<double>(age_ms) / half_life_ms);
}

class Cf {
 public:
  // Observe changes one customer's history under its shard's lock (State).
  static constexpr bool kConcurrentObserve = true;

  static std::unique_ptr<Cf> Create(std::string_view config_json, const Host& host) {
    return std::unique_ptr<Cf>(new Cf(ParseConfig(config_json), host));
  }

  void Score(const Request& req, std::span<const tailor_candidate> candidates,
             std::span<float> scores, Reasons& reasons) const {
    // Abstain on every candidate the model cannot score (ABI 1.1): the engine
    // then blends the other plugins only for it.
    std::fill(scores.begin(), scores.end(), TAILOR_SCORE_ABSTAIN);
    const std::shared_ptr<const State> state = state_.load();
    // Untrained: no opinion on anything, not an error.
    if (state == nullptr || state->model == nullptr || candidates.empty()) return;
    const Model& m = *state->model;

    // Model index of every candidate (-1: unknown to the model, scores 0).
    std::vector<int32_t> cidx(candidates.size());
    for (size_t c = 0; c < candidates.size(); ++c) {
      const auto idx = Find(m, candidates[c].item_id);
      cidx[c] = idx ? static_cast<int32_t>(*idx) : -1;
    }

    std::optional<History> history;
    if (auto id = req.customer_id()) history = state->histories.Get(*id);
    const History* h = history ? &*history : nullptr;
    if (auto anchor = Anchor(m, h, req)) {
      ScoreSimilar(m, *anchor, cidx, scores, reasons);
      return;
    }
    const std::vector<UserEntry> x = UserVector(m, h, req);
    if (x.empty()) {
      if (cfg_.cold_popularity) ScoreCold(m, cidx, scores, reasons);
      return;
    }
    std::vector<float> raw(candidates.size(), 0.0f);
    RawScores(m, x, cidx, raw);
    AddTrend(m, cidx, raw);
    for (size_t c = 0; c < raw.size(); ++c) {
      const float r = raw[c];
      if (cidx[c] >= 0) scores[c] = r > 0 ? r / (r + m.scale) : 0.0f;
    }
    if (reasons.enabled()) SetReasons(m, x, cidx, scores, reasons);
  }

  void Observe(const tailor_event_view& ev) {
    const std::shared_ptr<State> state = state_.load();
    if (state == nullptr || state->model == nullptr || ev.item_id == nullptr) return;
    const double w = WeightOf(ev.type);
    const auto idx = Find(*state->model, ev.item_id);
    // Items the model does not know wait for the next training; popularity
    // and content cover them meanwhile.
    if (!(w > 0) || !idx) return;
    const HistEvent e{ev.ts_ms, *idx, KindOf(ev.type), static_cast<float>(w)};
    state->histories.Update(ev.customer_id, [&](History& h) {
      // Kept in time order; events arrive nearly ordered.
      auto at = std::upper_bound(h.events.begin(), h.events.end(), e.ts_ms,
                                 [](int64_t t, const HistEvent& x) { return t < x.ts_ms; });
      h.events.insert(at, e);
      h.last_ts_ms = std::max(h.last_ts_ms, ev.ts_ms);
      Trim(h);
    });
  }

  // Erasure: the customer's remembered history goes; the model's item-item
  // weights are aggregates over everyone and name no customer.
  void Forget(std::string_view customer_id) {
    if (const std::shared_ptr<State> state = state_.load()) state->histories.Erase(customer_id);
  }

  void Train() {
    const int64_t t0 = NowNs();
    auto m = std::make_shared<Model>();
    auto state = std::make_shared<State>();
    StringMap<std::string> titles;
    host_.ForEachItem([&](const tailor_item_view& it) {
      titles.emplace(it.item_id, it.title != nullptr ? it.title : "");
    });
    // Collect weighted item events; customers and items get dense indices.
    struct Raw {
      uint32_t user, item;
      float w;
      uint32_t kind;
      int64_t ts;
    };
    std::vector<Raw> raw;
    StringMap<uint32_t> users, items;
    std::vector<std::string> user_ids, item_ids;
    int64_t t_end = INT64_MIN;
    auto intern = [](StringMap<uint32_t>& map, std::vector<std::string>& ids, const char* s) {
      auto [it, fresh] = map.try_emplace(s, static_cast<uint32_t>(ids.size()));
      if (fresh) ids.emplace_back(s);
      return it->second;
    };
    m->trained_events = host_.ForEachEvent(0, [&](const tailor_event_view& ev) {
      if (ev.item_id == nullptr) return;
      const double w = WeightOf(ev.type);
      if (!(w > 0)) return;
      raw.push_back({intern(users, user_ids, ev.customer_id), intern(items, item_ids, ev.item_id),
                     static_cast<float>(w), KindOf(ev.type), ev.ts_ms});
      t_end = std::max(t_end, ev.ts_ms);
    });
    if (raw.empty()) throw std::runtime_error("no item events with a positive weight to train on");
    Progress(1, "read " + std::to_string(m->trained_events) +
                    " events: " + std::to_string(raw.size()) + " weighted item events, " +
                    std::to_string(user_ids.size()) + " customers, " +
                    std::to_string(item_ids.size()) + " items");

    // The algorithm, and for EASE the items with the most distinct customers
    // (EASE is n^2 in memory).
    m->algorithm = cfg_.algorithm;
    if (m->algorithm == Algorithm::kAuto) {
      m->algorithm = item_ids.size() <= cfg_.max_items ? Algorithm::kEase : Algorithm::kAls;
    }
    std::vector<uint32_t> order(item_ids.size());
    std::iota(order.begin(), order.end(), 0u);
    if (m->algorithm == Algorithm::kEase && order.size() > cfg_.max_items) {
      std::vector<std::vector<uint32_t>> item_users(item_ids.size());
      for (const Raw& e : raw) item_users[e.item].push_back(e.user);
      std::vector<size_t> reach(item_ids.size());
      for (size_t i = 0; i < item_ids.size(); ++i) {
        auto& u = item_users[i];
        std::sort(u.begin(), u.end());
        reach[i] = static_cast<size_t>(std::unique(u.begin(), u.end()) - u.begin());
      }
      std::stable_sort(order.begin(), order.end(),
                       [&](uint32_t a, uint32_t b) { return reach[a] > reach[b]; });
      order.resize(cfg_.max_items);
    }
    // Model items in id order, so that a model does not depend on event order.
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return item_ids[a] < item_ids[b]; });
    std::vector<int64_t> remap(item_ids.size(), -1);
    for (size_t k = 0; k < order.size(); ++k) {
      remap[order[k]] = static_cast<int64_t>(k);
      m->ids.push_back(item_ids[order[k]]);
      auto t = titles.find(item_ids[order[k]]);
      m->titles.push_back(t != titles.end() ? t->second : "");
      m->index.emplace(item_ids[order[k]], static_cast<uint32_t>(k));
    }
    const size_t n = m->ids.size();

    // Histories (kept for scoring) and the training rows from the same events.
    std::vector<std::vector<HistEvent>> per_user(user_ids.size());
    for (const Raw& e : raw) {
      if (remap[e.item] < 0) continue;
      per_user[e.user].push_back({e.ts, static_cast<uint32_t>(remap[e.item]), e.kind, e.w});
    }
    raw = {};
    std::vector<std::vector<UserEntry>> rows, baskets;
    NextBasketRows next;
    std::vector<double> next_acc(m->algorithm == Algorithm::kEase ? n : 0, 0.0);
    rows.reserve(user_ids.size());
    m->popularity.assign(n, 0);
    m->trend.assign(n, 0);
    const double hl = cfg_.half_life_days * kMsPerDay;
    const double trend_hl = cfg_.trend_half_life_days * kMsPerDay;
    const bool want_baskets = m->algorithm == Algorithm::kEase && cfg_.basket_weight > 0;
    const bool want_next = m->algorithm == Algorithm::kEase && cfg_.next_basket_weight > 0;
    for (size_t u = 0; u < per_user.size(); ++u) {
      auto& ev = per_user[u];
      if (ev.empty()) continue;
      std::stable_sort(ev.begin(), ev.end(),
                       [](const HistEvent& a, const HistEvent& b) { return a.ts_ms < b.ts_ms; });
      for (const HistEvent& e : ev)
        m->trend[e.item] += static_cast<float>(e.weight * Decay(trend_hl, t_end - e.ts_ms));
      if (want_baskets) {
        for (size_t b = 0, e = 0; b < ev.size(); b = e) {
          for (e = b + 1; e < ev.size() && ev[e].ts_ms - ev[e - 1].ts_ms <= session_gap_ms_; ++e) {
          }
          if (e - b < 2) continue;  // a single event co-occurs with nothing
          baskets.push_back(Strengths(std::span(ev).subspan(b, e - b), {}, INT64_MIN, t_end, hl));
        }
      }
      if (want_next) AppendNextBasketRows(ev, t_end, hl, next_acc, next);
      rows.push_back(Strengths(ev, {}, INT64_MIN, t_end, hl));
      for (const UserEntry& e : rows.back()) m->popularity[e.item] += e.x;
      History h;
      h.last_ts_ms = ev.back().ts_ms;
      h.events = std::move(ev);
      Trim(h);
      state->histories.Insert(user_ids[u], std::move(h));
    }
    m->customers = rows.size();
    Progress(2, "built " + std::to_string(rows.size()) + " customer rows over " +
                    std::to_string(n) + " items; fitting " + AlgorithmName(m->algorithm));

    if (m->algorithm == Algorithm::kEase) {
      TrainEase(*m, rows, baskets, next);
    } else {
      TrainAls(*m, rows);
    }
    FinishPopularity(*m);
    FinishTrend(*m);
    Calibrate(*m, rows);
    BuildNeighbours(*m, rows, cfg_.diversity_neighbours);
    const double secs = static_cast<double>(NowNs() - t0) / 1e9;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "trained %s in %.2f s: %zu customers, %zu items, %.1f MB model, score scale %.4g",
                  AlgorithmName(m->algorithm), secs, m->customers, n,
                  static_cast<double>(m->Bytes()) / 1e6, static_cast<double>(m->scale));
    host_.Log(TAILOR_LOG_INFO, buf);
    state->model = std::move(m);
    state_.store(std::move(state));  // the swap: scoring sees the old or the new state
  }

  // ABI 1.2: the cosine of each pair of the given items where one is among
  // the other's kept neighbours; other pairs and unknown items stay 0 (the
  // SDK zeroed out).
  void Similarity(std::span<const char* const> items, std::span<float> out) const {
    const std::shared_ptr<const State> state = state_.load();
    if (state == nullptr || state->model == nullptr || items.empty()) return;
    const Model& m = *state->model;
    if (m.nb_start.empty())
      throw std::runtime_error("this cf model keeps no item neighbours (diversity_neighbours: 0)");
    const size_t n = items.size();
    // Model index -> position among the items (-1: not asked about), per
    // thread: Similarity runs concurrently like Score.
    thread_local std::vector<int32_t> pos;
    if (pos.size() != m.n()) pos.assign(m.n(), -1);
    thread_local std::vector<int64_t> index_of;  // per position; -1: unknown item
    index_of.assign(n, -1);
    for (size_t p = 0; p < n; ++p)
      if (auto i = Find(m, items[p])) {
        index_of[p] = *i;
        if (pos[*i] < 0) pos[*i] = static_cast<int32_t>(p);
      }
    for (size_t p = 0; p < n; ++p) {
      const int64_t i = index_of[p];
      if (i < 0 || pos[static_cast<size_t>(i)] != static_cast<int32_t>(p)) continue;
      for (uint64_t q = m.nb_start[i]; q < m.nb_start[i + 1]; ++q) {
        const int32_t o = pos[m.nb_item[q]];
        if (o < 0) continue;
        // Symmetric; a truncated list may hold only one side of a pair.
        float& a = out[p * n + static_cast<size_t>(o)];
        float& b = out[static_cast<size_t>(o) * n + p];
        a = std::max(a, m.nb_sim[q]);
        b = std::max(b, m.nb_sim[q]);
      }
    }
    // An item asked about twice (two offers promoting it) is its first
    // occurrence's twin: the same row and column, and alike to it.
    for (size_t p = 0; p < n; ++p) {
      const int64_t i = index_of[p];
      if (i < 0 || pos[static_cast<size_t>(i)] == static_cast<int32_t>(p)) continue;
      const auto first = static_cast<size_t>(pos[static_cast<size_t>(i)]);
      for (size_t j = 0; j < n; ++j) {
        out[p * n + j] = out[first * n + j];
        out[j * n + p] = out[j * n + first];
      }
      out[p * n + first] = out[first * n + p] = 1.0f;
    }
    for (int64_t i : index_of)
      if (i >= 0) pos[static_cast<size_t>(i)] = -1;
  }

  // Format (little-endian binary):
  //   "tailor-cf-model\n", u32 version, u32 algorithm (1 EASE, 2 ALS),
  //   u64 items n, u64 factors k (0 for EASE), str fingerprint,
  //   i64 trained events, u64 customers, f32 scale,
  //   n x (str id, str title), f32[n] popularity, f32[n] trend,
  //   EASE: f32[n*n] B row-major | ALS: f32[n*k] item factors row-major,
  //   u64[n+1] neighbour offsets (or none), u32[] neighbours, f32[] cosines,
  //   u64 histories, each: str customer, i64 last_ts, u64 m, m x (i64 ts, u32 item,
  //   u32 kind, f32 weight), then the 8 bytes "cf-end\n\0".
  // Arrays carry their length. Written beside and renamed, so a crash never
  // leaves half a model at path.
  void Save(const std::string& path) const {
    const std::shared_ptr<const State> state = state_.load();
    if (state == nullptr || state->model == nullptr)
      throw std::runtime_error("no model to save (train first)");
    const Model& m = *state->model;
    tailor::sdk::SaveModelFile(path, [&](std::ostream& out) {
      out << kMagic;
      Writer w(out);
      w.Pod(kFormatVersion);
      w.Pod(static_cast<uint32_t>(m.algorithm));
      w.Pod(static_cast<uint64_t>(m.n()));
      w.Pod(static_cast<uint64_t>(m.algorithm == Algorithm::kAls ? m.factors.cols() : 0));
      w.Str(cfg_.Fingerprint());
      w.Pod(m.trained_events);
      w.Pod(static_cast<uint64_t>(m.customers));
      w.Pod(m.scale);
      for (size_t i = 0; i < m.n(); ++i) {
        w.Str(m.ids[i]);
        w.Str(m.titles[i]);
      }
      w.Array(m.popularity.data(), m.n());
      w.Array(m.trend.data(), m.n());
      if (m.algorithm == Algorithm::kEase) {
        w.Array(m.ease.data(), static_cast<size_t>(m.ease.size()));
      } else {
        w.Array(m.factors.data(), static_cast<size_t>(m.factors.size()));
      }
      w.Vec(m.nb_start);
      w.Vec(m.nb_item);
      w.Vec(m.nb_sim);
      // Sorted by customer so that equal models give equal files.
      // Save runs alone (the ABI's rule), so the pointers stay valid.
      std::vector<std::pair<const std::string*, const History*>> hs;
      state->histories.ForEach(
          [&](const std::string& id, const History& h) { hs.emplace_back(&id, &h); });
      std::sort(hs.begin(), hs.end(),
                [](const auto& a, const auto& b) { return *a.first < *b.first; });
      w.Pod(static_cast<uint64_t>(hs.size()));
      for (const auto& [id, h] : hs) {
        w.Str(*id);
        w.Pod(h->last_ts_ms);
        w.Pod(static_cast<uint64_t>(h->events.size()));
        for (const HistEvent& e : h->events) {
          w.Pod(e.ts_ms);
          w.Pod(e.item);
          w.Pod(e.kind);
          w.Pod(e.weight);
        }
      }
      out.write("cf-end\n", 8);
    });
  }

  // Reads a whole model into a new state, checks it, then swaps it in; any
  // failure leaves the served model untouched.
  void Load(const std::string& path) {
    const std::string data = tailor::sdk::ReadModelFile(path);
    if (data.compare(0, kMagic.size(), kMagic) != 0)
      throw std::runtime_error(path + ": not a cf model file (no '" +
                               std::string(kMagic.substr(0, kMagic.size() - 1)) + "' header)");
    Reader r(path, "cf", std::string_view(data).substr(kMagic.size()));
    const auto version = r.Pod<uint32_t>();
    if (version != kFormatVersion) {
      throw std::runtime_error(path + ": cf model format version " + std::to_string(version) +
                               " is not supported (this plugin reads " +
                               std::to_string(kFormatVersion) + ")");
    }
    auto m = std::make_shared<Model>();
    const auto algo = r.Pod<uint32_t>();
    if (algo != static_cast<uint32_t>(Algorithm::kEase) &&
        algo != static_cast<uint32_t>(Algorithm::kAls))
      r.Fail("unknown algorithm " + std::to_string(algo));
    m->algorithm = static_cast<Algorithm>(algo);
    const auto n = r.Pod<uint64_t>();
    const auto k = r.Pod<uint64_t>();
    const std::string fp = r.Str();
    if (fp != cfg_.Fingerprint()) {
      throw InvalidConfig(path + ": model was built with another configuration; retrain (model: " +
                          fp + ", this instance: " + cfg_.Fingerprint() + ")");
    }
    if (n == 0 || n > (1u << 24)) r.Fail("bad item count " + std::to_string(n));
    if (m->algorithm == Algorithm::kEase ? k != 0 : k != static_cast<uint64_t>(cfg_.als_factors))
      r.Fail("factor count " + std::to_string(k) + " does not fit the configuration");
    // Every item costs at least 16 bytes of the file, and its matrix row more.
    if (n > r.Remaining() / 16) r.Fail("item count " + std::to_string(n) + " exceeds the file");
    m->trained_events = r.Pod<int64_t>();
    m->customers = r.Pod<uint64_t>();
    m->scale = r.Pod<float>();
    if (!std::isfinite(m->scale) || !(m->scale > 0)) r.Fail("bad score scale");
    for (uint64_t i = 0; i < n; ++i) {
      m->ids.push_back(r.Str());
      m->titles.push_back(r.Str());
      if (!m->index.emplace(m->ids.back(), static_cast<uint32_t>(i)).second)
        r.Fail("duplicate item id");
    }
    m->popularity.resize(n);
    r.Array(m->popularity.data(), n);
    m->trend.resize(n);
    r.Array(m->trend.data(), n);
    const auto ni = static_cast<Eigen::Index>(n);
    if (m->algorithm == Algorithm::kEase) {
      if (n > r.Remaining() / n / sizeof(float)) r.Fail("EASE matrix exceeds the file");
      m->ease.resize(ni, ni);
      r.Array(m->ease.data(), n * n);
    } else {
      m->factors.resize(ni, static_cast<Eigen::Index>(k));
      r.Array(m->factors.data(), n * k);
    }
    m->nb_start = r.Vec<uint64_t>();
    m->nb_item = r.Vec<uint32_t>();
    m->nb_sim = r.Vec<float>();
    CheckNeighbours(*m, r);
    auto state = std::make_shared<State>();
    const auto users = r.Pod<uint64_t>();
    for (uint64_t u = 0; u < users; ++u) {
      std::string id = r.Str();
      History h;
      h.last_ts_ms = r.Pod<int64_t>();
      const auto count = r.Pod<uint64_t>();
      if (count > r.Remaining() / 20) r.Fail("history runs past the end");
      h.events.resize(count);
      for (HistEvent& e : h.events) {
        e.ts_ms = r.Pod<int64_t>();
        e.item = r.Pod<uint32_t>();
        e.kind = r.Pod<uint32_t>();
        e.weight = r.Pod<float>();
        if (e.item >= n || !std::isfinite(e.weight) || e.weight < 0) r.Fail("bad history event");
      }
      Trim(h);
      state->histories.Insert(std::move(id), std::move(h));
    }
    char end[8];
    for (char& ch : end) ch = r.Pod<char>();
    if (std::memcmp(end, "cf-end\n", 8) != 0) r.Fail("missing end marker");
    if (r.Remaining() != 0) r.Fail("trailing bytes");
    for (size_t i = 0; i < n; ++i)
      if (!std::isfinite(m->popularity[i]) || !std::isfinite(m->trend[i]))
        r.Fail("non-finite popularity");
    const float* mat = m->algorithm == Algorithm::kEase ? m->ease.data() : m->factors.data();
    const auto cells = m->algorithm == Algorithm::kEase ? m->ease.size() : m->factors.size();
    for (Eigen::Index i = 0; i < cells; ++i)
      if (!std::isfinite(mat[i])) r.Fail("non-finite model weight");
    Derive(*m);
    FinishPopularity(*m);
    FinishTrend(*m);
    state->model = std::move(m);
    state_.store(std::move(state));  // one pointer swap
  }

 private:
  Cf(Config cfg, const Host& host)
      : cfg_(std::move(cfg)),
        history_half_life_ms_(cfg_.history_half_life_days * kMsPerDay),
        session_gap_ms_(static_cast<int64_t>(cfg_.session_gap_minutes * 60000.0)),
        host_(host) {}

  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Training progress through the host log: "train 2/4: ...".
  void Progress(int step, const std::string& what) const {
    host_.Log(TAILOR_LOG_INFO, "train " + std::to_string(step) + "/4: " + what);
  }

  double WeightOf(const char* type) const {
    if (type == nullptr) return 0;
    auto it = cfg_.weights.find(std::string_view(type));
    return it == cfg_.weights.end() ? 0 : it->second;
  }

  void Trim(History& h) const {
    if (h.events.size() > cfg_.max_history)
      h.events.erase(h.events.begin(),
                     h.events.begin() + static_cast<ptrdiff_t>(h.events.size() - cfg_.max_history));
  }

  static std::optional<uint32_t> Find(const Model& m, const char* id) {
    if (id == nullptr) return std::nullopt;
    auto it = m.index.find(std::string_view(id));
    if (it == m.index.end()) return std::nullopt;
    return it->second;
  }

  static std::string Label(const Model& m, uint32_t i) {
    return m.titles[i].empty() ? m.ids[i] : Short(m.titles[i], 60);
  }

  // Per-item strength min(1, sum of decayed weights / saturation) of the
  // stored events plus the `extra` events newer than since_ms, decayed to
  // now_ms with half-life hl_ms; sorted by item.
  std::vector<UserEntry> Strengths(std::span<const HistEvent> stored,
                                   std::span<const HistEvent> extra, int64_t since_ms,
                                   int64_t now_ms, double hl_ms, double rank_decay = 1) const {
    std::vector<HistEvent> all;
    all.reserve(stored.size() + extra.size());
    all.insert(all.end(), stored.begin(), stored.end());
    for (const HistEvent& e : extra)
      if (e.ts_ms > since_ms) all.push_back(e);
    if (rank_decay < 1 && !all.empty()) {
      // Each event also counts rank_decay^(baskets newer than its own).
      std::vector<int64_t> ts;
      ts.reserve(all.size());
      for (const HistEvent& e : all) ts.push_back(e.ts_ms);
      std::sort(ts.begin(), ts.end());
      std::vector<int64_t> starts;  // first timestamp of each basket, ascending
      for (size_t i = 0; i < ts.size(); ++i)
        if (i == 0 || ts[i] - ts[i - 1] > session_gap_ms_) starts.push_back(ts[i]);
      for (HistEvent& e : all) {
        const auto b = std::upper_bound(starts.begin(), starts.end(), e.ts_ms) - starts.begin();
        const auto newer = static_cast<double>(starts.size()) - static_cast<double>(b);
        e.weight = static_cast<float>(e.weight * std::pow(rank_decay, newer));
      }
    }
    std::sort(all.begin(), all.end(),
              [](const HistEvent& a, const HistEvent& b) { return a.item < b.item; });
    std::vector<UserEntry> out;
    for (size_t i = 0; i < all.size();) {
      const uint32_t item = all[i].item;
      double sum = 0;
      uint32_t kind = kOther;
      for (; i < all.size() && all[i].item == item; ++i) {
        sum += all[i].weight * Decay(hl_ms, now_ms - all[i].ts_ms);
        kind = std::max(kind, all[i].kind);
      }
      const double x = std::min(1.0, sum / cfg_.saturation);
      if (x > 0) out.push_back({item, static_cast<float>(x), kind});
    }
    return out;
  }

  // The customer's vector: stored history plus the request's recent events
  // the model has not seen yet (fold-in), decayed to the request's time.
  std::vector<UserEntry> UserVector(const Model& m, const History* h, const Request& req) const {
    std::vector<HistEvent> extra;
    for (const tailor_event_view& ev : req.recent()) {
      const double w = WeightOf(ev.type);
      const auto idx = Find(m, ev.item_id);
      if (w > 0 && idx) extra.push_back({ev.ts_ms, *idx, KindOf(ev.type), static_cast<float>(w)});
    }
    return Strengths(h ? std::span<const HistEvent>(h->events) : std::span<const HistEvent>(),
                     extra, h ? h->last_ts_ms : INT64_MIN, req.now_ms(), history_half_life_ms_,
                     cfg_.history_rank_decay);
  }

  // raw[c] = predicted affinity of candidate c (0 for unknown ones).
  void RawScores(const Model& m, const std::vector<UserEntry>& x, const std::vector<int32_t>& cidx,
                 std::vector<float>& raw) const {
    const auto n = static_cast<Eigen::Index>(m.n());
    if (m.algorithm == Algorithm::kEase) {
      if (cidx.size() * kDenseRatio >= m.n()) {
        // Many candidates: one streaming pass over each history row.
        Eigen::VectorXf acc = Eigen::VectorXf::Zero(n);
        for (const UserEntry& e : x) acc.noalias() += e.x * m.ease.row(e.item).transpose();
        for (size_t c = 0; c < cidx.size(); ++c)
          if (cidx[c] >= 0) raw[c] = acc[cidx[c]];
      } else {
        // Few candidates: gather their entries from each contiguous history row.
        for (const UserEntry& e : x) {
          const float* row = m.ease.data() + static_cast<size_t>(e.item) * m.n();
          for (size_t c = 0; c < cidx.size(); ++c)
            if (cidx[c] >= 0) raw[c] += e.x * row[cidx[c]];
        }
      }
    } else {
      const Eigen::VectorXf u = FoldIn(m, x);
      const auto k = static_cast<size_t>(m.factors.cols());
      for (size_t c = 0; c < cidx.size(); ++c) {
        if (cidx[c] < 0) continue;
        const float* y = m.factors.data() + static_cast<size_t>(cidx[c]) * k;
        raw[c] = Eigen::Map<const Eigen::VectorXf>(y, static_cast<Eigen::Index>(k)).dot(u);
      }
    }
    // A customer's own items are candidates too; EASE's zero diagonal keeps
    // an item from predicting itself, so they score by their neighbours.
  }

  // The trending prior: trend_weight * scale * trend_c / trend_ref.
  void AddTrend(const Model& m, const std::vector<int32_t>& cidx, std::vector<float>& raw) const {
    if (!(cfg_.trend_weight > 0) || m.trend.empty()) return;
    const float f = static_cast<float>(cfg_.trend_weight) * m.scale / m.trend_ref;
    for (size_t c = 0; c < cidx.size(); ++c)
      if (cidx[c] >= 0) raw[c] += f * m.trend[static_cast<size_t>(cidx[c])];
  }

  // ALS user factor for the entries x: the exact least-squares solution of
  // (Y^T C Y + lambda I) u = Y^T C p, using the precomputed Y^T Y + lambda I.
  Eigen::VectorXf FoldIn(const Model& m, const std::vector<UserEntry>& x) const {
    Eigen::MatrixXd a = m.yty;
    const auto k = m.factors.cols();
    Eigen::VectorXd b = Eigen::VectorXd::Zero(k);
    for (const UserEntry& e : x) {
      const Eigen::VectorXd y = m.factors.row(e.item).transpose().cast<double>();
      const double c = 1 + cfg_.als_alpha * e.x;
      a.selfadjointView<Eigen::Lower>().rankUpdate(y, c - 1);
      b.noalias() += c * y;
    }
    return a.selfadjointView<Eigen::Lower>().llt().solve(b).cast<float>();
  }

  float Contribution(const Model& m, const UserEntry& e, uint32_t c) const {
    if (m.algorithm == Algorithm::kEase) return e.x * m.ease(e.item, c);
    return e.x * m.factors.row(e.item).dot(m.factors.row(c)) /
           std::max(1e-12f, m.factor_norm[e.item] * m.factor_norm[c]);
  }

  // "because you bought X" for the best kNamedReasons candidates, naming the
  // history item that contributes most; a generic reason for the rest.
  void SetReasons(const Model& m, const std::vector<UserEntry>& x, const std::vector<int32_t>& cidx,
                  std::span<const float> scores, Reasons& reasons) const {
    std::vector<uint32_t> order;
    for (size_t c = 0; c < cidx.size(); ++c)
      if (scores[c] > 0) order.push_back(static_cast<uint32_t>(c));
    const size_t named = std::min(order.size(), kNamedReasons);
    std::nth_element(order.begin(), order.begin() + static_cast<ptrdiff_t>(named), order.end(),
                     [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
    for (size_t r = 0; r < order.size(); ++r) {
      const uint32_t c = order[r];
      if (r >= named) {
        reasons.Set(c, "bought by customers with a history like yours");
        continue;
      }
      const UserEntry* best = &x.front();
      float best_v = -INFINITY;
      for (const UserEntry& e : x) {
        const float v = Contribution(m, e, static_cast<uint32_t>(cidx[c]));
        if (v > best_v) {
          best_v = v;
          best = &e;
        }
      }
      reasons.Set(c, std::string("because you ") + Verb(best->kind) + " " + Label(m, best->item));
    }
  }

  // The anchor item of similar-items mode: the context's "item" when the
  // model knows it, else on a configured placement the customer's newest
  // known item.
  std::optional<uint32_t> Anchor(const Model& m, const History* history, const Request& req) const {
    const std::string_view ctx = req.context_json();
    if (ctx.find("\"item\"") != std::string_view::npos) {  // skips parsing the common "{}"
      const auto j = nlohmann::json::parse(ctx, nullptr, false);
      if (j.is_object() && j.contains("item") && j["item"].is_string()) {
        const std::string id = j["item"].get<std::string>();
        if (auto idx = Find(m, id.c_str())) return idx;
      }
    }
    const std::string_view placement = req.placement();
    if (std::find(cfg_.similar_placements.begin(), cfg_.similar_placements.end(), placement) ==
        cfg_.similar_placements.end()) {
      return std::nullopt;
    }
    const auto recent = req.recent();
    for (auto it = recent.rbegin(); it != recent.rend(); ++it) {
      if (auto idx = Find(m, it->item_id)) return idx;
    }
    if (history != nullptr && !history->events.empty()) return history->events.back().item;
    return std::nullopt;
  }

  // Similar items: EASE's weight of the anchor for each candidate over the
  // row's maximum; ALS: cosine of the item factors. Both clamped to [0, 1].
  void ScoreSimilar(const Model& m, uint32_t a, const std::vector<int32_t>& cidx,
                    std::span<float> scores, Reasons& reasons) const {
    const std::string why = "customers who bought " + Label(m, a) + " also bought this";
    for (size_t c = 0; c < cidx.size(); ++c) {
      if (cidx[c] < 0 || static_cast<uint32_t>(cidx[c]) == a) continue;
      const auto j = static_cast<uint32_t>(cidx[c]);
      float s = 0;
      if (m.algorithm == Algorithm::kEase) {
        s = m.row_max[a] > 0 ? m.ease(a, j) / m.row_max[a] : 0.0f;
      } else {
        const float norm = m.factor_norm[a] * m.factor_norm[j];
        s = norm > 0 ? m.factors.row(a).dot(m.factors.row(j)) / norm : 0.0f;
      }
      scores[c] = std::isfinite(s) ? std::clamp(s, 0.0f, 1.0f) : 0.0f;
      if (scores[c] > 0) reasons.Set(c, why);
    }
  }

  // No usable history: the model's own popularity, s / (s + median) like the
  // popularity plugin, so that a CF-only deployment still ranks sensibly.
  void ScoreCold(const Model& m, const std::vector<int32_t>& cidx, std::span<float> scores,
                 Reasons& reasons) const {
    for (size_t c = 0; c < cidx.size(); ++c) {
      if (cidx[c] < 0) continue;
      const float s = m.popularity[static_cast<size_t>(cidx[c])];
      scores[c] = s > 0 ? s / (s + m.pop_median) : 0.0f;
      if (reasons.enabled() && scores[c] > 0) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "no history yet: popular, rank %u of %zu",
                      m.pop_rank[static_cast<size_t>(cidx[c])], m.n());
        reasons.Set(c, buf);
      }
    }
  }

  // Item-item cosine over customers, each customer counting once per item
  // (binary), the same for EASE and ALS: it says which items the same
  // people buy, the similarity that makes a top list less redundant (EASE's
  // own weights proved worse for that on the validation split; README.md).
  // Keeps each item's best k; costs sum over customers of (items)^2.
  static void BuildNeighbours(Model& m, const std::vector<std::vector<UserEntry>>& rows, size_t k) {
    const size_t n = m.n();
    m.nb_start.assign(k > 0 ? n + 1 : 0, 0);
    m.nb_item.clear();
    m.nb_sim.clear();
    if (k == 0) return;
    std::vector<std::vector<uint32_t>> item_rows(n);
    for (size_t u = 0; u < rows.size(); ++u)
      for (const UserEntry& e : rows[u]) item_rows[e.item].push_back(static_cast<uint32_t>(u));
    std::vector<float> count(n, 0.0f);
    std::vector<uint32_t> touched;
    std::vector<std::pair<float, uint32_t>> best;
    for (size_t i = 0; i < n; ++i) {
      touched.clear();
      for (uint32_t u : item_rows[i])
        for (const UserEntry& e : rows[u]) {
          if (count[e.item] == 0) touched.push_back(e.item);
          count[e.item] += 1;
        }
      best.clear();
      const double di = static_cast<double>(item_rows[i].size());
      for (uint32_t j : touched) {
        if (j != i)
          best.emplace_back(static_cast<float>(count[j] / std::sqrt(di * static_cast<double>(
                                                                             item_rows[j].size()))),
                            j);
        count[j] = 0;
      }
      const size_t keep = std::min(k, best.size());
      std::partial_sort(best.begin(), best.begin() + static_cast<ptrdiff_t>(keep), best.end(),
                        [](const auto& a, const auto& b) {
                          return a.first != b.first ? a.first > b.first : a.second < b.second;
                        });
      best.resize(keep);
      std::sort(best.begin(), best.end(),
                [](const auto& a, const auto& b) { return a.second < b.second; });
      for (const auto& [sim, j] : best) {
        m.nb_item.push_back(j);
        m.nb_sim.push_back(std::min(sim, 1.0f));
      }
      m.nb_start[i + 1] = m.nb_item.size();
    }
  }

  static void CheckNeighbours(const Model& m, const Reader& r) {
    if (m.nb_start.empty()) {
      if (!m.nb_item.empty() || !m.nb_sim.empty()) r.Fail("neighbours without offsets");
      return;
    }
    if (m.nb_start.size() != m.n() + 1 || m.nb_start.front() != 0 ||
        m.nb_start.back() != m.nb_item.size() || m.nb_sim.size() != m.nb_item.size())
      r.Fail("bad neighbour offsets");
    for (size_t i = 0; i < m.n(); ++i) {
      if (m.nb_start[i] > m.nb_start[i + 1]) r.Fail("bad neighbour offsets");
      for (uint64_t p = m.nb_start[i]; p < m.nb_start[i + 1]; ++p)
        if (m.nb_item[p] >= m.n() || !(m.nb_sim[p] >= 0 && m.nb_sim[p] <= 1))
          r.Fail("bad neighbour of item " + std::to_string(i));
    }
  }

  static void FinishPopularity(Model& m) {
    std::vector<uint32_t> order(m.n());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return m.popularity[a] > m.popularity[b]; });
    m.pop_rank.assign(m.n(), 0);
    for (size_t r = 0; r < order.size(); ++r) m.pop_rank[order[r]] = static_cast<uint32_t>(r + 1);
    m.pop_median = order.empty() ? 0 : m.popularity[order[order.size() / 2]];
    if (!(m.pop_median > 0)) m.pop_median = 1;
  }

  // trend_ref: the 10th best trend (or the best, with fewer items), so that
  // the top trending items have trend / trend_ref ~ 1.
  static void FinishTrend(Model& m) {
    m.trend_ref = 1;
    if (m.trend.empty()) return;
    std::vector<float> t = m.trend;
    const size_t k = std::min<size_t>(10, t.size()) - 1;
    std::nth_element(t.begin(), t.begin() + static_cast<ptrdiff_t>(k), t.end(),
                     std::greater<float>());
    if (std::isfinite(t[k]) && t[k] > 0) m.trend_ref = t[k];
  }

  // Read-only helpers derived from the matrices (not stored in the file).
  void Derive(Model& m) const {
    const auto n = static_cast<Eigen::Index>(m.n());
    if (m.algorithm == Algorithm::kEase) {
      m.row_max.resize(m.n());
      for (Eigen::Index i = 0; i < n; ++i)
        m.row_max[static_cast<size_t>(i)] = m.ease.row(i).maxCoeff();
    } else {
      m.factor_norm.resize(m.n());
      for (Eigen::Index i = 0; i < n; ++i)
        m.factor_norm[static_cast<size_t>(i)] = m.factors.row(i).norm();
      const Eigen::MatrixXd y = m.factors.cast<double>();
      m.yty = y.transpose() * y;
      m.yty.diagonal().array() += cfg_.als_lambda;
    }
  }

  // The personal score's scale: the median, over up to 500 training
  // customers (every k-th), of their 10th best raw score among items they do
  // not have. Deterministic, and independent of any request.
  void Calibrate(Model& m, const std::vector<std::vector<UserEntry>>& rows) const {
    const size_t step = std::max<size_t>(1, rows.size() / 500);
    std::vector<float> tenth;
    std::vector<int32_t> all(m.n());
    std::iota(all.begin(), all.end(), 0);
    std::vector<float> raw;
    for (size_t u = 0; u < rows.size(); u += step) {
      if (rows[u].empty()) continue;
      raw.assign(m.n(), 0.0f);
      RawScores(m, rows[u], all, raw);
      for (const UserEntry& e : rows[u]) raw[e.item] = -INFINITY;
      const size_t k = std::min<size_t>(10, raw.size()) - 1;
      std::nth_element(raw.begin(), raw.begin() + static_cast<ptrdiff_t>(k), raw.end(),
                       std::greater<float>());
      if (std::isfinite(raw[k]) && raw[k] > 0) tenth.push_back(raw[k]);
    }
    m.scale = 1;
    if (!tenth.empty()) {
      std::nth_element(tenth.begin(), tenth.begin() + static_cast<ptrdiff_t>(tenth.size() / 2),
                       tenth.end());
      m.scale = tenth[tenth.size() / 2];
    }
    if (!std::isfinite(m.scale) || !(m.scale > 0)) m.scale = 1;
  }

  // EASE: B = I - P diag(1 / diag(P)), P = (X^T X + lambda I)^-1, diag(B) = 0.
  // In float: the ridge keeps the Gram matrix well conditioned, and it halves
  // the memory (two n x n matrices while training, one while serving).
  void TrainEase(Model& m, const std::vector<std::vector<UserEntry>>& rows,
                 const std::vector<std::vector<UserEntry>>& baskets,
                 const NextBasketRows& next) const {
    const auto n = static_cast<Eigen::Index>(m.n());
    Eigen::MatrixXf g = Eigen::MatrixXf::Zero(n, n);
    auto accumulate = [&](const std::vector<UserEntry>& row, float weight) {
      const float scale =
          weight * std::pow(static_cast<float>(row.size()), -static_cast<float>(cfg_.user_norm));
      // Lower triangle by columns (contiguous in column-major); mirrored below.
      for (size_t a = 0; a < row.size(); ++a) {
        const float xa = row[a].x * scale;
        float* col = g.col(row[a].item).data();
        for (size_t b = a; b < row.size(); ++b) col[row[b].item] += xa * row[b].x;
      }
    };
    std::vector<float> reach(m.n(), 0.0f);  // customers per item
    for (const auto& row : rows) {
      accumulate(row, 1.0f);
      for (const UserEntry& e : row) reach[e.item] += 1;
    }
    for (const auto& row : baskets) accumulate(row, static_cast<float>(cfg_.basket_weight));
    // Rows are sorted by item, so b >= a means row index >= column index.
    g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
    const float drop = static_cast<float>(cfg_.ease_dropout / (1 - cfg_.ease_dropout));
    Eigen::VectorXf ridge = Eigen::VectorXf::Constant(n, static_cast<float>(cfg_.ease_lambda));
    if (cfg_.lambda_alpha != 0) {
      std::vector<float> sorted = reach;
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(sorted.size() / 2),
                       sorted.end());
      const float mid = 1 + sorted[sorted.size() / 2];
      for (Eigen::Index i = 0; i < n; ++i)
        ridge[i] *= std::pow((1 + reach[static_cast<size_t>(i)]) / mid,
                             static_cast<float>(cfg_.lambda_alpha));
    }
    g.diagonal().array() = g.diagonal().array() * (1 + drop) + ridge.array();
    Progress(3, "EASE Gram matrix " + std::to_string(n) + " x " + std::to_string(n) +
                    " built; inverting (Cholesky)");
    {
      Eigen::LLT<Eigen::Ref<Eigen::MatrixXf>> llt(g);  // factorises g in place
      if (llt.info() != Eigen::Success)
        throw std::runtime_error("EASE: Gram matrix not positive definite");
      m.ease = RowMajorF::Identity(n, n);
      llt.solveInPlace(m.ease);  // m.ease = P
    }
    g.resize(0, 0);
    // B(i, j) = -P(i, j) / P(j, j): scale each column, zero the diagonal.
    const Eigen::VectorXf inv_d = m.ease.diagonal().cwiseInverse();
    // Popularity penalty: column j over (popularity_j / median)^pop_beta.
    Eigen::VectorXf pop_scale = Eigen::VectorXf::Ones(n);
    if (cfg_.pop_beta != 0) {
      std::vector<float> sorted = m.popularity;
      std::nth_element(sorted.begin(), sorted.begin() + static_cast<ptrdiff_t>(sorted.size() / 2),
                       sorted.end());
      const float mid = std::max(1e-6f, sorted[sorted.size() / 2]);
      for (Eigen::Index j = 0; j < n; ++j)
        pop_scale[j] = std::pow(std::max(1e-6f, m.popularity[static_cast<size_t>(j)]) / mid,
                                -static_cast<float>(cfg_.pop_beta));
    }
    const Eigen::VectorXf col_scale = -inv_d.cwiseProduct(pop_scale);
    for (Eigen::Index i = 0; i < n; ++i) {
      m.ease.row(i).array() *= col_scale.transpose().array();
      m.ease(i, i) = 0;
    }
    if (cfg_.next_basket_weight > 0 && !next.weight.empty())
      AddNextBasket(m, rows, next, pop_scale);
    Derive(m);
    Progress(4, "EASE weights ready");
  }

  // Appends the next-basket rows of one customer's events (oldest first):
  // for every basket after the first (events less than session_gap apart)
  // holding items new to the customer, their items so far and those new
  // items. acc is an n-sized scratch vector of zeros, left zeroed.
  void AppendNextBasketRows(std::span<const HistEvent> ev, int64_t t_end, double hl_ms,
                            std::vector<double>& acc, NextBasketRows& out) const {
    std::vector<uint32_t> have, fresh;  // the customer's items so far; new ones
    for (size_t b = 0, e = 0; b < ev.size(); b = e) {
      for (e = b + 1; e < ev.size() && ev[e].ts_ms - ev[e - 1].ts_ms <= session_gap_ms_; ++e) {
      }
      fresh.clear();
      for (size_t i = b; i < e; ++i)
        if (acc[ev[i].item] == 0) fresh.push_back(ev[i].item);
      if (!have.empty() && !fresh.empty()) {
        std::sort(fresh.begin(), fresh.end());
        fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
        std::sort(have.begin(), have.end());
        std::vector<UserEntry> h;
        h.reserve(have.size());
        for (uint32_t i : have)
          h.push_back({i, static_cast<float>(std::min(1.0, acc[i] / cfg_.saturation)), kOther});
        out.history.push_back(std::move(h));
        out.fresh.push_back(fresh);
        out.weight.push_back(static_cast<float>(Decay(hl_ms, t_end - ev[b].ts_ms)));
      }
      for (size_t i = b; i < e; ++i) {
        if (acc[ev[i].item] == 0) have.push_back(ev[i].item);
        acc[ev[i].item] += ev[i].weight;  // weights are > 0
      }
    }
    for (uint32_t i : have) acc[i] = 0;
  }

  // A customer's typical rank-th best raw score under the item-item matrix b
  // (row j = what item j predicts): the median over up to 500 training
  // customers (every k-th, as in Calibrate) of their rank-th best score among
  // items they do not have, over those where it is positive; 0 when none is.
  template <typename Matrix>
  static float TypicalScore(const Matrix& b, const std::vector<std::vector<UserEntry>>& rows,
                            size_t rank) {
    const size_t step = std::max<size_t>(1, rows.size() / 500);
    std::vector<size_t> sample;
    for (size_t u = 0; u < rows.size(); u += step)
      if (!rows[u].empty()) sample.push_back(u);
    const auto n = b.cols();
    if (sample.empty() || n < 1) return 0;
    Eigen::MatrixXf x = Eigen::MatrixXf::Zero(static_cast<Eigen::Index>(sample.size()), n);
    for (size_t s = 0; s < sample.size(); ++s)
      for (const UserEntry& e : rows[sample[s]]) x(static_cast<Eigen::Index>(s), e.item) = e.x;
    const RowMajorF raw = x * b;
    std::vector<float> typical, r;
    for (size_t s = 0; s < sample.size(); ++s) {
      const auto row = raw.row(static_cast<Eigen::Index>(s));
      r.assign(row.data(), row.data() + n);
      for (const UserEntry& e : rows[sample[s]]) r[e.item] = -INFINITY;
      const size_t k = std::min<size_t>(rank, r.size()) - 1;
      std::nth_element(r.begin(), r.begin() + static_cast<ptrdiff_t>(k), r.end(),
                       std::greater<float>());
      if (std::isfinite(r[k]) && r[k] > 0) typical.push_back(r[k]);
    }
    if (typical.empty()) return 0;
    std::nth_element(typical.begin(), typical.begin() + static_cast<ptrdiff_t>(typical.size() / 2),
                     typical.end());
    return typical[typical.size() / 2];
  }

  // The next-basket model: W = (H^T D H + lambda I)^-1 H^T D Y over the
  // rows of `next` (H: history before the basket, Y: its new items, D: the
  // basket weights), columns scaled like EASE's (pop_scale), zero diagonal;
  // then B += next_basket_weight * (EASE's typical 10th best score / W's) * W
  // (the best scores where the 10th best is 0 for either, in tiny catalogs).
  // Costs two more n x n float matrices while training, none while serving.
  void AddNextBasket(Model& m, const std::vector<std::vector<UserEntry>>& rows,
                     const NextBasketRows& next, const Eigen::VectorXf& pop_scale) const {
    const auto n = static_cast<Eigen::Index>(m.n());
    Progress(3, "next-basket model: " + std::to_string(next.weight.size()) +
                    " baskets with new items; solving");
    Eigen::MatrixXf w = Eigen::MatrixXf::Zero(n, n);  // H^T D Y, then the weights
    {
      Eigen::MatrixXf g = Eigen::MatrixXf::Zero(n, n);
      for (size_t r = 0; r < next.weight.size(); ++r) {
        const float d = next.weight[r];
        const auto& h = next.history[r];
        for (size_t a = 0; a < h.size(); ++a) {  // lower triangle, as in TrainEase
          const float xa = d * h[a].x;
          float* col = g.col(h[a].item).data();
          for (size_t b = a; b < h.size(); ++b) col[h[b].item] += xa * h[b].x;
        }
        for (uint32_t j : next.fresh[r]) {
          float* col = w.col(j).data();
          for (const UserEntry& e : h) col[e.item] += d * e.x;
        }
      }
      g.triangularView<Eigen::StrictlyUpper>() = g.transpose();
      g.diagonal().array() += static_cast<float>(cfg_.next_basket_lambda);
      Eigen::LLT<Eigen::Ref<Eigen::MatrixXf>> llt(g);
      if (llt.info() != Eigen::Success)
        throw std::runtime_error("next-basket model: Gram matrix not positive definite");
      llt.solveInPlace(w);
    }
    for (Eigen::Index j = 0; j < n; ++j) w.col(j) *= pop_scale[j];
    w.diagonal().setZero();
    float ratio = 0;
    for (const size_t rank : {size_t{10}, size_t{1}}) {
      const float ease_typical = TypicalScore(m.ease, rows, rank);
      const float next_typical = TypicalScore(w, rows, rank);
      if (ease_typical > 0 && next_typical > 0) {
        ratio = ease_typical / next_typical;
        break;
      }
    }
    if (!(ratio > 0) || !std::isfinite(ratio)) {
      host_.Log(TAILOR_LOG_WARN, "next-basket model left out: no positive typical score");
      return;
    }
    m.ease.noalias() += (static_cast<float>(cfg_.next_basket_weight) * ratio) * w;
  }

  // Implicit ALS: alternate conjugate-gradient updates of user and item
  // factors (Takacs et al. 2011), a few CG steps per row, warm-started from
  // the previous iteration.
  void TrainAls(Model& m, const std::vector<std::vector<UserEntry>>& rows) const {
    const auto n = static_cast<Eigen::Index>(m.n());
    const int k = cfg_.als_factors;
    const auto users = static_cast<Eigen::Index>(rows.size());
    using Sparse = std::vector<std::vector<std::pair<uint32_t, float>>>;
    Sparse by_user(rows.size()), by_item(m.n());
    for (size_t u = 0; u < rows.size(); ++u) {
      for (const UserEntry& e : rows[u]) {
        by_user[u].emplace_back(e.item, e.x);
        by_item[e.item].emplace_back(static_cast<uint32_t>(u), e.x);
      }
    }
    std::mt19937 rng(cfg_.seed);
    std::normal_distribution<float> init(0, 0.01f);
    RowMajorF uf(users, k), itf(n, k);
    for (Eigen::Index i = 0; i < uf.size(); ++i) uf.data()[i] = init(rng);
    for (Eigen::Index i = 0; i < itf.size(); ++i) itf.data()[i] = init(rng);
    const auto alpha = static_cast<float>(cfg_.als_alpha);
    auto sweep = [&](RowMajorF& x, const RowMajorF& y, const Sparse& data) {
      Eigen::MatrixXf yty = (y.transpose() * y).eval();
      yty.diagonal().array() += static_cast<float>(cfg_.als_lambda);
      Eigen::VectorXf r(k), p(k), ap(k);
      for (size_t u = 0; u < data.size(); ++u) {
        auto xu = x.row(static_cast<Eigen::Index>(u));
        // r = b - A x, with A = YtY + lambda I + sum (c - 1) y y^T and b = sum c y.
        r.noalias() = -(yty * xu.transpose());
        for (const auto& [i, s] : data[u]) {
          const auto yi = y.row(i);
          const float c = 1 + alpha * s;
          r.noalias() += (c - (c - 1) * yi.dot(xu)) * yi.transpose();
        }
        p = r;
        float rs = r.squaredNorm();
        for (int step = 0; step < cfg_.als_cg_steps && rs > 1e-20f; ++step) {
          ap.noalias() = yty * p;
          for (const auto& [i, s] : data[u]) {
            const auto yi = y.row(i);
            ap.noalias() += (alpha * s) * yi.dot(p) * yi.transpose();
          }
          const float step_len = rs / p.dot(ap);
          xu.noalias() += step_len * p.transpose();
          r.noalias() -= step_len * ap;
          const float rs_new = r.squaredNorm();
          p = r + (rs_new / rs) * p;
          rs = rs_new;
        }
      }
    };
    for (int it = 0; it < cfg_.als_iterations; ++it) {
      sweep(uf, itf, by_user);
      sweep(itf, uf, by_item);
      Progress(3, "ALS iteration " + std::to_string(it + 1) + " of " +
                      std::to_string(cfg_.als_iterations));
    }
    m.factors = std::move(itf);
    Derive(m);
    Progress(4, "ALS factors ready");
  }

  const Config cfg_;
  const double history_half_life_ms_;
  const int64_t session_gap_ms_;  // events further apart start a new basket
  const Host& host_;              // owned by the SDK; outlives this instance
  // Null until the first Train or Load.
  std::atomic<std::shared_ptr<State>> state_;
};

}  // namespace

TAILOR_PLUGIN(Cf, "cf", "1.0.0");
