// dna: long-term customer traits ("DNA"). Traits are defined in dna.yaml as a
// label over the customer's history; a propensity model per trait
// (XGBoost trees, logistic fallback) learns each trait from the other history
// features, so customers with thin history still get calibrated scores.
// Candidates are scored through the traits that favour them. See README.md.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "dna/gbdt.h"
#include "dna/tabular.h"
#include "dna_traits.h"
#include "tailor/plugin_io.hpp"
#include "tailor/plugin_sdk.hpp"

namespace {

using tailor::sdk::Host;
using tailor::sdk::InvalidConfig;
using tailor::sdk::NotFound;
using tailor::sdk::Reasons;
using tailor::sdk::Request;
namespace dna = tailor::dna;

constexpr int64_t kDayMs = 86400000;
constexpr char kMagic[] = "tailor-dna-model 1\n";

// ---------------------------------------------------------------------------
// Features of one customer, from events and the catalog.

const std::vector<std::string>& FeatureNames() {
  static const std::vector<std::string> kNames = {"n_events",        "n_views",
                                                  "n_purchases",     "n_carts",
                                                  "n_returns",       "n_chats",
                                                  "log_total_value", "avg_order_value",
                                                  "max_price_paid",  "avg_price_viewed",
                                                  "days_since_last", "tenure_days",
                                                  "active_days",     "purchase_per_view",
                                                  "return_rate",     "discount_share",
                                                  "mean_discount",   "night_share",
                                                  "weekend_share",   "morning_share",
                                                  "evening_share",   "mean_quantity",
                                                  "multi_qty_share", "top_category_share",
                                                  "top_brand_share", "distinct_categories",
                                                  "distinct_brands", "december_share"};
  return kNames;
}

int FeatureIndex(std::string_view name) {
  const auto& n = FeatureNames();
  auto it = std::find(n.begin(), n.end(), name);
  return it == n.end() ? -1 : static_cast<int>(it - n.begin());
}

struct ItemInfo {
  std::string category, brand;
  double price = 0;
};
using Catalog = std::unordered_map<std::string, ItemInfo>;

// Running sums for one customer; Finish() turns them into FeatureNames().
struct Acc {
  double events = 0, views = 0, purchases = 0, carts = 0, returns = 0, chats = 0;
  double value = 0, max_paid = 0, viewed_price = 0, viewed_priced = 0;
  double discounted = 0, discount_sum = 0, night = 0, weekend = 0, morning = 0, evening = 0;
  double qty = 0, multi = 0, december = 0;
  int64_t first = INT64_MAX, last = INT64_MIN;
  std::set<int64_t> days;
  std::map<std::string, double> categories, brands;

  void Add(const tailor_event_view& e, const Catalog& cat) {
    ++events;
    first = std::min(first, e.ts_ms);
    last = std::max(last, e.ts_ms);
    days.insert(e.ts_ms / kDayMs);
    const int64_t ms_of_day = ((e.ts_ms % kDayMs) + kDayMs) % kDayMs;
    const int hour = static_cast<int>(ms_of_day / 3600000);
    night += hour >= 22 || hour < 5;  // UTC: the store keeps UTC times
    morning += hour >= 5 && hour < 12;
    evening += hour >= 17 && hour < 22;
    const int64_t day = e.ts_ms / kDayMs;
    const int64_t weekday = ((day % 7) + 7 + 3) % 7;  // 1970-01-01 was a Thursday (3)
    weekend += weekday >= 5;
    const std::string_view type = e.type != nullptr ? e.type : "";
    const ItemInfo* item = nullptr;
    if (e.item_id != nullptr) {
      auto it = cat.find(e.item_id);
      if (it != cat.end()) item = &it->second;
    }
    if (item != nullptr) {
      if (!item->category.empty()) categories[item->category] += 1;
      if (!item->brand.empty()) brands[item->brand] += 1;
    }
    if (type == "view") {
      ++views;
      if (item != nullptr && item->price > 0) viewed_price += item->price, ++viewed_priced;
    } else if (type == "add_to_cart") {
      ++carts;
    } else if (type == "return") {
      ++returns;
    } else if (type == "chat") {
      ++chats;
    } else if (type == "purchase") {
      ++purchases;
      value += e.value;
      const double q = e.quantity > 0 ? e.quantity : 1;
      qty += q;
      multi += q > 1;
      if (day % 365 >= 330 || day % 365 < 0) december += 1;  // roughly Nov 26 - Dec 31
      // The event view carries no properties, so the discount is what the
      // price paid says against the catalog price.
      if (item != nullptr && item->price > 0 && e.value > 0) {
        const double d = std::clamp(1 - e.value / (item->price * q), 0.0, 1.0);
        discount_sum += d;
        discounted += d >= 0.1;
        max_paid = std::max(max_paid, e.value / q);
      }
    }
  }

  std::vector<float> Finish(int64_t now_ms) const {
    auto share = [](double a, double b) { return b > 0 ? a / b : std::nan(""); };
    auto top = [](const std::map<std::string, double>& m) {
      double best = 0, sum = 0;
      for (const auto& [k, v] : m) best = std::max(best, v), sum += v;
      return sum > 0 ? best / sum : std::nan("");
    };
    const bool any = events > 0;
    std::vector<double> f = {events,
                             views,
                             purchases,
                             carts,
                             returns,
                             chats,
                             std::log1p(value),
                             share(value, purchases),
                             purchases > 0 ? max_paid : std::nan(""),
                             share(viewed_price, viewed_priced),
                             any ? static_cast<double>(now_ms - last) / kDayMs : std::nan(""),
                             any ? static_cast<double>(now_ms - first) / kDayMs : std::nan(""),
                             static_cast<double>(days.size()),
                             share(purchases, views),
                             share(returns, purchases),
                             share(discounted, purchases),
                             share(discount_sum, purchases),
                             share(night, events),
                             share(weekend, events),
                             share(morning, events),
                             share(evening, events),
                             share(qty, purchases),
                             share(multi, purchases),
                             top(categories),
                             top(brands),
                             static_cast<double>(categories.size()),
                             static_cast<double>(brands.size()),
                             share(december, purchases)};
    return std::vector<float>(f.begin(), f.end());
  }
};

// ---------------------------------------------------------------------------
// dna.yaml

struct Trait {
  std::string name, description, where;
  int label_feature = -1;
  double threshold = 0;
  bool at_least = true;       // label = feature >= threshold (else <=)
  int min_events = 1;         // customers with fewer events have no label
  std::vector<int> excluded;  // features the model must not see (the label's own)
  double high = 0.6, medium = 0.3;
  std::set<std::string, std::less<>> offers, categories;          // favoured
  std::set<std::string, std::less<>> not_offers, not_categories;  // disfavoured
};

struct DnaConfig {
  std::vector<Trait> traits;
  double neutral = 0.5;
  // Candidates no trait speaks about: no opinion by default, so P is left to
  // the other plugins (false: they score `neutral`).
  bool abstain = true;
  std::string file;
  std::string fingerprint;  // the file's text: a saved model must match it
};

std::string Where(const std::string& file, const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

DnaConfig ParseDnaText(const std::string& file, std::string text);

DnaConfig ParseDna(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InvalidConfig(file + ": cannot open (" + std::strerror(errno) + ")");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseDnaText(file, ss.str());
}

// file names the text in messages.
DnaConfig ParseDnaText(const std::string& file, std::string text) {
  DnaConfig cfg;
  cfg.file = file;
  cfg.fingerprint = std::move(text);
  YAML::Node root;
  try {
    root = YAML::Load(cfg.fingerprint);
  } catch (const YAML::Exception& e) {
    throw InvalidConfig(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  std::vector<std::string> errors;
  auto err = [&](const YAML::Node& n, const std::string& path, const std::string& msg) {
    errors.push_back(Where(file, n) + ": " + path + ": " + msg);
  };
  auto unknown = [&](const YAML::Node& map, const std::string& path,
                     std::initializer_list<const char*> valid) {
    for (const auto& kv : map) {
      const std::string k = kv.first.Scalar();
      std::string list;
      bool ok = false;
      for (const char* v : valid) ok |= k == v, list += (list.empty() ? "" : ", ") + std::string(v);
      if (!ok)
        err(kv.first, path.empty() ? k : path + "." + k, "unknown key (valid: " + list + ")");
    }
  };
  auto number = [&](const YAML::Node& n, const std::string& path, double lo, double hi,
                    double* out) {
    double v;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || v < lo || v > hi) {
      std::ostringstream os;
      os << "expected a number between " << lo << " and " << hi;
      return err(n, path, os.str());
    }
    *out = v;
  };
  auto feature = [&](const YAML::Node& n, const std::string& path) {
    const int i = n.IsScalar() ? FeatureIndex(n.Scalar()) : -1;
    if (i < 0) {
      // The closest name by shared prefix; the full list is in the README.
      const std::string given = n.IsScalar() ? n.Scalar() : "";
      std::string best;
      size_t best_len = 0;
      for (const auto& f : FeatureNames()) {
        size_t k = 0;
        while (k < f.size() && k < given.size() && f[k] == given[k]) ++k;
        if (k > best_len) best_len = k, best = f;
      }
      err(n, path,
          "unknown feature '" + given + "' (" +
              (best.empty() ? "" : "did you mean " + best + "? ") +
              "features: plugins/dna/README.md#features)");
    }
    return i;
  };
  auto strings = [&](const YAML::Node& n, const std::string& path,
                     std::set<std::string, std::less<>>* out) {
    if (!n.IsSequence()) return err(n, path, "expected a list of strings");
    for (const auto& e : n) out->insert(e.Scalar());
  };
  if (!root.IsMap()) throw InvalidConfig(Where(file, root) + ": expected a mapping with 'traits'");
  unknown(root, "", {"neutral", "abstain", "traits"});
  if (root["neutral"]) number(root["neutral"], "neutral", 0, 1, &cfg.neutral);
  if (YAML::Node a = root["abstain"]) {
    if (!a.IsScalar() || (a.Scalar() != "true" && a.Scalar() != "false"))
      err(a, "abstain", "expected true or false");
    else
      cfg.abstain = a.Scalar() == "true";
  }
  const YAML::Node traits = root["traits"];
  if (!traits || !traits.IsMap()) {
    err(traits ? traits : root, "traits", "expected a mapping of trait name -> definition");
  } else {
    for (const auto& kv : traits) {
      Trait t;
      t.name = kv.first.Scalar();
      t.where = Where(file, kv.first);
      const std::string path = "traits." + t.name;
      const YAML::Node d = kv.second;
      if (!d.IsMap()) {
        err(d, path, "expected a mapping");
        continue;
      }
      unknown(
          d, path,
          {"description", "label", "min_events", "exclude", "buckets", "favours", "disfavours"});
      if (d["description"]) t.description = d["description"].Scalar();
      const YAML::Node l = d["label"];
      if (!l || !l.IsMap()) {
        err(l ? l : kv.first, path + ".label", "required: {feature: NAME, at_least|at_most: X}");
      } else {
        unknown(l, path + ".label", {"feature", "at_least", "at_most"});
        if (l["feature"]) {
          t.label_feature = feature(l["feature"], path + ".label.feature");
        } else {
          err(l, path + ".label.feature", "required key is missing");
        }
        if (l["at_least"] && l["at_most"]) {
          err(l, path + ".label", "set one of at_least, at_most");
        } else if (l["at_least"] || l["at_most"]) {
          t.at_least = static_cast<bool>(l["at_least"]);
          number(t.at_least ? l["at_least"] : l["at_most"],
                 path + ".label." + (t.at_least ? "at_least" : "at_most"), -1e12, 1e12,
                 &t.threshold);
        } else {
          err(l, path + ".label", "set one of at_least, at_most");
        }
      }
      if (d["min_events"]) {
        double v = 1;
        number(d["min_events"], path + ".min_events", 0, 1e6, &v);
        t.min_events = static_cast<int>(v);
      }
      if (t.label_feature >= 0) t.excluded.push_back(t.label_feature);
      if (const YAML::Node x = d["exclude"]) {
        if (!x.IsSequence()) {
          err(x, path + ".exclude", "expected a list of feature names");
        } else {
          for (const auto& e : x) {
            const int i = feature(e, path + ".exclude");
            if (i >= 0) t.excluded.push_back(i);
          }
        }
      }
      if (const YAML::Node b = d["buckets"]) {
        if (!b.IsMap()) {
          err(b, path + ".buckets", "expected {high: X, medium: Y}");
        } else {
          unknown(b, path + ".buckets", {"high", "medium"});
          if (b["high"]) number(b["high"], path + ".buckets.high", 0, 1, &t.high);
          if (b["medium"]) number(b["medium"], path + ".buckets.medium", 0, 1, &t.medium);
          if (t.medium > t.high) err(b, path + ".buckets", "medium must not exceed high");
        }
      }
      for (const char* part : {"favours", "disfavours"}) {
        const YAML::Node f = d[part];
        if (!f) continue;
        const std::string fp = path + "." + part;
        if (!f.IsMap()) {
          err(f, fp, "expected {offers: [...], categories: [...]}");
          continue;
        }
        unknown(f, fp, {"offers", "categories"});
        const bool fav = std::strcmp(part, "favours") == 0;
        if (f["offers"]) strings(f["offers"], fp + ".offers", fav ? &t.offers : &t.not_offers);
        if (f["categories"]) {
          strings(f["categories"], fp + ".categories", fav ? &t.categories : &t.not_categories);
        }
      }
      cfg.traits.push_back(std::move(t));
    }
  }
  if (!errors.empty()) {
    // In file order, whichever check found them.
    auto line_of = [&](const std::string& e) {
      return std::atoi(e.c_str() + file.size() + 1) * 10000 +
             std::atoi(e.c_str() + e.find(':', file.size() + 1) + 1);
    };
    std::stable_sort(errors.begin(), errors.end(),
                     [&](const auto& a, const auto& b) { return line_of(a) < line_of(b); });
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    throw InvalidConfig(msg);
  }
  return cfg;
}

// ---------------------------------------------------------------------------
// One trait's model: trees when there is enough labelled history, else the
// logistic, else the (smoothed) base rate.

struct TraitModel {
  enum Kind : uint8_t { kPrior = 0, kLogistic = 1, kGbdt = 2 } kind = kPrior;
  double prior = 0.5;
  std::vector<int> inputs;  // feature indices the model sees
  dna::Gbdt gbdt;
  dna::Logistic logistic;
};

dna::Matrix Select(const dna::Matrix& all, const std::vector<int>& cols) {
  dna::Matrix m;
  m.rows = all.rows;
  m.cols = cols.size();
  m.v.resize(m.rows * m.cols);
  for (size_t r = 0; r < m.rows; ++r)
    for (size_t c = 0; c < cols.size(); ++c) m.v[r * m.cols + c] = all.row(r)[cols[c]];
  return m;
}

struct Scored {
  std::vector<float> p;                       // per trait
  std::vector<std::string> explain;           // per trait: "+feature -feature"
  std::vector<std::vector<std::string>> top;  // per trait: the same features, unsigned
};

class Dna {
 public:
  static std::unique_ptr<Dna> Create(std::string_view config_json, const Host& host) {
    const auto j = nlohmann::json::parse(config_json, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw InvalidConfig("dna config: expected a JSON object");
    std::string file;  // empty: the traits built in (config/dna.yaml at build time)
    int min_rows = 200;
    for (const auto& [k, v] : j.items()) {
      if (k == "traits" && v.is_string()) {
        file = v.get<std::string>();
      } else if (k == "min_rows" && v.is_number_integer() && v.get<int>() >= 10) {
        min_rows = v.get<int>();
      } else {
        throw InvalidConfig("dna config: bad key '" + k +
                            "' (known: traits (a file path), min_rows (an integer >= 10))");
      }
    }
    return std::unique_ptr<Dna>(
        new Dna(file.empty() ? ParseDnaText("dna.yaml (built in)", kBuiltInTraits) : ParseDna(file),
                min_rows, host));
  }

  void Score(const Request& req, std::span<const tailor_candidate> candidates,
             std::span<float> scores, Reasons& reasons) const {
    const float untouched = cfg_.abstain ? TAILOR_SCORE_ABSTAIN : static_cast<float>(cfg_.neutral);
    for (float& s : scores) s = untouched;
    if (models_.empty() || candidates.empty()) return;
    Scored own;
    const Scored* sc = nullptr;
    if (auto id = req.customer_id()) {
      auto it = customers_.find(std::string(*id));
      if (it != customers_.end()) sc = &it->second;
    }
    if (sc == nullptr && req.recent().empty()) sc = &no_history_;
    if (sc == nullptr) {
      // Unknown to the last training: generalise from whatever the request's
      // recent events show (thin history still gets a score).
      Acc acc;
      for (const auto& e : req.recent()) acc.Add(e, catalog_);
      dna::Matrix x;
      x.rows = 1;
      x.cols = FeatureNames().size();
      x.v = acc.Finish(req.now_ms());
      own = Predict(x, reasons.enabled())[0];
      sc = &own;
    }
    for (size_t i = 0; i < candidates.size(); ++i) {
      const tailor_candidate& c = candidates[i];
      auto in = [](const auto& set, const char* v) { return v != nullptr && set.count(v) > 0; };
      double sum = 0;
      int n = 0;
      std::string why;
      for (size_t t = 0; t < cfg_.traits.size(); ++t) {
        const Trait& tr = cfg_.traits[t];
        const double p = sc->p[t];
        double s;
        if (in(tr.offers, c.offer_id) || in(tr.categories, c.category)) {
          s = p;
        } else if (in(tr.not_offers, c.offer_id) || in(tr.not_categories, c.category)) {
          s = 1 - p;
        } else {
          continue;
        }
        sum += s;
        ++n;
        if (!reasons.enabled()) continue;  // a scoring pass: reasons come later, for a few
        char buf[96];
        std::snprintf(buf, sizeof buf, "%s%s %s (%.2f)", why.empty() ? "" : "; ", tr.name.c_str(),
                      Bucket(tr, p), p);
        why += buf;
        if (!sc->explain[t].empty()) why += ": " + sc->explain[t];
      }
      if (n == 0) continue;
      scores[i] = static_cast<float>(sum / n);
      reasons.Set(i, why);
    }
  }

  // ABI 1.1: the customer's traits for rules and `why`, from the scores
  // computed at train / load: {"customer": {"dna": {trait: bucket}, "dna_p":
  // {trait: p}, "dna_top": {trait: [feature, ...]}}}. Nothing for an
  // anonymous customer or one the last training did not see.
  std::string Annotate(const Request& req) const {
    if (models_.empty()) return {};
    const auto id = req.customer_id();
    if (!id) return {};
    auto it = customers_.find(std::string(*id));
    if (it == customers_.end()) return {};
    const Scored& sc = it->second;
    nlohmann::json buckets = nlohmann::json::object(), probs = nlohmann::json::object(),
                   top = nlohmann::json::object();
    for (size_t t = 0; t < cfg_.traits.size(); ++t) {
      const Trait& tr = cfg_.traits[t];
      buckets[tr.name] = Bucket(tr, sc.p[t]);
      probs[tr.name] = std::round(static_cast<double>(sc.p[t]) * 1e4) / 1e4;
      top[tr.name] = sc.top[t];
    }
    return nlohmann::json{{"customer", {{"dna", buckets}, {"dna_p", probs}, {"dna_top", top}}}}
        .dump();
  }

  // Erasure: the customer's precomputed trait scores go.
  void Forget(std::string_view customer_id) { customers_.erase(std::string(customer_id)); }

  void Train() {
    std::vector<std::string> ids;
    dna::Matrix x = Features(&ids);
    host_.Log(TAILOR_LOG_INFO, "features for " + std::to_string(ids.size()) + " customers; " +
                                   std::to_string(cfg_.traits.size()) + " traits to train");
    std::vector<TraitModel> models;
    for (size_t t = 0; t < cfg_.traits.size(); ++t) {
      host_.Log(TAILOR_LOG_INFO, "[" + std::to_string(t + 1) + "/" +
                                     std::to_string(cfg_.traits.size()) + "] training " +
                                     cfg_.traits[t].name);
      models.push_back(Fit(cfg_.traits[t], x));
    }
    models_ = std::move(models);
    Rescore(x, ids);
  }

  // Format: magic, then the dna.yaml text it was trained with (length-
  // prefixed), then per trait: kind, prior, inputs, model bytes.
  void Save(const std::string& path) const {
    std::string out(kMagic);
    auto put_str = [&](const std::string& s) {
      const uint64_t n = s.size();
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      out += s;
    };
    put_str(cfg_.fingerprint);
    const uint64_t n = models_.size();
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    for (const TraitModel& m : models_) {
      out += static_cast<char>(m.kind);
      out.append(reinterpret_cast<const char*>(&m.prior), sizeof m.prior);
      std::string inputs;
      for (int i : m.inputs) inputs += std::to_string(i) + ",";
      put_str(inputs);
      put_str(m.kind == TraitModel::kGbdt       ? m.gbdt.Serialize()
              : m.kind == TraitModel::kLogistic ? m.logistic.Serialize()
                                                : std::string());
    }
    tailor::sdk::SaveModelFile(path, [&](std::ostream& f) { f << out; });
  }

  void Load(const std::string& path) {
    const std::string in = tailor::sdk::ReadModelFile(path);
    if (in.rfind(kMagic, 0) != 0) throw std::runtime_error(path + ": not a dna model file");
    size_t pos = sizeof kMagic - 1;
    auto fail = [&](const std::string& why) -> std::runtime_error {
      return std::runtime_error(path + ": corrupt dna model file: " + why);
    };
    auto get_u64 = [&]() {
      uint64_t v;
      if (pos + sizeof v > in.size()) throw fail("truncated");
      std::memcpy(&v, in.data() + pos, sizeof v);
      pos += sizeof v;
      return v;
    };
    auto get_str = [&]() {
      const uint64_t n = get_u64();
      if (n > in.size() - pos) throw fail("truncated");
      std::string s = in.substr(pos, n);
      pos += n;
      return s;
    };
    if (get_str() != cfg_.fingerprint) {
      throw InvalidConfig(path + ": trained with another " + cfg_.file + "; retrain");
    }
    if (get_u64() != cfg_.traits.size()) throw fail("trait count");
    std::vector<TraitModel> models;
    try {
      for (size_t t = 0; t < cfg_.traits.size(); ++t) {
        TraitModel m;
        if (pos + 1 + sizeof m.prior > in.size()) throw fail("truncated");
        m.kind = static_cast<TraitModel::Kind>(in[pos++]);
        std::memcpy(&m.prior, in.data() + pos, sizeof m.prior);
        pos += sizeof m.prior;
        std::stringstream is(get_str());
        for (std::string tok; std::getline(is, tok, ',');) m.inputs.push_back(std::stoi(tok));
        const std::string bytes = get_str();
        if (m.kind == TraitModel::kGbdt) {
          m.gbdt = dna::Gbdt::Deserialize(bytes);
        } else if (m.kind == TraitModel::kLogistic) {
          m.logistic = dna::Logistic::Deserialize(bytes);
        } else if (m.kind != TraitModel::kPrior) {
          throw fail("model kind");
        }
        models.push_back(std::move(m));
      }
    } catch (const std::invalid_argument&) {
      throw fail("inputs");
    }
    std::vector<std::string> ids;
    dna::Matrix x = Features(&ids);
    models_ = std::move(models);
    Rescore(x, ids);
  }

 private:
  Dna(DnaConfig cfg, int min_rows, const Host& host)
      : cfg_(std::move(cfg)), min_rows_(min_rows), host_(host) {}

  static const char* Bucket(const Trait& t, double p) {
    return p >= t.high ? "high" : p >= t.medium ? "medium" : "low";
  }

  // One feature row per customer in the store (ids in *ids).
  dna::Matrix Features(std::vector<std::string>* ids) {
    Catalog cat;
    host_.ForEachItem([&](const tailor_item_view& it) {
      cat[it.item_id] =
          ItemInfo{it.category ? it.category : "", it.brand ? it.brand : "", it.price};
    });
    std::unordered_map<std::string, Acc> acc;
    int64_t now = 0;
    host_.ForEachEvent(0, [&](const tailor_event_view& e) {
      acc[e.customer_id].Add(e, cat);
      now = std::max(now, e.ts_ms);
    });
    catalog_ = std::move(cat);
    ids->clear();
    for (const auto& [id, a] : acc) ids->push_back(id);
    std::sort(ids->begin(), ids->end());  // deterministic row order
    dna::Matrix x;
    x.rows = ids->size();
    x.cols = FeatureNames().size();
    x.v.reserve(x.rows * x.cols);
    // Recency is measured from the newest stored event, so that a replayed
    // or old store trains the same way at any wall-clock time.
    for (const auto& id : *ids) {
      const auto f = acc[id].Finish(now);
      x.v.insert(x.v.end(), f.begin(), f.end());
    }
    return x;
  }

  TraitModel Fit(const Trait& t, const dna::Matrix& x) {
    TraitModel m;
    for (int i = 0; i < static_cast<int>(x.cols); ++i)
      if (std::find(t.excluded.begin(), t.excluded.end(), i) == t.excluded.end())
        m.inputs.push_back(i);
    std::vector<size_t> rows;
    std::vector<float> y;
    const auto n_events = static_cast<size_t>(FeatureIndex("n_events"));
    for (size_t r = 0; r < x.rows; ++r) {
      const float v = x.row(r)[t.label_feature];
      if (std::isnan(v) || x.row(r)[n_events] < static_cast<float>(t.min_events)) continue;
      rows.push_back(r);
      y.push_back((t.at_least ? v >= t.threshold : v <= t.threshold) ? 1.0f : 0.0f);
    }
    const double pos = std::accumulate(y.begin(), y.end(), 0.0);
    m.prior = (pos + 1) / (static_cast<double>(y.size()) + 2);  // Laplace
    dna::Matrix lx;
    lx.rows = rows.size();
    lx.cols = m.inputs.size();
    for (size_t r : rows)
      for (int c : m.inputs) lx.v.push_back(x.row(r)[c]);
    const double neg = static_cast<double>(y.size()) - pos;
    char buf[256];
    if (pos < 5 || neg < 5) {
      std::snprintf(buf, sizeof buf, "%zu labelled customers (%g positive): base rate %.3f",
                    y.size(), pos, m.prior);
      fit_report_[t.name] = buf;
      host_.Log(TAILOR_LOG_WARN, t.name + ": " + buf);
      return m;
    }
    // Report: both models on a held-out fifth of the labelled customers.
    std::vector<size_t> order(rows.size());
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937_64(11));
    const size_t n_test = order.size() / 5;
    auto part = [&](size_t from, size_t to, dna::Matrix* px, std::vector<float>* py) {
      px->rows = to - from;
      px->cols = lx.cols;
      for (size_t k = from; k < to; ++k) {
        px->v.insert(px->v.end(), lx.row(order[k]), lx.row(order[k]) + lx.cols);
        py->push_back(y[order[k]]);
      }
    };
    dna::Matrix tx, fx;
    std::vector<float> ty, fy;
    part(0, n_test, &tx, &ty);
    part(n_test, order.size(), &fx, &fy);
    const bool trees = static_cast<int>(rows.size()) >= min_rows_;
    dna::GbdtOptions go;
    go.max_rounds = 300;
    go.early_stopping = 30;
    go.threads = 1;
    std::string report;
    const double test_pos = std::accumulate(ty.begin(), ty.end(), 0.0);
    const bool can_report = n_test >= 10 && test_pos > 0 && test_pos < static_cast<double>(n_test);
    if (can_report) {
      const auto pl = dna::Logistic::Train(fx, fy).Predict(tx);
      std::snprintf(buf, sizeof buf, "held-out logistic AUC %.3f ECE %.3f", dna::Auc(ty, pl),
                    dna::CalibrationError(ty, pl));
      report = buf;
      if (trees) {
        const auto pg = dna::Gbdt::Train(fx, fy, go).Predict(tx);
        std::snprintf(buf, sizeof buf, ", gbdt AUC %.3f ECE %.3f", dna::Auc(ty, pg),
                      dna::CalibrationError(ty, pg));
        report += buf;
      }
    }
    m.logistic = dna::Logistic::Train(lx, y);
    m.kind = TraitModel::kLogistic;
    if (trees) {
      m.gbdt = dna::Gbdt::Train(lx, y, go);
      m.kind = TraitModel::kGbdt;
    }
    std::snprintf(buf, sizeof buf, "%zu labelled customers, %.1f%% positive, served %s; ", y.size(),
                  100 * pos / static_cast<double>(y.size()), trees ? "gbdt" : "logistic");
    fit_report_[t.name] = buf + (report.empty() ? "too few to report AUC" : report);
    host_.Log(TAILOR_LOG_INFO, t.name + ": " + fit_report_[t.name]);
    return m;
  }

  // Probabilities and explanations for every row of x (all features).
  // explain: also the top contributing features (SHAP for the GBDT, the
  // costly part); a scoring pass without reasons skips them.
  std::vector<Scored> Predict(const dna::Matrix& x, bool explain = true) const {
    std::vector<Scored> out(x.rows);
    for (auto& s : out) {
      s.p.resize(models_.size());
      s.explain.resize(models_.size());
      s.top.resize(models_.size());
    }
    const auto& names = FeatureNames();
    for (size_t t = 0; t < models_.size(); ++t) {
      const TraitModel& m = models_[t];
      if (m.kind == TraitModel::kPrior) {
        for (auto& s : out) s.p[t] = static_cast<float>(m.prior), s.explain[t] = "base rate";
        continue;
      }
      const dna::Matrix sx = Select(x, m.inputs);
      std::vector<double> p;
      std::vector<float> contrib;  // rows x (inputs + 1)
      size_t stride = m.inputs.size() + 1;
      if (m.kind == TraitModel::kGbdt) {
        p = m.gbdt.Predict(sx);
        if (explain) contrib = m.gbdt.Contributions(sx);
      } else {
        p = m.logistic.Predict(sx);
        if (explain) contrib.resize(sx.rows * stride);
        std::vector<float> c;
        for (size_t r = 0; r < sx.rows && explain; ++r) {
          m.logistic.Contributions(sx.row(r), &c);
          std::copy(c.begin(), c.end(), contrib.begin() + static_cast<ptrdiff_t>(r * stride));
        }
      }
      for (size_t r = 0; r < x.rows; ++r) {
        out[r].p[t] = static_cast<float>(p[r]);
        if (!explain) continue;
        // The two features pushing hardest, with their sign.
        std::vector<size_t> idx(m.inputs.size());
        std::iota(idx.begin(), idx.end(), 0);
        const float* c = contrib.data() + r * stride;
        std::partial_sort(idx.begin(), idx.begin() + std::min<size_t>(2, idx.size()), idx.end(),
                          [&](size_t a, size_t b) { return std::abs(c[a]) > std::abs(c[b]); });
        std::string e;
        for (size_t k = 0; k < std::min<size_t>(2, idx.size()); ++k) {
          if (c[idx[k]] == 0) break;
          const std::string& name = names[static_cast<size_t>(m.inputs[idx[k]])];
          e += (e.empty() ? "" : " ") + std::string(c[idx[k]] > 0 ? "+" : "-") + name;
          out[r].top[t].push_back(name);
        }
        out[r].explain[t] = e;
      }
    }
    return out;
  }

  // Scores every customer; logs the per-trait report: the held-out AUC and
  // calibration error of the last training (when this process trained) and
  // the bucket sizes.
  void Rescore(const dna::Matrix& x, const std::vector<std::string>& ids) {
    std::vector<Scored> s = Predict(x);
    // A customer with no history at all always gets the same prediction:
    // computed once here, not per request (prediction with SHAP is ~1 ms).
    {
      Acc none;
      dna::Matrix e;
      e.rows = 1;
      e.cols = FeatureNames().size();
      e.v = none.Finish(0);
      no_history_ = Predict(e)[0];
    }
    customers_.clear();
    for (size_t r = 0; r < ids.size(); ++r) customers_.emplace(ids[r], std::move(s[r]));
    host_.Log(TAILOR_LOG_INFO, "scored " + std::to_string(ids.size()) + " customers");
    for (size_t t = 0; t < cfg_.traits.size(); ++t) {
      const Trait& tr = cfg_.traits[t];
      int64_t h = 0, md = 0, l = 0;
      double sum = 0;
      for (const auto& [id, sc] : customers_) {
        const char* b = Bucket(tr, sc.p[t]);
        (b[0] == 'h' ? h : b[0] == 'm' ? md : l) += 1;
        sum += sc.p[t];
      }
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "buckets high %lld / medium %lld / low %lld, mean p %.3f (model %s)",
                    static_cast<long long>(h), static_cast<long long>(md),
                    static_cast<long long>(l), customers_.empty() ? 0.0 : sum / customers_.size(),
                    models_[t].kind == TraitModel::kGbdt       ? "gbdt"
                    : models_[t].kind == TraitModel::kLogistic ? "logistic"
                                                               : "base rate");
      auto fit = fit_report_.find(tr.name);
      host_.Log(TAILOR_LOG_INFO, "report " + tr.name + ": " +
                                     (fit != fit_report_.end() ? fit->second + "; " : "") + buf);
    }
  }

  DnaConfig cfg_;
  int min_rows_;
  const Host& host_;
  std::vector<TraitModel> models_;
  std::unordered_map<std::string, Scored> customers_;
  Scored no_history_;  // the prediction for a customer without events
  Catalog catalog_;
  std::map<std::string, std::string> fit_report_;  // trait -> AUC / ECE of the last Train
};

}  // namespace

TAILOR_PLUGIN(Dna, "dna", "1.0.0");
