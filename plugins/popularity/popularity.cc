// popularity: recency-weighted popularity of items, categories and offers,
// learned from the event store. Non-personal: the same score for everyone, the
// fallback that works for anonymous customers and cold starts. See README.md.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
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
// Forward-decay terms grow by 2x per half-life past the reference time; once
// an event is this many half-lives past it, every sum is rescaled once and the
// reference moves (2^64 is far from double overflow, and rare: ~2.5 years at a
// 14-day half-life).
constexpr double kRebaseHalfLives = 64;
constexpr double kMaxWeight = 1e6;
constexpr double kMaxHalfLifeDays = 36500;
constexpr std::string_view kMagic = "tailor-popularity-model";
constexpr int kFormatVersion = 1;

std::string FormatDouble(double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

// One kind of thing that can be popular. Entries live in contiguous arrays
// indexed through a hash map; order_ is kept sorted by score (descending), so
// an entry's rank and the median are O(1) reads for Score.
class Ranking {
 public:
  std::optional<size_t> Find(std::string_view id) const {
    auto it = index_.find(id);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  size_t size() const { return ids_.size(); }
  const std::string& id_at_rank(size_t r) const { return ids_[order_[r]]; }
  double score_at_rank(size_t r) const { return score_[order_[r]]; }
  size_t rank(size_t i) const { return pos_[i] + 1; }  // 1 = most popular

  // score / (score + median score): the median entry gets 0.5, more popular
  // ones approach 1, unknown ones 0. Monotone in the score, always finite, and
  // unlike score / max it does not squash everything under one blockbuster.
  double Normalised(size_t i) const {
    const double s = score_[i];
    if (!(s > 0)) return 0;
    const double median = score_[order_[order_.size() / 2]];
    return s / (s + median);
  }

  // Adds w > 0 to id's score and moves it up to its place; costs the number of
  // entries it passes. For one event at a time.
  void Add(std::string_view id, double w) {
    const size_t i = Entry(id);
    score_[i] += w;
    const double s = score_[i];
    const auto old_pos = static_cast<ptrdiff_t>(pos_[i]);
    // Stable: entries with an equal score stay ahead.
    auto new_it = std::partition_point(order_.begin(), order_.begin() + old_pos,
                                       [&](uint32_t j) { return score_[j] >= s; });
    const auto new_pos = new_it - order_.begin();
    if (new_pos == old_pos) return;
    std::rotate(new_it, order_.begin() + old_pos, order_.begin() + old_pos + 1);
    for (ptrdiff_t p = new_pos; p <= old_pos; ++p) pos_[order_[p]] = static_cast<uint32_t>(p);
  }

  // Adds w without ordering; call Sort() after a batch. For training.
  void AddUnordered(std::string_view id, double w) { score_[Entry(id)] += w; }

  void Sort() {
    std::stable_sort(order_.begin(), order_.end(),
                     [&](uint32_t a, uint32_t b) { return score_[a] > score_[b]; });
    for (size_t p = 0; p < order_.size(); ++p) pos_[order_[p]] = static_cast<uint32_t>(p);
  }

  // Multiplies every score by f > 0; the order is unchanged.
  void Scale(double f) {
    for (double& s : score_) s *= f;
  }

 private:
  size_t Entry(std::string_view id) {
    auto it = index_.find(id);
    if (it != index_.end()) return it->second;
    const auto i = static_cast<uint32_t>(ids_.size());
    index_.emplace(std::string(id), i);
    ids_.emplace_back(id);
    score_.push_back(0);
    order_.push_back(i);  // a zero score sorts last
    pos_.push_back(i);
    return i;
  }

  StringMap<uint32_t> index_;
  std::vector<std::string> ids_;
  std::vector<double> score_;
  std::vector<uint32_t> order_;  // entry indices by score, descending
  std::vector<uint32_t> pos_;    // pos_[i]: where entry i sits in order_
};

using Weights = std::map<std::string, double, std::less<>>;

struct Config {
  double half_life_days = 14;
  // Item events (events with an item_id); types not listed count 0.
  Weights weights = {{"view", 1}, {"click", 2}, {"add_to_cart", 4}, {"purchase", 8}};
  // Offer events (events with an offer_id). Impressions count 0 by default:
  // the engine chooses what is shown, so counting them would make its own
  // choices self-reinforcing.
  Weights offer_weights = {{"impression", 0}, {"offer_click", 2}, {"convert", 8}};

  // Identifies what a saved model was built with (one line of canonical
  // JSON); a model built with other settings is refused by Load.
  std::string Fingerprint() const {
    nlohmann::json j = {
        {"half_life_days", half_life_days}, {"weights", weights}, {"offer_weights", offer_weights}};
    return j.dump();
  }
};

// Parses the plugin's config block; collects every problem before throwing.
Config ParseConfig(std::string_view text) {
  using nlohmann::json;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InvalidConfig(std::string("popularity config: not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw InvalidConfig("popularity config: expected a JSON object");
  Config cfg;
  std::vector<std::string> errors;
  auto parse_weights = [&](const std::string& key, const json& v, Weights& out) {
    if (!v.is_object()) {
      errors.push_back(key + ": expected an object of event type -> weight, got " + v.dump());
      return;
    }
    for (const auto& [type, w] : v.items()) {
      if (!w.is_number() || !std::isfinite(w.get<double>()) || w.get<double>() < 0 ||
          w.get<double>() > kMaxWeight) {
        errors.push_back(key + "." + type + ": expected a number in [0, 1e6], got " + w.dump());
        continue;
      }
      out[type] = w.get<double>();  // merges over the defaults
    }
  };
  for (const auto& [key, v] : j.items()) {
    if (key == "half_life_days") {
      if (!v.is_number() || !(v.get<double>() > 0) || v.get<double>() > kMaxHalfLifeDays) {
        errors.push_back("half_life_days: expected a number of days in (0, 36500], got " +
                         v.dump());
      } else {
        cfg.half_life_days = v.get<double>();
      }
    } else if (key == "weights") {
      parse_weights(key, v, cfg.weights);
    } else if (key == "offer_weights") {
      parse_weights(key, v, cfg.offer_weights);
    } else {
      errors.push_back("unknown key '" + key + "' (known: half_life_days, weights, offer_weights)");
    }
  }
  tailor::sdk::ThrowIfConfigErrors("popularity", errors);
  return cfg;
}

double WeightOf(const Weights& w, const char* type) {
  if (type == nullptr) return 0;
  auto it = w.find(std::string_view(type));
  return it == w.end() ? 0 : it->second;
}

// The learned state. Scores are forward-decayed: an event at time t adds
// w * 2^((t - t_ref) / half_life), so a score read at any later time T is the
// exponentially decayed sum times the common factor 2^((t_ref - T) / half_life).
// That factor cancels in ranks and in score / (score + median), so nothing
// needs touching as time passes, and one event touches only its own entries.
struct Model {
  bool has_ref = false;
  int64_t t_ref_ms = 0;
  Ranking items, categories, offers;
};

class Popularity {
 public:
  static std::unique_ptr<Popularity> Create(std::string_view config_json, const Host& host) {
    return std::unique_ptr<Popularity>(new Popularity(ParseConfig(config_json), host));
  }

  void Score(const Request& /*req*/, std::span<const tailor_candidate> candidates,
             std::span<float> scores, Reasons& reasons) const {
    for (size_t i = 0; i < candidates.size(); ++i) {
      const tailor_candidate& c = candidates[i];
      const Ranking* ranking = nullptr;
      const char* id = nullptr;
      const char* noun = nullptr;
      // The most specific thing the candidate names decides what is scored.
      if (c.item_id != nullptr) {
        ranking = &model_.items;
        id = c.item_id;
        noun = "items";
      } else if (c.category != nullptr) {
        ranking = &model_.categories;
        id = c.category;
        noun = "categories";
      } else if (c.offer_id != nullptr) {
        ranking = &model_.offers;
        id = c.offer_id;
        noun = "offers";
      }
      scores[i] = 0;
      if (ranking == nullptr) continue;
      const std::optional<size_t> idx = ranking->Find(id);
      if (!idx) continue;
      scores[i] = static_cast<float>(ranking->Normalised(*idx));
      if (reasons.enabled() && scores[i] > 0) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "popular: rank %zu of %zu %s (%g-day half-life)",
                      ranking->rank(*idx), ranking->size(), noun, cfg_.half_life_days);
        reasons.Set(i, buf);
      }
    }
  }

  void Observe(const tailor_event_view& ev) { AddEvent(model_, catalog_, ev, /*bulk=*/false); }

  // Rebuilds from the store into a fresh model; the old one stays on failure.
  void Train() {
    StringMap<std::string> catalog = ReadCatalog();
    Model model;
    const int64_t n = host_.ForEachEvent(
        0, [&](const tailor_event_view& ev) { AddEvent(model, catalog, ev, /*bulk=*/true); });
    model.items.Sort();
    model.categories.Sort();
    model.offers.Sort();
    model_ = std::move(model);
    catalog_ = std::move(catalog);
    host_.Log(TAILOR_LOG_INFO, "trained on " + std::to_string(n) +
                                   " events: " + std::to_string(model_.items.size()) + " items, " +
                                   std::to_string(model_.categories.size()) + " categories, " +
                                   std::to_string(model_.offers.size()) + " offers");
  }

  // Format (text; ids are length-prefixed so that any bytes survive):
  //   tailor-popularity-model
  //   version 1
  //   config <Config::Fingerprint()>
  //   t_ref_ms <int64 | none>
  //   items <n>            then n lines "<score> <id length> <id>", best first
  //   categories <n>       likewise
  //   offers <n>           likewise
  //   end
  void Save(const std::string& path) const {
    // Write beside and rename, so a crash never leaves half a model at path.
    tailor::sdk::SaveModelFile(path, [&](std::ostream& out) {
      out << kMagic << "\nversion " << kFormatVersion << "\nconfig " << cfg_.Fingerprint()
          << "\nt_ref_ms " << (model_.has_ref ? std::to_string(model_.t_ref_ms) : "none") << "\n";
      WriteRanking(out, "items", model_.items);
      WriteRanking(out, "categories", model_.categories);
      WriteRanking(out, "offers", model_.offers);
      out << "end\n";
    });
  }

  void Load(const std::string& path) {
    const std::string text = tailor::sdk::ReadModelFile(path);
    Parser p(path, text);
    if (p.Line() != kMagic) {
      throw std::runtime_error(path + ": not a popularity model file (first line is not '" +
                               std::string(kMagic) + "')");
    }
    const int64_t version = p.KeyInt("version");
    if (version != kFormatVersion) {
      throw std::runtime_error(path + ": model format version " + std::to_string(version) +
                               " is not supported (this plugin reads " +
                               std::to_string(kFormatVersion) + ")");
    }
    const std::string fingerprint(p.KeyText("config"));
    if (fingerprint != cfg_.Fingerprint()) {
      throw InvalidConfig(path + ": model was built with " + fingerprint +
                          " but this instance is configured with " + cfg_.Fingerprint() +
                          "; retrain");
    }
    Model model;
    const std::string_view t_ref = p.KeyText("t_ref_ms");
    if (t_ref != "none") {
      model.has_ref = true;
      model.t_ref_ms = p.ParseInt(t_ref);
    }
    p.ReadRanking("items", model.items);
    p.ReadRanking("categories", model.categories);
    p.ReadRanking("offers", model.offers);
    if (p.Line() != "end") p.Fail("expected 'end'");
    StringMap<std::string> catalog = ReadCatalog();
    model_ = std::move(model);
    catalog_ = std::move(catalog);
  }

 private:
  Popularity(Config cfg, const Host& host)
      : cfg_(std::move(cfg)), half_life_ms_(cfg_.half_life_days * kMsPerDay), host_(host) {}

  // Item id -> category from the host's catalog, for crediting categories.
  StringMap<std::string> ReadCatalog() const {
    StringMap<std::string> catalog;
    host_.ForEachItem([&](const tailor_item_view& it) {
      if (it.category != nullptr && it.category[0] != '\0')
        catalog.emplace(it.item_id, it.category);
    });
    return catalog;
  }

  // 2^((ts - t_ref) / half_life) for an event at ts, first moving t_ref (and
  // rescaling every score) when ts is too far past it.
  double ForwardFactor(Model& m, int64_t ts_ms) const {
    if (!m.has_ref) {
      m.has_ref = true;
      m.t_ref_ms = ts_ms;
    }
    double x = static_cast<double>(ts_ms - m.t_ref_ms) / half_life_ms_;
    if (x > kRebaseHalfLives) {
      const double f = std::exp2(-x);
      m.items.Scale(f);
      m.categories.Scale(f);
      m.offers.Scale(f);
      m.t_ref_ms = ts_ms;
      x = 0;
    }
    return std::exp2(x);
  }

  void AddEvent(Model& m, const StringMap<std::string>& catalog, const tailor_event_view& ev,
                bool bulk) const {
    const double wi = ev.item_id != nullptr ? WeightOf(cfg_.weights, ev.type) : 0;
    const double wo = ev.offer_id != nullptr ? WeightOf(cfg_.offer_weights, ev.type) : 0;
    if (wi <= 0 && wo <= 0) return;
    const double f = ForwardFactor(m, ev.ts_ms);
    auto add = [&](Ranking& r, std::string_view id, double w) {
      if (!(w > 0)) return;  // includes events so old that they underflow
      bulk ? r.AddUnordered(id, w) : r.Add(id, w);
    };
    if (wi > 0) {
      add(m.items, ev.item_id, wi * f);
      auto it = catalog.find(std::string_view(ev.item_id));
      if (it != catalog.end()) add(m.categories, it->second, wi * f);
    }
    if (wo > 0) add(m.offers, ev.offer_id, wo * f);
  }

  static void WriteRanking(std::ostream& out, const char* name, const Ranking& r) {
    out << name << " " << r.size() << "\n";
    for (size_t k = 0; k < r.size(); ++k) {
      const std::string& id = r.id_at_rank(k);
      out << FormatDouble(r.score_at_rank(k)) << " " << id.size() << " " << id << "\n";
    }
  }

  // Reads the model format above, naming the file and line on any error.
  class Parser {
   public:
    Parser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

    [[noreturn]] void Fail(const std::string& what) const {
      throw std::runtime_error(path_ + ":" + std::to_string(line_) +
                               ": corrupt model file: " + what);
    }
    // The next line, without its newline.
    std::string_view Line() {
      if (at_ >= text_.size()) {
        ++line_;
        Fail("unexpected end of file");
      }
      const size_t nl = text_.find('\n', at_);
      if (nl == std::string_view::npos) Fail("missing newline");
      std::string_view line = text_.substr(at_, nl - at_);
      at_ = nl + 1;
      ++line_;
      return line;
    }
    // A line "<key> <text>"; returns the text.
    std::string_view KeyText(std::string_view key) {
      std::string_view line = Line();
      if (line.size() <= key.size() || line.substr(0, key.size()) != key ||
          line[key.size()] != ' ') {
        Fail("expected '" + std::string(key) + " ...'");
      }
      return line.substr(key.size() + 1);
    }
    int64_t KeyInt(std::string_view key) { return ParseInt(KeyText(key)); }
    int64_t ParseInt(std::string_view s) const {
      int64_t v = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec != std::errc() || p != s.data() + s.size())
        Fail("expected an integer, got '" + std::string(s) + "'");
      return v;
    }
    void ReadRanking(std::string_view name, Ranking& r) {
      const int64_t n = KeyInt(name);
      if (n < 0) Fail("negative count");
      for (int64_t k = 0; k < n; ++k) {
        // "<score> <len> <id>\n", where id may hold any bytes.
        const size_t sp1 = text_.find(' ', at_);
        if (sp1 == std::string_view::npos) Fail("expected '<score> <length> <id>'");
        double score = 0;
        auto [p1, ec1] = std::from_chars(text_.data() + at_, text_.data() + sp1, score);
        if (ec1 != std::errc() || p1 != text_.data() + sp1 || !std::isfinite(score) || score < 0)
          Fail("bad score");
        const size_t sp2 = text_.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos) Fail("expected '<score> <length> <id>'");
        size_t len = 0;
        auto [p2, ec2] = std::from_chars(text_.data() + sp1 + 1, text_.data() + sp2, len);
        if (ec2 != std::errc() || p2 != text_.data() + sp2) Fail("bad id length");
        if (len > text_.size() - sp2 - 1 || sp2 + 1 + len >= text_.size() ||
            text_[sp2 + 1 + len] != '\n')
          Fail("id runs past its line");
        const std::string_view id = text_.substr(sp2 + 1, len);
        if (score > 0) r.AddUnordered(id, score);
        at_ = sp2 + 1 + len + 1;
        line_ += 1 + static_cast<int>(std::count(id.begin(), id.end(), '\n'));
      }
      r.Sort();
    }

   private:
    const std::string& path_;
    std::string_view text_;
    size_t at_ = 0;
    int line_ = 0;
  };

  const Config cfg_;
  const double half_life_ms_;
  const Host& host_;  // owned by the SDK; outlives this instance
  Model model_;
  StringMap<std::string> catalog_;  // as of the last Train or Load
};

}  // namespace

TAILOR_PLUGIN(Popularity, "popularity", "1.0.0");
