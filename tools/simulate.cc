// `tailor simulate`: proves the loop learns. Simulated demo customers visit a
// banner slot day after day; a real tailord decides over ZeroMQ exactly as for
// an application, and the customers' clicks, conversions and dismissals, drawn
// from the TRUE response model (engine/src/sim/response_model.h,
// docs/simulate.md), go back as events naming the decision. Arms run side by
// side on disjoint customer sets of equal size; mid-run a new offer that is
// the best for one segment is added and rules.reload sent.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "commands.h"
#include "common/time.h"
#include "config/config.h"
#include "ingest/demo_world.h"
#include "pricing/pricing.h"
#include "progress.h"
#include "runtime.h"
#include "sim/response_model.h"
#include "store/store.h"
#include "tailord_process.h"

namespace tailor::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr int kMaxLimit = 100;  // the protocol's decide limit
const char* const kChannel = "web";

struct SimArgs {
  int days = 14;
  int customers = 3000;
  int items = 500;
  int history_days = 180;
  uint64_t seed = 1;
  std::string store, config = "config", json_out, policy = "thompson", plugin_dir, tailord;
  std::string work_dir;
  int show = 1;
  int new_offer_day = 7;
  std::string new_offer_category = "books";
  double visit_scale = 10;
  int in_flight = 32;
  bool keep_work = false;
  // The arms that get customers, comma-separated ('' : every arm). The
  // config still has every arm's placement (`tailor eval policy` can replay
  // one arm's log through another's placement).
  std::string arms;
  // learn: the loop's arms (random .. oracle); discount: no-discount,
  // fixed-discount and tailor's pricing (docs/simulate.md "The discount scenario").
  std::string scenario = "learn";
  // The discount scenario's pricing segment (tailor.yaml pricing.features).
  std::string pricing_features = "deal_seeker";
};

// --- Arms ----------------------------------------------------------------------

enum class ArmKind {
  kRandom,
  kPopularity,
  kGreedy,
  kTailor,
  kOracle,
  // The discount scenario: the same learning placement; the discount is none,
  // each offer's mid range, or what tailor's pricing stage chose.
  kNoDiscount,
  kFixedDiscount,
  kPriced
};

// The discount scenario's tally of one arm's day.
struct PriceDay {
  int64_t impressions = 0, conversions = 0;
  double margin = 0;        // sum over conversions of price x (1 - d) - cost
  double discount_sum = 0;  // over impressions
  // The true model's expected margin of what was shown (no draw noise), and
  // that of the best level of the offer's range for each impression: what a
  // pricer that knew each customer's true response would earn.
  double exp_margin = 0, exp_margin_best = 0;
  // Discounts shown by protected group (age band, gender) and by deal seeking
  // (true deal_seeker >= 0.5: "deal_seeker", else "other"): {sum, n}.
  std::map<std::string, std::pair<double, int64_t>> by_group;
  void Add(const PriceDay& o) {
    impressions += o.impressions;
    conversions += o.conversions;
    margin += o.margin;
    discount_sum += o.discount_sum;
    exp_margin += o.exp_margin;
    exp_margin_best += o.exp_margin_best;
    for (const auto& [g, v] : o.by_group) {
      by_group[g].first += v.first;
      by_group[g].second += v.second;
    }
  }
};

struct DayStats {
  int64_t decisions = 0, impressions = 0, clicks = 0, conversions = 0, dismissals = 0;
  int64_t errors = 0;
  double revenue = 0;
  // The true model's expectation of what was shown (no draw noise): what an
  // off-policy estimate of this arm should find.
  double exp_clicks = 0, exp_conversions = 0, exp_revenue = 0;
  void Add(const DayStats& o) {
    exp_clicks += o.exp_clicks;
    exp_conversions += o.exp_conversions;
    exp_revenue += o.exp_revenue;
    decisions += o.decisions;
    impressions += o.impressions;
    clicks += o.clicks;
    conversions += o.conversions;
    dismissals += o.dismissals;
    errors += o.errors;
    revenue += o.revenue;
  }
  double ctr() const { return impressions ? static_cast<double>(clicks) / impressions : 0; }
  double conversion_rate() const { return clicks ? static_cast<double>(conversions) / clicks : 0; }
  double revenue_per_decision() const { return decisions ? revenue / decisions : 0; }
  double per_decision(double x) const { return decisions ? x / static_cast<double>(decisions) : 0; }
  json ToJson() const {
    return {{"decisions", decisions},
            {"impressions", impressions},
            {"clicks", clicks},
            {"ctr", ctr()},
            {"conversions", conversions},
            {"conversion_rate", conversion_rate()},
            {"dismissals", dismissals},
            {"revenue", revenue},
            {"revenue_per_decision", revenue_per_decision()},
            {"errors", errors},
            {"clicks_per_decision", per_decision(static_cast<double>(clicks))},
            {"conversions_per_decision", per_decision(static_cast<double>(conversions))},
            {"expected_clicks_per_decision", per_decision(exp_clicks)},
            {"expected_conversions_per_decision", per_decision(exp_conversions)},
            {"expected_revenue_per_decision", per_decision(exp_revenue)}};
  }
};

struct Arm {
  std::string name;
  std::string placement;
  ArmKind kind;
  YAML::Node settings;           // the placement's keys beyond kind/weight
  bool simulator_picks = false;  // asks for every eligible offer and picks K itself
  bool sends_impressions = false;
  std::vector<DayStats> by_day;
  std::vector<PriceDay> price_by_day;  // the discount scenario only
};

// What this engine's config accepts: a key the engine does not know yet is
// left out (the arm falls back, and the run says so) instead of failing.
bool EngineAccepts(const std::string& placement_keys) {
  char tmpl[] = "/tmp/tailor-sim-probe-XXXXXX";
  if (!mkdtemp(tmpl)) return false;
  const std::string file = std::string(tmpl) + "/probe.yaml";
  {
    std::ofstream out(file);
    out << "plugins:\n  - {name: popularity}\nplacements:\n  p:\n    kind: offers\n"
        << placement_keys;
  }
  std::vector<std::string> errors;
  bool ok = LoadConfig(file, "", &errors).has_value();
  fs::remove_all(tmpl);
  return ok;
}

struct EngineKeys {
  bool policy = false;       // placement `policy: {kind: ...}`
  bool impressions = false;  // placement `impressions: on_decide|explicit`
};

std::vector<Arm> MakeArms(const SimArgs& a, const EngineConfig& base, const EngineKeys& keys) {
  std::vector<Arm> arms;
  auto policy = [&](const std::string& yaml) {
    return keys.policy ? YAML::Load(yaml) : YAML::Node();
  };
  auto add = [&](std::string name, ArmKind kind, YAML::Node settings) {
    Arm arm;
    arm.name = std::move(name);
    arm.placement = "sim_" + arm.name;
    std::replace(arm.placement.begin(), arm.placement.end(), '-', '_');
    arm.kind = kind;
    arm.settings = settings ? settings : YAML::Node(YAML::NodeType::Map);
    arms.push_back(std::move(arm));
  };
  YAML::Node random = policy("{kind: epsilon, exploration: 1.0}");
  add("random", ArmKind::kRandom, random ? YAML::Node(YAML::Load("{}")) : YAML::Node());
  if (random) arms.back().settings["policy"] = random;
  // Popularity alone: every other configured plugin weighs nothing here.
  YAML::Node pop(YAML::NodeType::Map);
  bool has_popularity = false;
  for (const PluginSpec& p : base.plugins) {
    pop["plugin_weights"][p.name] = p.name == "popularity" ? 1.0 : 0.0;
    has_popularity |= p.name == "popularity";
  }
  if (!has_popularity) Fail("simulate: the config has no popularity plugin for the popularity arm");
  if (YAML::Node g = policy("{kind: greedy}")) pop["policy"] = g;
  add("popularity", ArmKind::kPopularity, pop);
  YAML::Node greedy(YAML::NodeType::Map);
  if (YAML::Node g = policy("{kind: greedy}")) greedy["policy"] = g;
  add("tailor-greedy", ArmKind::kGreedy, greedy);
  YAML::Node tailor(YAML::NodeType::Map);
  if (YAML::Node t = policy("{kind: " + a.policy + "}")) tailor["policy"] = t;
  add("tailor", ArmKind::kTailor, tailor);
  YAML::Node oracle(YAML::NodeType::Map);
  if (YAML::Node g = policy("{kind: greedy}")) oracle["policy"] = g;
  add("oracle", ArmKind::kOracle, oracle);

  for (Arm& arm : arms) {
    arm.simulator_picks =
        arm.kind == ArmKind::kOracle || (arm.kind == ArmKind::kRandom && !keys.policy);
    if (keys.impressions) {
      // The engine records impressions on decide; the arms that ask for every
      // eligible offer report what they really show.
      if (arm.simulator_picks) arm.settings["impressions"] = "explicit";
      arm.sends_impressions = arm.simulator_picks;
    } else {
      arm.sends_impressions = true;  // an engine without the contract: the app reports them
    }
  }
  return arms;
}

// The arms named in `--arms` (comma-separated; '' : all), in their usual order.
std::vector<Arm> SelectArms(std::vector<Arm> arms, const std::string& names) {
  if (names.empty()) return arms;
  std::vector<std::string> wanted;
  std::stringstream ss(names);
  for (std::string n; std::getline(ss, n, ',');)
    if (!n.empty()) wanted.push_back(n);
  std::string known;
  for (const Arm& arm : arms) known += (known.empty() ? "" : ", ") + arm.name;
  for (const std::string& n : wanted)
    if (std::none_of(arms.begin(), arms.end(), [&](const Arm& arm) { return arm.name == n; }))
      Fail("simulate: --arms: unknown arm '" + n + "' (known: " + known + ")", 2);
  std::vector<Arm> out;
  for (Arm& arm : arms)
    if (std::find(wanted.begin(), wanted.end(), arm.name) != wanted.end())
      out.push_back(std::move(arm));
  return out;
}

// The discount scenario's arms on disjoint customers: the same learning
// placement (the config's home response model, WriteSimConfig, and policy)
// on each; only `tailor` prices, the others show no discount or each
// offer's mid range.
std::vector<Arm> MakeDiscountArms(const SimArgs& a, const EngineKeys& keys) {
  std::vector<Arm> arms;
  auto add = [&](const std::string& name, ArmKind kind) {
    Arm arm;
    arm.name = name;
    arm.placement = "sim_" + name;
    std::replace(arm.placement.begin(), arm.placement.end(), '-', '_');
    arm.kind = kind;
    arm.settings = YAML::Node(YAML::NodeType::Map);
    if (keys.policy) arm.settings["policy"] = YAML::Load("{kind: " + a.policy + "}");
    if (kind == ArmKind::kPriced) arm.settings["pricing"] = true;
    arm.sends_impressions = !keys.impressions;
    arms.push_back(std::move(arm));
  };
  add("no-discount", ArmKind::kNoDiscount);
  add("fixed-discount", ArmKind::kFixedDiscount);
  add("tailor", ArmKind::kPriced);
  return arms;
}

// The experiment scenario: every customer on one placement, split by the
// engine itself with an experiment in the simulation's experiments.yaml
// (docs/simulate.md "The experiment scenario"); `tailor report --experiment
// sim_ab` then reads each arm's figures from the store.
constexpr const char* kSimExperiment = "sim_ab";

std::vector<Arm> MakeExperimentArms(const SimArgs& a, const EngineKeys& keys) {
  Arm arm;
  arm.name = "experiment";
  arm.placement = "sim_experiment";
  arm.kind = ArmKind::kTailor;
  arm.settings = YAML::Node(YAML::NodeType::Map);
  if (keys.policy) arm.settings["policy"] = YAML::Load("{kind: " + a.policy + "}");
  arm.sends_impressions = !keys.impressions;
  return {arm};
}

bool IsDiscountArm(ArmKind k) {
  return k == ArmKind::kNoDiscount || k == ArmKind::kFixedDiscount || k == ArmKind::kPriced;
}

// The discount scenario's catalog and guardrails (docs/simulate.md): every
// offer on the arms' placements is priced (price = its value, cost 40% of
// it, discount 0-30% in steps of 10%), and tailor.yaml gets the `pricing:`
// guardrails: min margin 15%, age_band and gender protected, the segment
// --pricing-features (the DNA deal_seeker trait), average discounts by age
// band within 1.25.
constexpr double kSimDiscountMin = 0, kSimDiscountMax = 0.3, kSimDiscountStep = 0.1;
constexpr double kSimCostShare = 0.4, kSimMinMargin = 0.15, kSimMaxDisparity = 1.25;

struct SimConfig;
void PriceSimConfig(SimConfig* sc, const std::vector<Arm>& arms, const std::string& features);

// --- The simulation's config --------------------------------------------------

struct SimConfig {
  std::string dir, tailor_yaml, offers_yaml;
  YAML::Node offers_root;  // the offers file as written, to append the new offer
};

std::string ResolveConfigFile(const std::string& config) {
  if (fs::is_directory(config)) return (fs::path(config) / "tailor.yaml").string();
  return config;
}

// A copy of the shipped config directory with one offers placement per arm;
// every offer shown on `home` is shown on the arms' placements too.
SimConfig WriteSimConfig(const std::string& config_file, const std::string& work,
                         const std::vector<Arm>& arms) {
  SimConfig sc;
  const fs::path src_dir = fs::path(config_file).parent_path();
  sc.dir = (fs::path(work) / "config").string();
  std::error_code ec;
  fs::copy(src_dir.empty() ? fs::path(".") : src_dir, sc.dir,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) Fail("simulate: cannot copy " + src_dir.string() + " to " + sc.dir + ": " + ec.message());
  YAML::Node root;
  try {
    root = YAML::LoadFile(config_file);
  } catch (const YAML::Exception& e) {
    Fail("simulate: " + config_file + ": " + e.what());
  }
  // Rules stay where they are (they are not part of the config directory).
  if (root["rules"] && root["rules"].IsScalar()) {
    fs::path rules = root["rules"].Scalar();
    if (rules.is_relative()) rules = fs::absolute(src_dir / rules).lexically_normal();
    root["rules"] = rules.string();
  }
  // The simulation's store is a report, not a ledger: no fsync per batch.
  root["store"]["synchronous"] = "normal";
  // Simulated days run on their own clock, up to a day past now: replays.
  root["security"]["allow_replay"] = true;
  // Every arm starts with trained models: no plugin trains in the background
  // (and an older engine never sees the key).
  if (root["plugins"] && root["plugins"].IsSequence())
    for (YAML::Node p : root["plugins"])
      if (p.IsMap() && p["train_in_background"]) p.remove("train_in_background");
  double home_weight = 1.0;
  if (root["placements"]["home"] && root["placements"]["home"]["weight"])
    home_weight = root["placements"]["home"]["weight"].as<double>();
  for (const Arm& arm : arms) {
    YAML::Node p(YAML::NodeType::Map);
    p["kind"] = "offers";
    p["weight"] = home_weight;
    // The tailor arms are the config's `home` learning from its responses:
    // its `response:` block when it has one, else learning with deal seekers'
    // own per-offer corrections.
    const bool shipped =
        arm.kind == ArmKind::kGreedy || arm.kind == ArmKind::kTailor || IsDiscountArm(arm.kind);
    if (shipped && root["placements"]["home"] && root["placements"]["home"]["response"])
      p["response"] = YAML::Clone(root["placements"]["home"]["response"]);
    else if (shipped)
      p["response"] = YAML::Load("{learn: true, segment_traits: [deal_seeker]}");
    for (const auto& kv : arm.settings) p[kv.first.Scalar()] = kv.second;
    root["placements"][arm.placement] = p;
  }
  std::string offers = root["offers"] ? root["offers"].Scalar() : "offers.yaml";
  sc.offers_yaml = (fs::path(sc.dir) / offers).string();
  sc.tailor_yaml = (fs::path(sc.dir) / "tailor.yaml").string();
  {
    YAML::Emitter out;
    out << root;
    std::ofstream f(sc.tailor_yaml);
    f << "# Written by `tailor simulate` from " << config_file << "\n" << out.c_str() << "\n";
  }
  try {
    sc.offers_root = YAML::LoadFile(sc.offers_yaml);
  } catch (const YAML::Exception& e) {
    Fail("simulate: " + sc.offers_yaml + ": " + e.what());
  }
  for (YAML::Node o : sc.offers_root["offers"]) {
    if (!o["placements"]) continue;  // shown everywhere already
    bool on_home = false;
    for (const auto& p : o["placements"]) on_home |= p.Scalar() == "home";
    if (!on_home) continue;
    for (const Arm& arm : arms) o["placements"].push_back(arm.placement);
  }
  return sc;
}

// The simulation's tailor.yaml, changed by edit for a scenario.
void RewriteTailorYaml(const SimConfig& sc, const std::string& scenario,
                       const std::function<void(YAML::Node&)>& edit) {
  YAML::Node root = YAML::LoadFile(sc.tailor_yaml);
  edit(root);
  YAML::Emitter out;
  out << root;
  std::ofstream f(sc.tailor_yaml);
  f << "# Written by `tailor simulate --scenario " << scenario << "`\n" << out.c_str() << "\n";
  if (!f) Fail("simulate: cannot write " + sc.tailor_yaml);
}

void PriceSimConfig(SimConfig* sc, const std::vector<Arm>& arms, const std::string& features) {
  for (YAML::Node o : sc->offers_root["offers"]) {
    bool on_arms = !o["placements"];
    if (o["placements"])
      for (const auto& p : o["placements"])
        for (const Arm& arm : arms) on_arms |= p.Scalar() == arm.placement;
    if (!on_arms) continue;
    const double price = o["price"] ? o["price"].as<double>() : o["value"].as<double>(0);
    o["price"] = price;
    o["cost"] = kSimCostShare * price;
    YAML::Node d(YAML::NodeType::Map);
    d["min"] = kSimDiscountMin;
    d["max"] = kSimDiscountMax;
    d["step"] = kSimDiscountStep;
    o["discount"] = d;
  }
  RewriteTailorYaml(*sc, "discount", [&](YAML::Node& root) {
    YAML::Node pricing(YAML::NodeType::Map);
    pricing["min_margin"] = kSimMinMargin;
    pricing["protected"] = YAML::Load("[age_band, gender]");
    pricing["features"] = YAML::Load("[" + features + "]");
    pricing["max_disparity"] = kSimMaxDisparity;
    pricing["group_by"] = "age_band";
    root["pricing"] = pricing;
  });
}

// Two equal arms on the experiment placement: `control` serves the
// non-personalised popularity order, `tailor` the placement's own learning
// policy. No holdout, no dates: the experiment runs for the whole simulation.
void WriteSimExperiment(const SimConfig& sc, const Arm& arm) {
  const std::string file = (fs::path(sc.dir) / "experiments.yaml").string();
  {
    std::ofstream f(file);
    f << "# Written by `tailor simulate --scenario experiment`\n"
      << "holdout: {share: 0}\n"
      << "experiments:\n"
      << "  - name: " << kSimExperiment << "\n"
      << "    placements: [" << arm.placement << "]\n"
      << "    arms:\n"
      << "      - {name: control, share: 0.5, control: popularity}\n"
      << "      - {name: tailor, share: 0.5}\n";
    if (!f) Fail("simulate: cannot write " + file);
  }
  // The copied tailor.yaml may name another experiments file.
  RewriteTailorYaml(sc, "experiment", [&](YAML::Node& root) {
    if (root["experiments"]) root["experiments"] = file;
  });
}

void WriteOffers(const SimConfig& sc) {
  YAML::Emitter out;
  out << sc.offers_root;
  std::ofstream f(sc.offers_yaml);
  f << out.c_str() << "\n";
  if (!f) Fail("simulate: cannot write " + sc.offers_yaml);
}

// The offers as the true model sees them: category, value, mid discount.
std::map<std::string, sim::TrueOffer> TrueOffers(const std::string& offers_yaml) {
  std::vector<Offer> offers;
  std::vector<std::string> errors;
  if (!LoadOffers(offers_yaml, &offers, &errors))
    Fail("simulate: " + (errors.empty() ? offers_yaml : errors.front()));
  std::map<std::string, sim::TrueOffer> out;
  for (const Offer& o : offers) {
    sim::TrueOffer t;
    t.id = o.id;
    t.category = o.category;
    t.value = o.value;
    if (o.discount) t.discount = (o.discount->first + o.discount->second) / 2;
    out[o.id] = t;
  }
  return out;
}

// Price and cost of one conversion per offer, for the discount scenario's margin.
std::map<std::string, std::pair<double, double>> OfferPrices(const std::string& offers_yaml) {
  std::vector<Offer> offers;
  std::vector<std::string> errors;
  if (!LoadOffers(offers_yaml, &offers, &errors))
    Fail("simulate: " + (errors.empty() ? offers_yaml : errors.front()));
  std::map<std::string, std::pair<double, double>> out;
  for (const Offer& o : offers) out[o.id] = {pricing::PriceOf(o), o.cost};
  return out;
}

// --- tailord ------------------------------------------------------------------

// --- The simulation -----------------------------------------------------------

struct Visit {
  int64_t ts = 0;
  uint32_t customer = 0;
  uint32_t nth = 0;  // the customer's nth visit of the day
  int hour = 0;
};

struct NewOffer {
  sim::TrueOffer offer;
  int added_on_day = 0;                  // 1-based; 0: not added
  std::vector<char> segment;             // per customer: the new offer is their true best
  std::vector<int64_t> seg_impressions;  // per day since added, tailor arm
  std::vector<int64_t> seg_new;
};

class Simulation {
 public:
  Simulation(const SimArgs& a, std::vector<sim::TrueCustomer> customers, std::vector<Arm> arms,
             SimConfig config, int64_t start_ms, Wire& wire, TailordProcess& tailord)
      : a_(a),
        customers_(std::move(customers)),
        arms_(std::move(arms)),
        config_(std::move(config)),
        start_ms_(start_ms),
        wire_(wire),
        tailord_(tailord) {
    AssignArms();
    offers_ = TrueOffers(config_.offers_yaml);
    busy_.assign(customers_.size(), 0);
    fatigue_.resize(customers_.size());
    for (Arm& arm : arms_) arm.by_day.assign(static_cast<size_t>(a_.days), DayStats{});
    if (a_.scenario == "discount") {
      prices_ = OfferPrices(config_.offers_yaml);
      for (Arm& arm : arms_) arm.price_by_day.assign(static_cast<size_t>(a_.days), PriceDay{});
    }
  }

  void Run();
  json Report(double seconds) const;
  // The discount scenario's section of the report (over the last half of
  // the days); engine_stats: tailord's `stats` reply at the end.
  json DiscountReport(const json& engine_stats) const;
  void PrintSummary() const;
  const std::vector<Arm>& arms() const { return arms_; }

 private:
  struct Pending {
    enum class Kind { kDecide, kEvent, kReload } kind = Kind::kDecide;
    Visit visit;
  };

  void AssignArms();
  std::vector<Visit> Visits(int day) const;
  void RunDay(int day);
  void SendDecide(const Visit& v);
  void OnReply(const json& reply, int day);
  void OnDecision(const Visit& v, const json& reply, int day);
  void SendEvent(const Visit& v, json event);
  void AddNewOffer(int day);
  void PrintDay(int day) const;
  DayStats Total(const Arm& arm, int from_day, int to_day) const;
  PriceDay PriceTotal(const Arm& arm, int from_day, int to_day) const;
  // The discount each arm of the discount scenario shows with offer o.
  double ArmDiscount(const Arm& arm, const json& offer, const sim::TrueOffer& o) const;
  void TallyPrice(const sim::TrueCustomer& c, const sim::TrueOffer& o, const sim::Exposure& x,
                  bool converted, PriceDay* day);

  const SimArgs& a_;
  std::vector<sim::TrueCustomer> customers_;
  std::vector<Arm> arms_;
  SimConfig config_;
  int64_t start_ms_;
  Wire& wire_;
  TailordProcess& tailord_;
  std::vector<uint8_t> arm_of_;
  std::map<std::string, sim::TrueOffer> offers_;
  std::map<std::string, std::pair<double, double>> prices_;  // discount scenario: price, cost
  std::unordered_map<std::string, Pending> pending_;
  std::vector<int> busy_;  // requests in flight per customer
  struct Fatigue {
    double value = 0;
    int64_t ts = 0;
  };
  std::vector<std::map<std::string, Fatigue>> fatigue_;  // per customer, per offer
  NewOffer new_offer_;
  uint64_t next_id_ = 0;
  int64_t error_lines_ = 0;
};

// Equal-sized disjoint sets: customers ordered by a stable hash of their id
// and dealt round-robin, so a customer's arm does not depend on the others'.
void Simulation::AssignArms() {
  std::vector<std::pair<uint64_t, uint32_t>> order;
  for (uint32_t i = 0; i < customers_.size(); ++i)
    order.emplace_back(sim::StableHash(customers_[i].id, a_.seed), i);
  std::sort(order.begin(), order.end());
  arm_of_.assign(customers_.size(), 0);
  for (size_t r = 0; r < order.size(); ++r)
    arm_of_[order[r].second] = static_cast<uint8_t>(r % arms_.size());
}

// Each customer visits Poisson(visit_scale x sessions_per_week / 7) times a
// day, at hours drawn from their night_owl trait; seeded per customer and day.
std::vector<Visit> Simulation::Visits(int day) const {
  std::vector<Visit> out;
  const int64_t day_start = start_ms_ + static_cast<int64_t>(day - 1) * kDayMs;
  for (uint32_t i = 0; i < customers_.size(); ++i) {
    sim::Rng rng(a_.seed, 1000 + static_cast<uint64_t>(day), i);
    int n = rng.Poisson(sim::VisitsPerDay(customers_[i], a_.visit_scale));
    for (int k = 0; k < n; ++k) {
      Visit v;
      v.customer = i;
      v.nth = static_cast<uint32_t>(k);
      v.hour = sim::VisitHour(customers_[i], rng);
      v.ts = day_start + v.hour * kHourMs + static_cast<int64_t>(rng.Next() % 3'600'000);
      out.push_back(v);
    }
  }
  std::sort(out.begin(), out.end(), [](const Visit& x, const Visit& y) {
    return x.ts != y.ts ? x.ts < y.ts : x.customer < y.customer;
  });
  return out;
}

void Simulation::Run() {
  std::printf("%-4s %-14s %10s %8s %12s %10s\n", "day", "arm", "decisions", "CTR", "revenue/dec",
              "errors");
  for (int day = 1; day <= a_.days; ++day) {
    if (day == a_.new_offer_day) AddNewOffer(day);
    RunDay(day);
    PrintDay(day);
  }
}

void Simulation::RunDay(int day) {
  std::vector<Visit> visits = Visits(day);
  Progress bar("day " + std::to_string(day) + "/" + std::to_string(a_.days));
  size_t next = 0, done = 0;
  const size_t max_in_flight = static_cast<size_t>(std::max(1, a_.in_flight));
  while (next < visits.size() || !pending_.empty()) {
    // A customer's next visit waits for their previous decision's events.
    while (next < visits.size() && pending_.size() < max_in_flight &&
           busy_[visits[next].customer] == 0) {
      SendDecide(visits[next]);
      ++next;
    }
    std::optional<json> reply = wire_.Recv(120'000);
    if (!reply) {
      if (!tailord_.Alive()) Fail("simulate: tailord exited:\n" + tailord_.LogTail());
      Fail("simulate: tailord did not answer in 120 s");
    }
    size_t before = pending_.size();
    OnReply(*reply, day);
    if (pending_.size() < before) ++done;
    if (done % 64 == 0)
      bar.Update(static_cast<int64_t>(next), static_cast<int64_t>(visits.size()), "visits");
  }
  bar.Update(static_cast<int64_t>(visits.size()), static_cast<int64_t>(visits.size()), "visits");
  bar.Done("");
}

void Simulation::SendDecide(const Visit& v) {
  const Arm& arm = arms_[arm_of_[v.customer]];
  const std::string id = "d" + std::to_string(++next_id_);
  json req = {{"v", 1},
              {"type", "decide"},
              {"id", id},
              {"customer", customers_[v.customer].id},
              {"channel", kChannel},
              {"placement", arm.placement},
              {"limit", arm.simulator_picks ? kMaxLimit : a_.show},
              {"context", {{"hour", v.hour}}},
              {"ts", v.ts}};
  wire_.Send(req);
  pending_[id] = Pending{Pending::Kind::kDecide, v};
  ++busy_[v.customer];
}

void Simulation::SendEvent(const Visit& v, json event) {
  const std::string id = "e" + std::to_string(++next_id_);
  event["v"] = 1;
  event["type"] = "event";
  event["id"] = id;
  event["customer"] = customers_[v.customer].id;
  event["channel"] = kChannel;
  wire_.Send(event);
  pending_[id] = Pending{Pending::Kind::kEvent, v};
  ++busy_[v.customer];
}

void Simulation::OnReply(const json& reply, int day) {
  if (!reply.is_object()) Fail("simulate: tailord sent a reply that is not a JSON object");
  const std::string id = reply.value("id", "");
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // not ours (cannot happen on a private socket)
  Pending p = it->second;
  pending_.erase(it);
  --busy_[p.visit.customer];
  Arm& arm = arms_[arm_of_[p.visit.customer]];
  DayStats& stats = arm.by_day[static_cast<size_t>(day - 1)];
  if (reply.contains("error")) {
    ++stats.errors;
    if (error_lines_++ < 5)
      std::fprintf(stderr, "simulate: %s %s: %s\n", arm.name.c_str(), id.c_str(),
                   reply["error"].dump().c_str());
    return;
  }
  if (p.kind == Pending::Kind::kDecide) OnDecision(p.visit, reply, day);
}

void Simulation::OnDecision(const Visit& v, const json& reply, int day) {
  Arm& arm = arms_[arm_of_[v.customer]];
  DayStats& stats = arm.by_day[static_cast<size_t>(day - 1)];
  const sim::TrueCustomer& c = customers_[v.customer];
  const std::string decision = reply.value("decision", "");
  ++stats.decisions;

  // The offers the engine returned that the true model knows, in rank order.
  std::vector<sim::TrueOffer> returned;
  for (const json& o : reply.value("offers", json::array())) {
    auto t = offers_.find(o.value("offer", ""));
    if (t == offers_.end()) continue;
    returned.push_back(t->second);
    if (IsDiscountArm(arm.kind)) returned.back().discount = ArmDiscount(arm, o, t->second);
  }
  auto& fatigue = fatigue_[v.customer];
  auto fatigue_of = [&](const std::string& offer) {
    auto f = fatigue.find(offer);
    return f == fatigue.end() ? 0.0 : sim::FatigueDecay(f->second.value, v.ts - f->second.ts);
  };
  sim::Rng rng(a_.seed, 5000 + static_cast<uint64_t>(day), (uint64_t{v.customer} << 8) | v.nth);
  std::vector<sim::TrueOffer> shown;
  const size_t k = static_cast<size_t>(a_.show);
  if (arm.kind == ArmKind::kOracle) {
    std::vector<double> f;
    for (const auto& o : returned) f.push_back(fatigue_of(o.id));
    for (size_t i : sim::OracleTopK(c, returned, v.hour, f, k)) shown.push_back(returned[i]);
  } else if (arm.simulator_picks) {
    // Uniform over the eligible offers (a partial Fisher-Yates shuffle).
    for (size_t i = 0; i < returned.size() && i < k; ++i) {
      size_t j = i + static_cast<size_t>(rng.Next() % (returned.size() - i));
      std::swap(returned[i], returned[j]);
      shown.push_back(returned[i]);
    }
  } else {
    for (size_t i = 0; i < returned.size() && i < k; ++i) shown.push_back(returned[i]);
  }

  int64_t t = v.ts + 1000;
  for (size_t pos = 0; pos < shown.size(); ++pos) {
    const sim::TrueOffer& o = shown[pos];
    ++stats.impressions;
    if (arm.sends_impressions)
      SendEvent(v, {{"event", "impression"},
                    {"offer", o.id},
                    {"decision", decision},
                    {"ts", t},
                    {"properties", {{"position", pos + 1}}}});
    sim::Exposure x;
    x.position = static_cast<int>(pos + 1);
    x.hour = v.hour;
    x.fatigue = fatigue_of(o.id);
    const sim::Response r = sim::TrueResponse(c, o, x);
    stats.exp_clicks += r.p_click;
    stats.exp_conversions += r.p_click * r.p_convert;
    stats.exp_revenue += r.p_click * r.p_convert * o.value;
    const double u_click = rng.Uniform(), u_convert = rng.Uniform(), u_dismiss = rng.Uniform();
    if (IsDiscountArm(arm.kind))
      TallyPrice(c, o, x, u_click < r.p_click && u_convert < r.p_convert,
                 &arm.price_by_day[static_cast<size_t>(day - 1)]);
    if (u_click < r.p_click) {
      ++stats.clicks;
      const int64_t click_ts = t + 2000 + static_cast<int64_t>(rng.Next() % 28'000);
      SendEvent(v, {{"event", "click"}, {"offer", o.id}, {"decision", decision}, {"ts", click_ts}});
      if (u_convert < r.p_convert) {
        ++stats.conversions;
        stats.revenue += o.value;
        const int64_t convert_ts = click_ts + 60'000 + static_cast<int64_t>(rng.Next() % 1'140'000);
        SendEvent(v, {{"event", "convert"},
                      {"offer", o.id},
                      {"decision", decision},
                      {"value", o.value},
                      {"ts", convert_ts}});
      }
    } else if (u_dismiss < r.p_dismiss) {
      ++stats.dismissals;
      SendEvent(v, {{"event", "dismiss"},
                    {"offer", o.id},
                    {"decision", decision},
                    {"ts", t + 3000 + static_cast<int64_t>(rng.Next() % 10'000)}});
    }
    Fatigue& f = fatigue[o.id];
    f.value = x.fatigue + 1;
    f.ts = v.ts;
    if (arm.kind == ArmKind::kTailor && new_offer_.added_on_day > 0 &&
        new_offer_.segment[v.customer]) {
      const size_t d = static_cast<size_t>(day - new_offer_.added_on_day);
      ++new_offer_.seg_impressions[d];
      if (o.id == new_offer_.offer.id) ++new_offer_.seg_new[d];
    }
  }
}

// The new offer promotes one category with a deep discount and a high value:
// for that category's fans it is the best offer by the true model. Added to
// the offers file, then rules.reload, as a marketer would.
void Simulation::AddNewOffer(int day) {
  NewOffer& n = new_offer_;
  n.offer.id = "o_sim_new_" + a_.new_offer_category;
  n.offer.category = a_.new_offer_category;
  n.offer.value = 45;
  n.offer.discount = 0.35;
  YAML::Node o(YAML::NodeType::Map);
  o["id"] = n.offer.id;
  o["name"] = "New: three " + a_.new_offer_category + " favourites for the price of two";
  o["promotes"]["category"] = a_.new_offer_category;
  o["value"] = n.offer.value;
  o["discount"]["min"] = 0.3;
  o["discount"]["max"] = 0.4;
  o["placements"].push_back("home");
  for (const Arm& arm : arms_) o["placements"].push_back(arm.placement);
  config_.offers_root["offers"].push_back(o);
  WriteOffers(config_);
  offers_ = TrueOffers(config_.offers_yaml);

  const std::string id = "r" + std::to_string(++next_id_);
  wire_.Send({{"v", 1}, {"type", "rules.reload"}, {"id", id}});
  std::optional<json> reply = wire_.Recv(120'000);
  if (!reply || reply->value("id", "") != id) Fail("simulate: no reply to rules.reload");
  if (reply->contains("error"))
    Fail("simulate: rules.reload refused the new offer: " + reply->dump());

  // The best segment: customers for whom the new offer has the highest true
  // expected value of all offers on the arms' placements (noon, no fatigue).
  std::vector<sim::TrueOffer> all;
  size_t new_index = 0;
  for (const auto& [oid, t] : offers_) {
    if (oid == n.offer.id) new_index = all.size();
    all.push_back(t);
  }
  n.segment.assign(customers_.size(), 0);
  size_t members = 0;
  for (size_t i = 0; i < customers_.size(); ++i) {
    auto best = sim::OracleTopK(customers_[i], all, 12, {}, 1);
    n.segment[i] = !best.empty() && best[0] == new_index;
    members += n.segment[i] && arms_[arm_of_[i]].kind == ArmKind::kTailor;
  }
  n.added_on_day = day;
  n.seg_impressions.assign(static_cast<size_t>(a_.days - day + 1), 0);
  n.seg_new.assign(static_cast<size_t>(a_.days - day + 1), 0);
  std::printf(
      "day %d: added offer %s (%s, value %.0f); its best segment holds %zu customers of "
      "the tailor arm\n",
      day, n.offer.id.c_str(), n.offer.category.c_str(), n.offer.value, members);
}

void Simulation::PrintDay(int day) const {
  for (const Arm& arm : arms_) {
    const DayStats& s = arm.by_day[static_cast<size_t>(day - 1)];
    if (!arm.price_by_day.empty()) {
      // The discount scenario: margin rather than revenue, and the discount.
      const PriceDay& p = arm.price_by_day[static_cast<size_t>(day - 1)];
      std::printf("%-4d %-14s %10lld %7.2f%% %12.3f %10lld  margin/dec %.3f, avg discount %.1f%%\n",
                  day, arm.name.c_str(), static_cast<long long>(s.decisions), 100 * s.ctr(),
                  s.revenue_per_decision(), static_cast<long long>(s.errors),
                  s.decisions ? p.margin / static_cast<double>(s.decisions) : 0.0,
                  p.impressions ? 100 * p.discount_sum / static_cast<double>(p.impressions) : 0.0);
      continue;
    }
    std::printf("%-4d %-14s %10lld %7.2f%% %12.3f %10lld\n", day, arm.name.c_str(),
                static_cast<long long>(s.decisions), 100 * s.ctr(), s.revenue_per_decision(),
                static_cast<long long>(s.errors));
  }
  std::fflush(stdout);
}

DayStats Simulation::Total(const Arm& arm, int from_day, int to_day) const {
  DayStats t;
  for (int d = from_day; d <= to_day; ++d) t.Add(arm.by_day[static_cast<size_t>(d - 1)]);
  return t;
}

// --- The discount scenario ---------------------------------------------------

double Simulation::ArmDiscount(const Arm& arm, const json& offer, const sim::TrueOffer& o) const {
  switch (arm.kind) {
    case ArmKind::kNoDiscount:
      return 0;
    case ArmKind::kFixedDiscount:
      return o.discount;  // the middle of the offer's range (TrueOffers)
    default: {
      // What the engine chose; an offer it did not price is shown at full price.
      auto d = offer.find("discount");
      return d != offer.end() && d->is_number() ? d->get<double>() : 0.0;
    }
  }
}

void Simulation::TallyPrice(const sim::TrueCustomer& c, const sim::TrueOffer& o,
                            const sim::Exposure& x, bool converted, PriceDay* day) {
  auto p = prices_.find(o.id);
  const double price = p == prices_.end() ? o.value : p->second.first;
  const double cost = p == prices_.end() ? 0 : p->second.second;
  auto expected = [&](double d) {
    sim::TrueOffer at = o;
    at.discount = d;
    const sim::Response r = sim::TrueResponse(c, at, x);
    return r.p_click * r.p_convert * (price * (1 - d) - cost);
  };
  day->exp_margin += expected(o.discount);
  double best = 0;
  for (double d = kSimDiscountMin; d <= kSimDiscountMax + 1e-9; d += kSimDiscountStep)
    best = std::max(best, expected(d));
  day->exp_margin_best += best;
  ++day->impressions;
  day->discount_sum += o.discount;
  for (const std::string& g : {"age_band:" + c.age_band, "gender:" + c.gender,
                               std::string(c.deal_seeker >= 0.5 ? "deal_seeker" : "other")}) {
    auto& [sum, n] = day->by_group[g];
    sum += o.discount;
    ++n;
  }
  if (!converted) return;
  ++day->conversions;
  day->margin += price * (1 - o.discount) - cost;
}

PriceDay Simulation::PriceTotal(const Arm& arm, int from_day, int to_day) const {
  PriceDay t;
  for (int d = from_day; d <= to_day && d <= static_cast<int>(arm.price_by_day.size()); ++d)
    t.Add(arm.price_by_day[static_cast<size_t>(d - 1)]);
  return t;
}

// max / min of the average discount over the groups with `prefix` and at
// least min_n impressions ("unknown" left out, as the engine's check does).
json DisparityOf(const PriceDay& t, const std::string& prefix, int64_t min_n) {
  std::vector<std::string> names;  // the means name them: no reallocation
  names.reserve(t.by_group.size());
  std::vector<pricing::GroupMean> means;
  json groups = json::object();
  for (const auto& [g, v] : t.by_group) {
    if (g.compare(0, prefix.size(), prefix) != 0) continue;
    names.push_back(g.substr(prefix.size()));
    const double mean = v.second ? v.first / static_cast<double>(v.second) : 0;
    groups[names.back()] = {{"impressions", v.second}, {"avg_discount", mean}};
    means.push_back({names.back(), mean, v.second});
  }
  const pricing::Disparity d = pricing::MaxOverMin(means, min_n);
  return {{"groups", groups},
          {"ratio", std::isinf(d.ratio) ? 1e9 : d.ratio},
          {"max_group", d.max_group},
          {"min_group", d.min_group}};
}

json Simulation::DiscountReport(const json& engine_stats) const {
  const int from = a_.days / 2 + 1;
  json arms = json::array();
  double margin_tailor = 0, margin_none = 0, margin_fixed = 0, ratio = 0, ds = 0, other = 0;
  bool have[3] = {false, false, false};
  for (const Arm& arm : arms_) {
    if (!IsDiscountArm(arm.kind)) continue;
    const DayStats d = Total(arm, from, a_.days);
    const PriceDay p = PriceTotal(arm, from, a_.days);
    const double mpd = d.decisions ? p.margin / static_cast<double>(d.decisions) : 0;
    const json age = DisparityOf(p, "age_band:", 30), gender = DisparityOf(p, "gender:", 30);
    auto mean_of = [&](const std::string& g) {
      auto it = p.by_group.find(g);
      return it == p.by_group.end() || !it->second.second
                 ? 0.0
                 : it->second.first / static_cast<double>(it->second.second);
    };
    json j = {
        {"arm", arm.name},
        {"decisions", d.decisions},
        {"impressions", p.impressions},
        {"conversions", p.conversions},
        {"margin", p.margin},
        {"margin_per_decision", mpd},
        {"expected_margin_per_decision", d.per_decision(p.exp_margin)},
        {"best_level_margin_per_decision", d.per_decision(p.exp_margin_best)},
        {"avg_discount", p.impressions ? p.discount_sum / static_cast<double>(p.impressions) : 0.0},
        {"avg_discount_deal_seekers", mean_of("deal_seeker")},
        {"avg_discount_others", mean_of("other")},
        {"age_band", age},
        {"gender", gender}};
    arms.push_back(j);
    if (arm.kind == ArmKind::kNoDiscount) margin_none = mpd, have[0] = true;
    if (arm.kind == ArmKind::kFixedDiscount) margin_fixed = mpd, have[1] = true;
    if (arm.kind == ArmKind::kPriced) {
      margin_tailor = mpd, have[2] = true;
      ratio = age["ratio"].get<double>();
      ds = mean_of("deal_seeker");
      other = mean_of("other");
    }
  }
  json targets = json::array();
  auto target = [&](const std::string& name, double value, double goal, const char* op, bool pass) {
    targets.push_back(
        {{"name", name}, {"value", value}, {"target", goal}, {"op", op}, {"pass", pass}});
  };
  if (have[2]) {
    if (have[0])
      target("tailor / no-discount margin per decision",
             margin_none > 0 ? margin_tailor / margin_none : 0, 1.0, ">",
             margin_tailor > margin_none);
    if (have[1])
      target("tailor / fixed-discount margin per decision",
             margin_fixed > 0 ? margin_tailor / margin_fixed : 0, 1.0, ">",
             margin_tailor > margin_fixed);
    target("tailor disparity of average discount by age band", ratio, kSimMaxDisparity,
           "<=", ratio <= kSimMaxDisparity);
    target("tailor deal seekers' / others' average discount", other > 0 ? ds / other : 0, 1.0, ">",
           ds > other);
  }
  json counters =
      engine_stats.is_object() ? engine_stats.value("counters", json::object()) : json::object();
  return {{"from_day", from},
          {"to_day", a_.days},
          {"pricing",
           {{"min_margin", kSimMinMargin},
            {"max_disparity", kSimMaxDisparity},
            {"group_by", "age_band"},
            {"protected", {"age_band", "gender"}},
            {"features", a_.pricing_features},
            {"discount",
             {{"min", kSimDiscountMin}, {"max", kSimDiscountMax}, {"step", kSimDiscountStep}}},
            {"cost_share", kSimCostShare}}},
          {"engine",
           {{"priced", counters.value("pricing.priced", 0)},
            {"guardrail", counters.value("pricing.guardrail", 0)}}},
          {"arms", arms},
          {"targets", targets}};
}

void PrintDiscount(const json& d) {
  std::printf(
      "\ndiscount scenario, days %d-%d (margin per decision: drawn, the true model's "
      "expectation, and the best level per impression)\n",
      d["from_day"].get<int>(), d["to_day"].get<int>());
  std::printf("%-15s %9s %11s %9s %8s %8s %8s %9s %11s %9s\n", "arm", "decisions", "conversions",
              "margin", "mrg/dec", "exp/dec", "best/dec", "avg disc", "deal/other", "age ratio");
  for (const json& a : d["arms"])
    std::printf(
        "%-15s %9lld %11lld %9.0f %8.3f %8.3f %8.3f %8.1f%% %5.1f/%4.1f%% %9.3f\n",
        a["arm"].get<std::string>().c_str(), a["decisions"].get<long long>(),
        a["conversions"].get<long long>(), a["margin"].get<double>(),
        a["margin_per_decision"].get<double>(), a["expected_margin_per_decision"].get<double>(),
        a["best_level_margin_per_decision"].get<double>(), 100 * a["avg_discount"].get<double>(),
        100 * a["avg_discount_deal_seekers"].get<double>(),
        100 * a["avg_discount_others"].get<double>(), a["age_band"]["ratio"].get<double>());
  std::printf("engine: %lld priced, %lld changed by a guardrail\n",
              d["engine"]["priced"].get<long long>(), d["engine"]["guardrail"].get<long long>());
  std::printf("\ntargets\n");
  for (const json& t : d["targets"])
    std::printf("  %-4s %-56s %6.3f (target %s %.2f)\n", t["pass"].get<bool>() ? "PASS" : "FAIL",
                t["name"].get<std::string>().c_str(), t["value"].get<double>(),
                t["op"].get<std::string>().c_str(), t["target"].get<double>());
}

const Arm* FindArm(const std::vector<Arm>& arms, ArmKind kind) {
  for (const Arm& a : arms)
    if (a.kind == kind) return &a;
  return nullptr;
}

json Simulation::Report(double seconds) const {
  json out = json::object();
  json arms = json::array();
  for (const Arm& arm : arms_) {
    json j = {{"arm", arm.name}, {"placement", arm.placement}};
    j.update(Total(arm, 1, a_.days).ToJson());
    json ctr = json::array(), rpd = json::array();
    for (const DayStats& s : arm.by_day) {
      ctr.push_back(s.ctr());
      rpd.push_back(s.revenue_per_decision());
    }
    j["ctr_by_day"] = ctr;
    j["revenue_per_decision_by_day"] = rpd;
    arms.push_back(j);
  }
  out["arms"] = arms;

  json shares = json::array();
  for (size_t d = 0; d < new_offer_.seg_impressions.size(); ++d)
    shares.push_back(new_offer_.seg_impressions[d]
                         ? json(static_cast<double>(new_offer_.seg_new[d]) /
                                static_cast<double>(new_offer_.seg_impressions[d]))
                         : json(nullptr));
  int64_t seg = 0;
  for (size_t i = 0; i < new_offer_.segment.size(); ++i)
    seg += new_offer_.segment[i] && arms_[arm_of_[i]].kind == ArmKind::kTailor;
  out["new_offer"] = {{"offer", new_offer_.offer.id},
                      {"category", new_offer_.offer.category},
                      {"added_on_day", new_offer_.added_on_day},
                      {"segment_customers", seg},
                      {"segment_impressions_by_day", new_offer_.seg_impressions},
                      {"share_of_best_segment_by_day", shares}};

  const int from = std::max(1, a_.days - 6);
  json last = json::array();
  for (const Arm& arm : arms_) {
    json j = {{"arm", arm.name}};
    j.update(Total(arm, from, a_.days).ToJson());
    last.push_back(j);
  }
  out["last_days"] = {{"from_day", from}, {"to_day", a_.days}, {"arms", last}};

  // The targets over the last days: printed, never asserted.
  json targets = json::array();
  const Arm* pop = FindArm(arms_, ArmKind::kPopularity);
  const Arm* tai = FindArm(arms_, ArmKind::kTailor);
  const Arm* gre = FindArm(arms_, ArmKind::kGreedy);
  const Arm* ora = FindArm(arms_, ArmKind::kOracle);
  auto ratio = [](double x, double y) { return y > 0 ? x / y : 0.0; };
  auto target = [&](const std::string& name, double value, double goal, bool strict) {
    targets.push_back({{"name", name},
                       {"value", value},
                       {"target", goal},
                       {"pass", strict ? value > goal : value >= goal}});
  };
  // Only when every arm ran (--arms may leave some out).
  if (pop && tai && gre && ora) {
    const DayStats tp = Total(*tai, from, a_.days), pp = Total(*pop, from, a_.days),
                   gp = Total(*gre, from, a_.days), op = Total(*ora, from, a_.days);
    target("tailor / popularity revenue per decision",
           ratio(tp.revenue_per_decision(), pp.revenue_per_decision()), 1.5, false);
    target("tailor / popularity CTR", ratio(tp.ctr(), pp.ctr()), 1.5, false);
    target("tailor / oracle revenue per decision",
           ratio(tp.revenue_per_decision(), op.revenue_per_decision()), 0.85, false);
    target("tailor / tailor-greedy revenue per decision",
           ratio(tp.revenue_per_decision(), gp.revenue_per_decision()), 1.0, true);
  }
  // "Within 2 days": the share on the second day after the offer was added.
  double share2 = shares.size() >= 2 && shares[1].is_number() ? shares[1].get<double>() : 0.0;
  target("new offer share of its best segment on day 2 after it was added", share2, 0.5, false);
  out["targets"] = targets;
  out["seconds"] = seconds;
  return out;
}

void PrintTargets(const json& report) {
  const json& last = report["last_days"];
  std::printf("\nlast %d days (days %d-%d)\n",
              last["to_day"].get<int>() - last["from_day"].get<int>() + 1,
              last["from_day"].get<int>(), last["to_day"].get<int>());
  std::printf("%-14s %10s %11s %8s %11s %9s %12s\n", "arm", "decisions", "impressions", "CTR",
              "conversions", "revenue", "revenue/dec");
  for (const json& a : last["arms"])
    std::printf("%-14s %10lld %11lld %7.2f%% %11lld %9.0f %12.3f\n",
                a["arm"].get<std::string>().c_str(), a["decisions"].get<long long>(),
                a["impressions"].get<long long>(), 100 * a["ctr"].get<double>(),
                a["conversions"].get<long long>(), a["revenue"].get<double>(),
                a["revenue_per_decision"].get<double>());
  const json& n = report["new_offer"];
  if (n["added_on_day"].get<int>() > 0) {
    std::printf(
        "\nnew offer %s added on day %d; share of its best segment's impressions (tailor "
        "arm) by day:",
        n["offer"].get<std::string>().c_str(), n["added_on_day"].get<int>());
    for (const json& s : n["share_of_best_segment_by_day"])
      std::printf(s.is_number() ? " %.0f%%" : " -", s.is_number() ? 100 * s.get<double>() : 0.0);
    std::printf("\n");
  }
  std::printf("\ntargets\n");
  for (const json& t : report["targets"])
    std::printf("  %-4s %-66s %6.2f (target %s %.2f)\n", t["pass"].get<bool>() ? "PASS" : "FAIL",
                t["name"].get<std::string>().c_str(), t["value"].get<double>(),
                t["name"].get<std::string>().find("greedy") != std::string::npos ? ">" : ">=",
                t["target"].get<double>());
}

// --- The store and the customers' truth ---------------------------------------

std::unique_ptr<Store> OpenStore(const std::string& path, bool writer) {
  Store::Options so;
  so.path = path;
  so.start_writer = writer;
  so.synchronous_full = false;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store) Fail("simulate: " + err);
  return store;
}

// A fresh demo world ending where the simulation starts.
void MakeWorld(const SimArgs& a, const std::string& path, int64_t end_ms) {
  auto store = OpenStore(path, false);
  ingest::DemoOptions o;
  o.customers = a.customers;
  o.items = a.items;
  o.days = a.history_days;
  o.seed = a.seed;
  o.end_ms = end_ms;
  Progress bar("demo");
  Status st = ingest::GenerateDemo(*store, o, nullptr,
                                   [&](std::string_view stage, int64_t done, int64_t total) {
                                     bar.Update(done, total, std::string(stage));
                                   });
  bar.Done("");
  if (!st.ok()) Fail("simulate: " + st.message());
}

// The hidden traits of the store's customers, regenerated from the seed and
// checked against the store's truth rows so a store from another seed is
// refused rather than simulated with the wrong customers.
std::vector<sim::TrueCustomer> Customers(const SimArgs& a, Store& store, int64_t* newest_ms) {
  ingest::DemoOptions o;
  o.customers = static_cast<int>(store.Count("customers"));
  o.items = static_cast<int>(store.Count("items"));
  o.seed = a.seed;
  std::vector<ingest::DemoCustomerTruth> truth = ingest::DemoHiddenTraits(o);
  if (truth.empty()) Fail("simulate: the store holds no demo customers");
  for (size_t i = 0; i < truth.size() && i < 50; ++i) {
    auto stored = store.Truth(truth[i].id);
    auto it = stored.find("deal_seeker");
    auto sp = stored.find("sessions_per_week");
    if (it == stored.end() || sp == stored.end() ||
        std::abs(it->second - truth[i].deal_seeker) > 1e-9 ||
        std::abs(sp->second - truth[i].sessions_per_week) > 1e-9)
      Fail("simulate: " + store.path() + " is not the demo world of --seed " +
           std::to_string(a.seed) + " (customer " + truth[i].id +
           "'s hidden traits differ); pass the seed it was made with");
  }
  *newest_ms = 0;
  store.ForEachEvent(0, [&](const Event& e) {
    *newest_ms = std::max(*newest_ms, e.ts_ms);
    return true;
  });
  std::vector<sim::TrueCustomer> out;
  out.reserve(truth.size());
  for (const auto& t : truth) {
    sim::TrueCustomer c;
    c.id = t.id;
    c.categories = ingest::DemoCategories();
    c.category_weight = t.category_weight;
    c.deal_seeker = t.deal_seeker;
    c.night_owl = t.night_owl;
    c.big_spender = t.big_spender;
    c.sessions_per_week = t.sessions_per_week;
    if (auto row = store.GetCustomer(t.id)) {
      const json attrs = json::parse(row->attributes_json, nullptr, false);
      c.age_band = pricing::GroupOf(attrs, "age_band");
      c.gender = pricing::GroupOf(attrs, "gender");
    }
    out.push_back(std::move(c));
  }
  return out;
}

void RunSimulate(const SimArgs& a) {
  const int64_t t0 = mono_ns();
  if (a.show < 1 || a.show > kMaxLimit)
    Fail("simulate: --show must be 1.." + std::to_string(kMaxLimit));
  const auto& cats = ingest::DemoCategories();
  if (std::find(cats.begin(), cats.end(), a.new_offer_category) == cats.end())
    Fail("simulate: --new-offer-category '" + a.new_offer_category + "' is not a demo category");

  // Work directory: the simulation's config, tailord's log, the store by default.
  std::string work = a.work_dir;
  bool remove_work = false;
  if (work.empty()) {
    char tmpl[] = "/tmp/tailor-sim-XXXXXX";
    if (!mkdtemp(tmpl)) Fail("simulate: cannot create a temporary directory");
    work = tmpl;
    remove_work = !a.keep_work;
  } else {
    fs::create_directories(work);
  }
  struct Cleanup {
    std::string dir;
    bool remove;
    ~Cleanup() {
      std::error_code ec;
      if (remove) fs::remove_all(dir, ec);
    }
  } cleanup{work, remove_work};

  const std::string store_path = a.store.empty() ? work + "/sim.db" : a.store;
  if (!fs::exists(store_path)) {
    // The world ends at today's midnight minus the simulated days: the
    // simulation then ends today.
    const int64_t end = (now_ms() / kDayMs - a.days) * kDayMs;
    MakeWorld(a, store_path, end);
  }
  int64_t newest = 0;
  std::vector<sim::TrueCustomer> customers;
  {
    auto store = OpenStore(store_path, false);
    customers = Customers(a, *store, &newest);
  }
  const int64_t start_ms = (newest / kDayMs + 1) * kDayMs;

  const std::string config_file = ResolveConfigFile(a.config);
  std::vector<std::string> errors;
  auto base = LoadConfig(config_file, "", &errors);
  if (!base) Fail("simulate: " + (errors.empty() ? config_file : errors.front()), 2);
  EngineKeys keys;
  keys.policy = EngineAccepts("    policy: {kind: " + a.policy + "}\n") &&
                EngineAccepts("    policy: {kind: epsilon, exploration: 1.0}\n");
  keys.impressions = EngineAccepts("    impressions: explicit\n");
  if (!keys.policy)
    std::fprintf(stderr,
                 "simulate: this engine has no placement `policy` key yet: every arm is greedy, "
                 "and `random` picks uniformly among the eligible offers itself\n");
  if (!keys.impressions)
    std::fprintf(stderr,
                 "simulate: this engine has no placement `impressions` key yet: the simulator "
                 "sends an impression event for every offer it shows\n");
  const bool discount = a.scenario == "discount", experiment = a.scenario == "experiment";
  std::vector<Arm> arms = discount     ? MakeDiscountArms(a, keys)
                          : experiment ? MakeExperimentArms(a, keys)
                                       : MakeArms(a, *base, keys);
  SimConfig sc = WriteSimConfig(config_file, work, arms);
  if (discount) PriceSimConfig(&sc, arms, a.pricing_features);
  if (experiment) WriteSimExperiment(sc, arms.front());
  arms = SelectArms(std::move(arms), a.arms);
  WriteOffers(sc);
  errors.clear();
  if (!LoadConfig(sc.tailor_yaml, "", &errors))
    Fail("simulate: the simulation's config does not load: " +
         (errors.empty() ? sc.tailor_yaml : errors.front()));

  std::printf(
      "simulate: %zu customers, %d days from %s, %zu arms of ~%zu customers, show %d, "
      "seed %llu, store %s\n",
      customers.size(), a.days, format_iso8601_ms(start_ms).c_str(), arms.size(),
      customers.size() / arms.size(), a.show, static_cast<unsigned long long>(a.seed),
      store_path.c_str());
  std::fflush(stdout);
  TailordOptions topt;
  topt.who = "simulate";
  topt.bin = a.tailord;
  topt.plugin_dir = a.plugin_dir;
  topt.config = sc.tailor_yaml;
  topt.store = store_path;
  topt.work_dir = work;
  topt.ready_after_training = false;  // the config trains before serving
  TailordProcess tailord(topt);
  Wire wire(tailord.requests());
  // The discount and experiment scenarios add no offer mid-run: the arms
  // differ only in price, or in what the experiment's arms override.
  SimArgs run_args = a;
  if (discount || experiment) run_args.new_offer_day = 0;
  Simulation simulation(run_args, std::move(customers), std::move(arms), sc, start_ms, wire,
                        tailord);
  simulation.Run();
  json engine_stats;
  if (discount) {
    // The pricing counters (how often a guardrail changed a choice).
    wire.Send({{"v", 1}, {"type", "stats"}, {"id", "stats"}});
    if (std::optional<json> r = wire.Recv(30'000); r && r->is_object())
      engine_stats = r->value("stats", json::object());
  }
  const int rc = tailord.Stop();
  if (rc != 0) std::fprintf(stderr, "simulate: tailord exited with %d\n", rc);

  json report = simulation.Report(static_cast<double>(mono_ns() - t0) / 1e9);
  report["config"] = {{"days", a.days},
                      {"customers", a.customers},
                      {"seed", a.seed},
                      {"show", a.show},
                      {"visit_scale", a.visit_scale},
                      {"policy", keys.policy ? a.policy : "greedy (no policy key in this engine)"},
                      {"engine_records_impressions", keys.impressions},
                      {"new_offer_day", a.new_offer_day},
                      {"start", format_iso8601_ms(start_ms)},
                      {"store", store_path},
                      {"scenario", a.scenario}};
  if (discount) {
    report["discount"] = simulation.DiscountReport(engine_stats);
    report["targets"] = report["discount"]["targets"];
    PrintDiscount(report["discount"]);
  } else if (experiment) {
    report["experiment"] = kSimExperiment;
    std::printf(
        "\nthe engine split the customers itself; each arm's figures:\n"
        "  tailor report --store %s --experiment %s --html report.html --json report.json\n",
        store_path.c_str(), kSimExperiment);
  } else {
    PrintTargets(report);
  }
  std::printf("\n%.1f s in all\n", report["seconds"].get<double>());
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << report.dump(2) << "\n";
    if (!f) Fail("simulate: cannot write " + a.json_out);
    std::printf("wrote %s\n", a.json_out.c_str());
  }
}

}  // namespace

void RegisterSimulate(CLI::App& app) {
  auto a = std::make_shared<SimArgs>();
  CLI::App* s = app.add_subcommand(
      "simulate",
      "Drive a real tailord with simulated customers (docs/simulate.md) and compare arms");
  s->add_option("--days", a->days, "simulated days")
      ->capture_default_str()
      ->check(CLI::Range(1, 365));
  s->add_option("--customers", a->customers, "demo customers (a new world only)")
      ->capture_default_str()
      ->check(CLI::Range(5, 10'000'000));
  s->add_option("--items", a->items, "demo items (a new world only)")
      ->capture_default_str()
      ->check(CLI::Range(10, 10'000'000));
  s->add_option("--history-days", a->history_days, "days of demo history before the simulation")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  s->add_option("--seed", a->seed, "seed of the demo world and of the simulation")
      ->capture_default_str();
  s->add_option("--store", a->store,
                "store: an existing demo world (made with the same --seed), or a new one made "
                "here; it keeps the decisions and events of the run");
  s->add_option("--config", a->config, "config directory (or its tailor.yaml) to simulate")
      ->capture_default_str();
  s->add_option("--policy", a->policy, "the `tailor` arm's exploration policy")
      ->capture_default_str();
  s->add_option("--show", a->show, "offers shown per decision (K)")->capture_default_str();
  s->add_option("--new-offer-day", a->new_offer_day, "day the new offer is added (0: never)")
      ->capture_default_str();
  s->add_option("--new-offer-category", a->new_offer_category, "the new offer's category")
      ->capture_default_str();
  s->add_option("--visit-scale", a->visit_scale,
                "visits a day = scale x the customer's sessions per week / 7")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1000.0));
  s->add_option("--in-flight", a->in_flight, "requests in flight at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  s->add_option("--tailord", a->tailord, "tailord binary (default: beside this tailor)");
  s->add_option("--plugin-dir", a->plugin_dir, "plugin directory for tailord");
  s->add_option("--work-dir", a->work_dir, "keep the simulation's config and tailord log here");
  s->add_flag("--keep-work", a->keep_work, "keep the temporary work directory");
  s->add_option("--arms", a->arms,
                "the arms that get customers, comma-separated (default: every arm; the config "
                "keeps every arm's placement)");
  s->add_option("--scenario", a->scenario,
                "learn: the loop's arms; discount: no-discount, fixed-discount and tailor's "
                "pricing with guardrails; experiment: one placement that the engine splits "
                "into control and tailor arms (docs/simulate.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"learn", "discount", "experiment"}));
  s->add_option("--pricing-features", a->pricing_features,
                "the discount scenario's pricing segment: DNA traits or customer attributes, "
                "comma-separated")
      ->capture_default_str();
  s->add_option("--json", a->json_out, "write the report as JSON here");
  s->callback([a] { RunSimulate(*a); });
}

}  // namespace tailor::cli
