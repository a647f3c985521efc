// Experiments and the global holdout: config/experiments.yaml (docs in the
// shipped example), parsed into an immutable ExperimentSet that the engine's
// snapshot holds and a reload replaces whole.
//
// Assignment is a pure function of (customer id, salts, arm names, shares):
//   1. holdout: u(customer, holdout salt) < share -> arm "holdout" on every
//      placement (never personalised: the answer an anonymous visitor gets,
//      the plugins without the customer's history and no exploration);
//   2. per layer: the customer belongs to one running experiment of the
//      layer (equal weights, weighted rendezvous over the layer's running
//      experiments), so that
//      experiments in one layer never share a customer and layers overlap;
//   3. exposure: u(customer, salt) < the experiment's `traffic` (default 1);
//      raising it only brings customers in, and they keep their arm;
//   4. the arm: weighted rendezvous over the arms, the largest
//      -share / ln(u(customer, salt, arm)) wins. Shares are relative weights:
//      each arm gets share / (sum of shares) of the exposed customers, and
//      raising one arm's share (or adding an arm) only moves customers INTO
//      that arm (every other score stays as it was). Shares written as
//      fractions that sum to 1 read as the split they say.
// An experiment applies on its placements within [start, end); elsewhere the
// customer is in no experiment. u is FNV-1a over "salt\0arm\0customer",
// finalised by splitmix64, mapped into (0, 1): a hash per experiment, no
// allocation.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "rules/rules.h"

namespace tailor::experiments {

// What an arm serves instead of Tailor's own choice.
enum class Control {
  kNone,        // Tailor, with the arm's overrides
  kRandom,      // a uniform random order of the eligible (logged propensities 1/m)
  kPopularity,  // the non-personalised order (plugins without the customer, greedy)
  kApp,         // the application's own choice (shadow mode)
};
std::string_view ControlName(Control c);

struct Arm {
  std::string name;
  double share = 0;  // relative weight among the experiment's arms, > 0
  Control control = Control::kNone;
  bool shadow = false;  // mode: shadow, or control: app
  // Overrides; unset ones keep the placement's.
  std::optional<learning::PolicyConfig> policy;
  std::map<std::string, double> plugin_weights;  // merged over the placement's
  std::string rules_dir;                         // resolved; empty: the engine's rules
  std::shared_ptr<const RuleSet> rules;          // loaded from rules_dir
  std::vector<std::string> offers;               // sorted offer ids allowed; empty: all
  std::string where;                             // "file:line:col" of the arm
  uint64_t seed = 0;                             // hash state after "salt\0name\0"
  std::string counter;  // "experiments.<experiment>.<arm>", built once (no allocation per decision)
  // Per placement of the experiment: that placement with this arm's
  // overrides applied (what the decision stages read).
  std::map<std::string, PlacementConfig> placements;

  // Whether the arm serves a non-personalised order (popularity, random).
  bool non_personal() const {
    return control == Control::kPopularity || control == Control::kRandom;
  }
  bool AllowsOffer(std::string_view id) const;
};

struct Experiment {
  std::string name, salt, layer;
  std::vector<std::string> placements;
  int64_t start_ms = INT64_MIN, end_ms = INT64_MAX;  // [start, end)
  std::vector<Arm> arms;
  double traffic = 1;         // share of its layer's customers exposed, (0, 1]
  uint64_t traffic_seed = 0;  // the exposure draw's seed
  uint64_t layer_seed = 0;    // this experiment's seed in its layer's draw
  std::string where;

  bool Applies(std::string_view placement, int64_t now_ms) const;
};

struct Holdout {
  double share = 0;
  std::string salt = "holdout";
  uint64_t seed = 0;
  // Every placement with the holdout's baseline (greedy, non-personalised).
  std::map<std::string, PlacementConfig> placements;
};

// The experiment and arm one decision runs under.
struct Assignment {
  const Experiment* experiment = nullptr;  // null: holdout or none
  const Arm* arm = nullptr;
  bool holdout = false;

  bool any() const { return holdout || arm != nullptr; }
  // "holdout" / the experiment's name; "" when none.
  std::string_view experiment_name() const;
  std::string_view arm_name() const;
  std::string_view layer() const;
  // The decisions counter: "experiments.<experiment>.<arm>".
  const std::string& counter() const;
};

class ExperimentSet {
 public:
  // What the file is checked against. offer_ids null: offers not checked
  // (the catalog is not known yet).
  struct Known {
    const EngineConfig& config;
    const std::set<std::string>* offer_ids = nullptr;
  };

  // Reads and checks the file; null with every error appended
  // ("file:line:col: key.path: message") on any error.
  static std::shared_ptr<const ExperimentSet> Load(const std::string& path, const Known& known,
                                                   std::vector<std::string>* errors);
  // The same from text (tests); `file` names it in errors, relative rules
  // folders resolve against its directory.
  static std::shared_ptr<const ExperimentSet> Parse(const std::string& yaml,
                                                    const std::string& file, const Known& known,
                                                    std::vector<std::string>* errors);

  // The customer's assignment on this placement at this time. An empty
  // customer (anonymous) is in no experiment.
  Assignment Assign(std::string_view customer, std::string_view placement, int64_t now_ms) const;
  // The placement a decision under `a` uses: the arm's (or holdout's)
  // overridden copy, else `base`.
  const PlacementConfig& PlacementOf(const Assignment& a, const PlacementConfig& base) const;

  const Holdout& holdout() const { return holdout_; }
  const std::vector<Experiment>& experiments() const { return experiments_; }
  const std::string& file() const { return file_; }

 private:
  // Index of the experiment the customer belongs to in each layer.
  const Experiment* InLayer(size_t layer, std::string_view customer, int64_t now_ms) const;

  std::string file_;
  Holdout holdout_;
  std::vector<Experiment> experiments_;
  std::vector<std::vector<size_t>> layers_;  // experiment indices per layer
  std::vector<size_t> layer_of_;             // per experiment
};

// --- The hash (exposed for tests) -------------------------------------------
// FNV-1a state after "a\0b\0".
uint64_t HashSeed(std::string_view a, std::string_view b);
// u in (0, 1) from a seed and the customer id.
double UnitHash(uint64_t seed, std::string_view customer);
// Weighted rendezvous: the index of the largest -weights[k] / ln(u(seeds[k],
// customer)); weights <= 0 never win; -1 when none can.
int Rendezvous(const uint64_t* seeds, const double* weights, size_t n, std::string_view customer);

}  // namespace tailor::experiments
