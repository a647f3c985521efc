#include "experiments/experiments.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/time.h"
#include "config/fields.h"

namespace tailor::experiments {
namespace {

using config::Fields;

constexpr uint64_t kFnvOffset = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t Fnv(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t Mix(uint64_t z) {  // splitmix64's finaliser
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool ParseTime(Fields& f, const std::string& key, int64_t* out) {
  YAML::Node n = f.Get(key);
  if (!n) return false;
  if (n.IsScalar())
    if (auto ms = parse_iso8601_ms(n.Scalar())) {
      *out = *ms;
      return true;
    }
  f.Error(n, key, "expected an ISO 8601 date or time like 2026-11-23 or 2026-11-23T21:15:00Z");
  return false;
}

std::string Known(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out.empty() ? "none" : out;
}

std::string Resolve(const std::string& base, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return (std::filesystem::path(base) / p).lexically_normal().string();
}

void ParsePluginWeights(Fields& arm, const YAML::Node& w, const EngineConfig& cfg,
                        std::vector<std::string>* errors, Arm* out) {
  Fields wf(w, arm.file(), arm.Path("plugin_weights"), errors);
  if (!w.IsMap()) return;  // reported by Fields
  std::vector<std::string> names;
  for (const PluginSpec& s : cfg.plugins) names.push_back(s.name);
  for (const auto& kv : w) {
    const std::string name = kv.first.Scalar();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      wf.Get(name);
      wf.Error(kv.first, name,
               "no plugin '" + name + "' is configured (known: " + Known(names) + ")");
      continue;
    }
    double x = 0;
    if (wf.Num(name, &x, 0, 1000)) out->plugin_weights[name] = x;
  }
  wf.Done();
}

void ParseArm(const YAML::Node& node, Fields& parent, const std::string& path,
              const ExperimentSet::Known& known, const std::string& base,
              std::vector<std::string>* errors, Arm* arm) {
  Fields f(node, parent.file(), path, errors, /*nonempty_strings=*/true);
  arm->where = config::Where(parent.file(), node);
  f.Str("name", &arm->name, true);
  if (!f.Num("share", &arm->share, 0, 1000) && node.IsMap() && !node["share"]) f.Missing("share");
  if (node.IsMap() && node["share"] && arm->share <= 0)
    f.Error(node["share"], "share", "must be above 0 (remove the arm to stop it)");
  std::string control;
  if (f.Str("control", &control)) {
    if (control == "random")
      arm->control = Control::kRandom;
    else if (control == "popularity")
      arm->control = Control::kPopularity;
    else if (control == "app")
      arm->control = Control::kApp, arm->shadow = true;
    else
      f.Error(node["control"], "control",
              "expected random, popularity or app, got '" + control + "'");
  }
  std::string mode;
  if (f.Str("mode", &mode)) {
    if (mode == "shadow")
      arm->shadow = true;
    else if (mode != "live")
      f.Error(node["mode"], "mode", "expected live or shadow, got '" + mode + "'");
  }
  if (YAML::Node p = f.Get("policy")) {
    learning::PolicyConfig pc;
    config::ParsePolicy(f, p, errors, &pc);
    arm->policy = pc;
    if (arm->non_personal())
      f.Error(p, "policy", "a control arm (" + control + ") has its own order; drop the policy");
  }
  if (YAML::Node w = f.Get("plugin_weights")) ParsePluginWeights(f, w, known.config, errors, arm);
  std::string rules;
  if (f.Str("rules", &rules)) {
    arm->rules_dir = Resolve(base, rules);
    std::error_code ec;
    if (!std::filesystem::is_directory(arm->rules_dir, ec))
      f.Error(node["rules"], "rules", "no folder '" + arm->rules_dir + "'");
    else
      arm->rules = RuleSet::Load(arm->rules_dir, known.config.rule_limits, errors);
  }
  if (f.StrList("offers", &arm->offers)) {
    std::sort(arm->offers.begin(), arm->offers.end());
    if (known.offer_ids)
      for (const std::string& id : arm->offers)
        if (!known.offer_ids->count(id))
          f.Error(node["offers"], "offers", "unknown offer '" + id + "'");
  }
  f.Done();
}

// Placement copies with the arm's overrides.
PlacementConfig Override(const PlacementConfig& base, const Arm& arm) {
  PlacementConfig p = base;
  if (arm.policy) p.policy = *arm.policy;
  for (const auto& [name, w] : arm.plugin_weights) p.plugin_weights[name] = w;
  if (arm.control == Control::kPopularity) p.policy = learning::PolicyConfig{};  // greedy
  if (arm.control == Control::kRandom) {
    // Epsilon with exploration 1 is a uniform pick at every position, with
    // the exact propensity 1 / (eligible left) logged.
    p.policy = learning::PolicyConfig{};
    p.policy.kind = learning::PolicyConfig::Kind::kEpsilon;
    p.policy.exploration = 1.0;
  }
  if (arm.shadow) p.mode = PlacementConfig::Mode::kShadow;
  return p;
}

void ParseExperiment(const YAML::Node& node, const std::string& file, const std::string& path,
                     const ExperimentSet::Known& known, const std::string& base,
                     std::vector<std::string>* errors, Experiment* e) {
  Fields f(node, file, path, errors, /*nonempty_strings=*/true);
  e->where = config::Where(file, node);
  f.Str("name", &e->name, true);
  if (e->name == "holdout") f.Error(node["name"], "name", "'holdout' is the global holdout's name");
  e->salt = e->name;
  f.Str("salt", &e->salt);
  e->layer = "default";
  f.Str("layer", &e->layer);
  if (f.StrList("placements", &e->placements)) {
    std::vector<std::string> names;
    for (const auto& [name, _] : known.config.placements) names.push_back(name);
    for (const std::string& pl : e->placements)
      if (!known.config.placements.count(pl))
        f.Error(node["placements"], "placements",
                "unknown placement '" + pl + "' (known: " + Known(names) + ")");
  } else if (node.IsMap() && !node["placements"]) {
    f.Missing("placements");
  }
  if (f.Num("traffic", &e->traffic, 0, 1) && e->traffic <= 0)
    f.Error(node["traffic"], "traffic", "must be above 0 (end the experiment to stop it)");
  ParseTime(f, "start", &e->start_ms);
  if (ParseTime(f, "end", &e->end_ms) && e->end_ms <= e->start_ms)
    f.Error(node["end"], "end", "ends before it starts");
  YAML::Node arms = f.Get("arms");
  if (!arms) {
    if (node.IsMap()) f.Missing("arms");
  } else if (!arms.IsSequence() || arms.size() == 0) {
    f.Error(arms, "arms", "expected a list of arms (name, share, overrides)");
  } else {
    for (size_t i = 0; i < arms.size(); ++i) {
      Arm arm;
      ParseArm(arms[i], f, f.Path("arms") + "[" + std::to_string(i) + "]", known, base, errors,
               &arm);
      for (const Arm& other : e->arms)
        if (!arm.name.empty() && other.name == arm.name)
          f.Error(arms[i]["name"], "arms", "arm '" + arm.name + "' is listed twice");
      if (arm.name == "holdout")
        f.Error(arms[i]["name"], "arms", "'holdout' is the global holdout's arm name");
      if (!arm.offers.empty())
        for (const std::string& pl : e->placements)
          if (auto it = known.config.placements.find(pl);
              it != known.config.placements.end() &&
              it->second.kind != PlacementConfig::Kind::kOffers)
            f.Error(arms[i]["offers"], "arms",
                    "arm '" + arm.name + "' sets offers but placement '" + pl + "' shows items");
      e->arms.push_back(std::move(arm));
    }
  }
  f.Done();
  e->traffic_seed = HashSeed(e->salt, std::string_view("\x01traffic", 8));
  for (Arm& arm : e->arms) {
    arm.seed = HashSeed(e->salt, arm.name);
    arm.counter = "experiments." + e->name + "." + arm.name;
    for (const std::string& pl : e->placements)
      if (auto it = known.config.placements.find(pl); it != known.config.placements.end())
        arm.placements.emplace(pl, Override(it->second, arm));
  }
}

}  // namespace

std::string_view ControlName(Control c) {
  switch (c) {
    case Control::kRandom:
      return "random";
    case Control::kPopularity:
      return "popularity";
    case Control::kApp:
      return "app";
    case Control::kNone:
      break;
  }
  return "";
}

bool Arm::AllowsOffer(std::string_view id) const {
  return offers.empty() ||
         std::binary_search(offers.begin(), offers.end(), id,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

bool Experiment::Applies(std::string_view placement, int64_t now_ms) const {
  if (now_ms < start_ms || now_ms >= end_ms) return false;
  for (const std::string& p : placements)
    if (p == placement) return true;
  return false;
}

std::string_view Assignment::experiment_name() const {
  if (holdout) return "holdout";
  return experiment ? std::string_view(experiment->name) : std::string_view();
}
std::string_view Assignment::arm_name() const {
  if (holdout) return "holdout";
  return arm ? std::string_view(arm->name) : std::string_view();
}
const std::string& Assignment::counter() const {
  static const std::string kHoldout = "experiments.holdout.holdout", kNone;
  return holdout ? kHoldout : arm ? arm->counter : kNone;
}

std::string_view Assignment::layer() const {
  return experiment ? std::string_view(experiment->layer) : std::string_view();
}

uint64_t HashSeed(std::string_view a, std::string_view b) {
  uint64_t h = Fnv(kFnvOffset, a);
  h = Fnv(h, std::string_view("\0", 1));
  h = Fnv(h, b);
  return Fnv(h, std::string_view("\0", 1));
}

double UnitHash(uint64_t seed, std::string_view customer) {
  const uint64_t z = Mix(Fnv(seed, customer));
  return (static_cast<double>(z >> 11) + 0.5) * 0x1.0p-53;  // (0, 1), never 0 or 1
}

int Rendezvous(const uint64_t* seeds, const double* weights, size_t n, std::string_view customer) {
  int best = -1;
  double best_score = 0;
  for (size_t k = 0; k < n; ++k) {
    if (!(weights[k] > 0)) continue;
    // -w / ln(u): ln(u) < 0, so the score is positive; larger wins.
    const double score = -weights[k] / std::log(UnitHash(seeds[k], customer));
    if (best < 0 || score > best_score) {
      best = static_cast<int>(k);
      best_score = score;
    }
  }
  return best;
}

std::shared_ptr<const ExperimentSet> ExperimentSet::Load(const std::string& path,
                                                         const Known& known,
                                                         std::vector<std::string>* errors) {
  std::ifstream in(path);
  if (!in) {
    errors->push_back(path + ":1:1: cannot read file");
    return nullptr;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path, known, errors);
}

std::shared_ptr<const ExperimentSet> ExperimentSet::Parse(const std::string& yaml,
                                                          const std::string& file,
                                                          const Known& known,
                                                          std::vector<std::string>* errors) {
  const size_t before = errors->size();
  std::optional<YAML::Node> parsed = config::ParseYamlText(file, yaml, errors);
  if (!parsed) return nullptr;
  YAML::Node root = *parsed;
  auto set = std::make_shared<ExperimentSet>();
  set->file_ = file;
  const std::string base = std::filesystem::path(file).parent_path().string();
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);  // an empty file: nothing runs
  Fields top(root, file, "", errors);
  if (YAML::Node h = top.Get("holdout")) {
    Fields hf(h, file, "holdout", errors, /*nonempty_strings=*/true);
    hf.Num("share", &set->holdout_.share, 0, 0.5);
    hf.Str("salt", &set->holdout_.salt);
    hf.Done();
  }
  set->holdout_.seed = HashSeed(set->holdout_.salt, "holdout");
  for (const auto& [name, placement] : known.config.placements) {
    PlacementConfig p = placement;
    p.policy = learning::PolicyConfig{};  // the baseline does not explore
    set->holdout_.placements.emplace(name, std::move(p));
  }
  if (YAML::Node list = top.Get("experiments")) {
    if (!list.IsSequence()) {
      top.Error(list, "experiments", "expected a list of experiments");
    } else {
      for (size_t i = 0; i < list.size(); ++i) {
        Experiment e;
        ParseExperiment(list[i], file, "experiments[" + std::to_string(i) + "]", known, base,
                        errors, &e);
        for (const Experiment& other : set->experiments_)
          if (!e.name.empty() && other.name == e.name)
            errors->push_back(config::Where(file, list[i]["name"]) + ": experiments[" +
                              std::to_string(i) + "].name: experiment '" + e.name +
                              "' is defined twice");
        set->experiments_.push_back(std::move(e));
      }
    }
  }
  top.Done();
  // A decision records one arm: experiments of different layers may not
  // share a placement while both run.
  for (size_t i = 0; i < set->experiments_.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      const Experiment& a = set->experiments_[j];
      const Experiment& b = set->experiments_[i];
      if (a.layer == b.layer || std::max(a.start_ms, b.start_ms) >= std::min(a.end_ms, b.end_ms))
        continue;
      for (const std::string& pl : b.placements)
        if (std::find(a.placements.begin(), a.placements.end(), pl) != a.placements.end())
          errors->push_back(b.where + ": experiments[" + std::to_string(i) + "].placements: '" +
                            pl + "' is also in experiment '" + a.name + "' (layer '" + a.layer +
                            "') at the same time; a decision records one arm, so put them in "
                            "one layer");
    }
  if (errors->size() != before) return nullptr;
  // Layers, in order of first appearance.
  std::vector<std::string> layer_names;
  for (size_t i = 0; i < set->experiments_.size(); ++i) {
    Experiment& e = set->experiments_[i];
    auto it = std::find(layer_names.begin(), layer_names.end(), e.layer);
    size_t layer = static_cast<size_t>(it - layer_names.begin());
    if (it == layer_names.end()) {
      layer_names.push_back(e.layer);
      set->layers_.emplace_back();
    }
    set->layers_[layer].push_back(i);
    set->layer_of_.push_back(layer);
    e.layer_seed = HashSeed("\x01layer:" + e.layer, e.name);
  }
  return set;
}

const Experiment* ExperimentSet::InLayer(size_t layer, std::string_view customer,
                                         int64_t now_ms) const {
  const std::vector<size_t>& members = layers_[layer];
  if (members.size() == 1) return &experiments_[members[0]];
  // Only the layer's running experiments share its customers: one that has
  // ended (or not begun) holds none, and by rendezvous hashing its ending
  // moves only its own customers to the others.
  // Equal weights; a few experiments per layer at most, so no allocation.
  constexpr size_t kStack = 16;
  uint64_t seeds[kStack];
  double weights[kStack];
  int best = -1;
  double best_score = 0;
  for (size_t start = 0; start < members.size(); start += kStack) {
    const size_t n = std::min(kStack, members.size() - start);
    for (size_t k = 0; k < n; ++k) {
      const Experiment& e = experiments_[members[start + k]];
      seeds[k] = e.layer_seed;
      weights[k] = now_ms >= e.start_ms && now_ms < e.end_ms ? 1 : 0;
    }
    const int b = Rendezvous(seeds, weights, n, customer);
    if (b < 0) continue;
    const double score = -1 / std::log(UnitHash(seeds[b], customer));
    if (best < 0 || score > best_score) best = static_cast<int>(start) + b, best_score = score;
  }
  return best < 0 ? nullptr : &experiments_[members[static_cast<size_t>(best)]];
}

Assignment ExperimentSet::Assign(std::string_view customer, std::string_view placement,
                                 int64_t now_ms) const {
  Assignment a;
  if (customer.empty()) return a;
  if (holdout_.share > 0 && UnitHash(holdout_.seed, customer) < holdout_.share) {
    a.holdout = true;
    return a;
  }
  for (size_t i = 0; i < experiments_.size(); ++i) {
    const Experiment& e = experiments_[i];
    if (!e.Applies(placement, now_ms)) continue;
    if (InLayer(layer_of_[i], customer, now_ms) != &e) continue;  // another experiment of its layer
    if (e.traffic < 1 && UnitHash(e.traffic_seed, customer) >= e.traffic) return a;
    constexpr size_t kStack = 16;
    uint64_t seeds[kStack];
    double weights[kStack];
    int best = -1;
    double best_score = 0;
    // Arms in blocks of kStack (rarely more than one block).
    for (size_t start = 0; start < e.arms.size(); start += kStack) {
      const size_t n = std::min(kStack, e.arms.size() - start);
      for (size_t k = 0; k < n; ++k) {
        seeds[k] = e.arms[start + k].seed;
        weights[k] = e.arms[start + k].share;
      }
      const int b = Rendezvous(seeds, weights, n, customer);
      if (b < 0) continue;
      const double score = -weights[b] / std::log(UnitHash(seeds[b], customer));
      if (best < 0 || score > best_score) best = static_cast<int>(start) + b, best_score = score;
    }
    if (best < 0) return a;
    a.experiment = &e;
    a.arm = &e.arms[static_cast<size_t>(best)];
    return a;
  }
  return a;
}

const PlacementConfig& ExperimentSet::PlacementOf(const Assignment& a,
                                                  const PlacementConfig& base) const {
  const std::map<std::string, PlacementConfig>* copies = a.holdout ? &holdout_.placements
                                                         : a.arm   ? &a.arm->placements
                                                                   : nullptr;
  if (!copies) return base;
  auto it = copies->find(base.name);
  return it == copies->end() ? base : it->second;
}

}  // namespace tailor::experiments
