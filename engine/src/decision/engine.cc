#include "decision/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>

#include "common/log.h"
#include "common/time.h"
#include "decision/shadow.h"
#include "decision/stages.h"
#include "decision/trace.h"
#include "model/consent.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

using nlohmann::json;

const char* NullIfEmpty(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

tailor_event_view ViewOf(const Event& e) {
  return tailor_event_view{e.customer_id.c_str(),
                           e.type.c_str(),
                           NullIfEmpty(e.item_id),
                           NullIfEmpty(e.offer_id),
                           e.ts_ms,
                           e.value,
                           e.quantity,
                           NullIfEmpty(e.text)};
}

json EventJson(const Event& e) {
  json j = {{"event", e.type}, {"ts", format_iso8601_ms(e.ts_ms)}};
  if (!e.item_id.empty()) j["item"] = e.item_id;
  if (!e.offer_id.empty()) j["offer"] = e.offer_id;
  if (!e.channel.empty()) j["channel"] = e.channel;
  if (e.value != 0) j["value"] = e.value;
  if (e.quantity != 0) j["quantity"] = e.quantity;
  if (!e.text.empty()) j["text"] = e.text;
  return j;
}

json ParseObject(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_object() ? j : json::object();
}

// Consent gates personalisation: an explicit "personalization": false means the
// customer gets the same answer as an anonymous visitor.
bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return v.empty() || std::find(v.begin(), v.end(), s) != v.end();
}

// One rule runtime per worker thread and snapshot; rebuilt after a reload.
struct ThreadRules {
  const void* engine = nullptr;
  uint64_t version = 0;
  const RuleSet* set = nullptr;  // the snapshot's rules or an experiment arm's
  std::unique_ptr<RuleRuntime> runtime;
};

// Per-thread stage outputs, reused so that a decision allocates little.
struct DecisionScratch {
  std::vector<tailor_event_view> recent;
  Candidates candidates;
  PluginScores scores;
  Judgement judgement;
  Responses responses;
  PolicyPicks picks;
  learning::PolicyScratch policy;
  DiversityScratch diversity;
  std::vector<pricing::Choice> prices;
};

// The record stage's impressions: one per shown candidate, at its position,
// with the P it was ranked by and the policy's propensity and exploration
// flag when the policy stage gave them for that position.
std::vector<Impression> ShownImpressions(const Candidates& cands, const Judgement& judgement,
                                         const Responses& responses, const PolicyPicks& picks,
                                         const std::vector<Ranked>& ranked, size_t shown,
                                         const Catalog& catalog, const DecideRequest& req,
                                         const std::string& decision_id, int64_t now) {
  std::vector<Impression> out;
  if (req.customer.empty()) return out;  // nobody to attribute a response to
  out.reserve(shown);
  for (size_t r = 0; r < shown && r < ranked.size(); ++r) {
    const size_t i = ranked[r].candidate;
    const tailor_candidate& c = cands.list[i];
    Impression& m = out.emplace_back();
    m.decision_id = decision_id;
    m.customer_id = req.customer;
    m.placement = req.placement;
    m.channel = req.channel;
    if (c.offer_id) m.offer_id = c.offer_id;
    if (c.item_id) m.item_id = c.item_id;
    if (c.category) m.category = c.category;
    // An offer's promoted item: a purchase of it is the offer's conversion.
    if (m.item_id.empty() && cands.offer_index[i] >= 0)
      m.item_id = catalog.offers[static_cast<size_t>(cands.offer_index[i])].item;
    m.position = static_cast<int>(r + 1);
    m.p_click = judgement.propensity[i];
    if (responses.active) {
      m.p_click = responses.model_p[i];  // what the offer's correction compares with
      m.segment = responses.segment;
      m.features.assign(responses.x(i), responses.x(i) + responses.dim);
    }
    if (r < picks.propensity.size()) m.propensity = picks.propensity[r];
    if (r < picks.explore.size()) m.explore = picks.explore[r] != 0;
    m.ts_ms = now;
  }
  return out;
}

}  // namespace

Engine::Engine(EngineConfig config, Store* store, PluginHost* plugins, Metrics* metrics)
    : config_(std::move(config)),
      store_(store),
      plugins_(plugins),
      metrics_(metrics),
      cache_(config_.store.profile_cache),
      decision_seq_(std::random_device{}() & 0xffff),
      started_ms_(now_ms()) {
  auto empty = std::make_shared<Snapshot>();
  empty->config = config_;
  empty->catalog = std::make_shared<const Catalog>();
  empty->sensitive = std::make_shared<const SensitiveGate>(config_.sensitive, std::vector<Offer>{},
                                                           std::vector<Item>{});
  snapshot_.store(std::move(empty));
  std::vector<std::string> plugin_names;
  for (const auto& p : plugins_->plugins()) plugin_names.push_back(p->name());
  learner_ = std::make_unique<learning::Learner>(std::move(plugin_names));
  learner_->Configure(config_.placements);
  feedback_ = std::make_unique<FeedbackLoop>(store_, FeedbackLoop::Options{},
                                             [this](const Event& e) { AfterDurable(e, true); });
  feedback_->Configure(config_.placements);
  feedback_->SetImpressionObserver([this](const Impression& m) {
    learner_->Observe(m);
    pricer_->Observe(m);
  });
  feedback_->SetObserver([this](const Outcome& o) {
    learner_->Observe(o);
    pricer_->Observe(o);
    if (outcome_listener_) outcome_listener_(o);
  });
}

std::shared_ptr<Snapshot> Engine::Build(EngineConfig config, std::vector<std::string>* errors) {
  size_t before = errors->size();
  auto cat = std::make_shared<Catalog>();
  std::unordered_map<std::string, size_t> offer_pos;
  // Offers imported into the store first; the config file wins on the same id.
  for (const OfferRecord& rec : store_->LoadOffers()) {
    Offer o;
    std::string err;
    if (!ParseOfferJson(rec.definition_json, "store:offers/" + rec.id, &o, &err)) {
      log::Warn("catalog", "skipping stored offer: " + err);
      continue;
    }
    if (o.id.empty()) o.id = rec.id;
    offer_pos[o.id] = cat->offers.size();
    cat->offers.push_back(std::move(o));
  }
  for (const Offer& o : config.offers) {
    if (auto it = offer_pos.find(o.id); it != offer_pos.end()) {
      cat->offers[it->second] = o;
    } else {
      offer_pos[o.id] = cat->offers.size();
      cat->offers.push_back(o);
    }
  }
  for (size_t i = 0; i < cat->offers.size(); ++i) cat->offer_index[cat->offers[i].id] = i;
  cat->max_offer_value = 0;
  for (const Offer& o : cat->offers) cat->max_offer_value = std::max(cat->max_offer_value, o.value);
  if (cat->max_offer_value <= 0) cat->max_offer_value = 1;
  cat->items = store_->LoadItems();
  cat->item_value.reserve(cat->items.size());
  for (size_t i = 0; i < cat->items.size(); ++i) {
    const Item& it = cat->items[i];
    cat->item_index[it.id] = i;
    json attrs = ParseObject(it.attributes_json);
    double margin = attrs.value("margin", 1.0);
    double v = it.price > 0 ? it.price * (margin > 0 ? margin : 1.0) : 1.0;
    cat->item_value.push_back(v);
  }
  auto snap = std::make_shared<Snapshot>();
  if (!config.experiments_file.empty()) {
    std::set<std::string> offer_ids;
    for (const Offer& o : cat->offers) offer_ids.insert(o.id);
    snap->experiments =
        experiments::ExperimentSet::Load(config.experiments_file, {config, &offer_ids}, errors);
  }
  if (!config.rules_dir.empty())
    snap->rules = RuleSet::Load(config.rules_dir, config.rule_limits, errors);
  if (!config.journeys_dir.empty()) {
    std::set<std::string> offer_ids;
    for (const Offer& o : cat->offers) offer_ids.insert(o.id);
    snap->journeys = Journeys::Load(config.journeys_dir, offer_ids, errors);
  }
  snap->sensitive =
      std::make_shared<const SensitiveGate>(config.sensitive, cat->offers, cat->items);
  if (!config.suppression.empty())
    snap->suppression = Suppression::Build(config.suppression, *cat, errors);
  snap->catalog = std::move(cat);
  snap->config = std::move(config);
  if (errors->size() != before) return nullptr;
  return snap;
}

Status Engine::LoadCatalog() {
  std::vector<std::string> errors;
  auto snap = Build(config_, &errors);
  if (!snap) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    return Status::Error(all);
  }
  std::lock_guard lock(reload_mu_);
  if (!journey_rt_ && !config_.journeys_dir.empty()) {
    journey_rt_ = JourneyRuntime::Create(*store_);
  }
  // Responses after a restart still join the decisions made before it.
  feedback_->Configure(snap->config.placements);
  if (feedback_->Rebuild(now_ms()) < 0) log::Warn("feedback", "impressions not read back");
  learner_->Configure(snap->config.placements);
  pricer_->Configure(snap->config.pricing);
  ReplayResponses(now_ms());
  snap->version = next_version_++;
  log::Info("catalog", std::to_string(snap->catalog->offers.size()) + " offers, " +
                           std::to_string(snap->catalog->items.size()) + " items, " +
                           std::to_string(snap->rules ? snap->rules->rules().size() : 0) +
                           " rules");
  snapshot_.store(std::move(snap));
  return Status::Ok();
}

std::vector<std::string> Engine::Reload() {
  std::lock_guard lock(reload_mu_);
  std::vector<std::string> errors;
  auto cfg = LoadConfig(config_.file, config_.plugin_dir, &errors);
  if (!cfg) return errors;
  // What the command line overrode and what cannot change while serving.
  cfg->store = config_.store;
  cfg->service = config_.service;
  cfg->plugins = config_.plugins;
  cfg->plugin_dir = config_.plugin_dir;
  auto snap = Build(std::move(*cfg), &errors);
  if (!snap) return errors;
  feedback_->Configure(snap->config.placements);
  learner_->Configure(snap->config.placements);
  pricer_->Configure(snap->config.pricing);
  snap->version = next_version_++;
  log::Info("reload", "published snapshot " + std::to_string(snap->version) + ": " +
                          std::to_string(snap->catalog->offers.size()) + " offers, " +
                          std::to_string(snap->rules ? snap->rules->rules().size() : 0) + " rules");
  snapshot_.store(std::move(snap));
  metrics_->counters.Add("reloads");
  return {};
}

std::shared_ptr<const Profile> Engine::GetProfile(const std::string& id) {
  if (auto p = cache_.Get(id)) {
    metrics_->counters.Add("profile_cache.hits");
    return p;
  }
  metrics_->counters.Add("profile_cache.misses");
  uint64_t epoch = cache_.Epoch(id);
  auto p = std::make_shared<const Profile>(store_->LoadProfile(
      id, config_.store.recent_events, static_cast<int64_t>(config_.store.history_days)));
  cache_.Put(id, p, epoch);
  return p;
}

std::variant<const PlacementConfig*, ApiError> Engine::PlacementFor(const EngineConfig& cfg,
                                                                    const DecideRequest& req) {
  auto pit = cfg.placements.find(req.placement);
  if (pit == cfg.placements.end()) {
    std::string known;
    for (const auto& [name, _] : cfg.placements) known += (known.empty() ? "" : ", ") + name;
    return ApiError{TAILOR_ERR_BAD_REQUEST, "placement",
                    "unknown placement '" + req.placement + "' (known: " + known + ")"};
  }
  const PlacementConfig& placement = pit->second;
  if (!Contains(placement.channels, req.channel)) {
    std::string known;
    for (const auto& c : placement.channels) known += (known.empty() ? "" : ", ") + c;
    return ApiError{TAILOR_ERR_BAD_REQUEST, "channel",
                    "placement '" + req.placement + "' is not served on channel '" + req.channel +
                        "' (channels: " + known + ")"};
  }
  return &placement;
}

RuleRuntime* Engine::RulesFor(const Snapshot& snap, const std::shared_ptr<const RuleSet>& set) {
  // One runtime per rule set in use (the snapshot's and its arms'), so that
  // alternating arms do not rebuild Lua states; a new snapshot drops them.
  static thread_local std::vector<ThreadRules> runtimes;
  if (!set) return nullptr;
  ThreadRules* tr = nullptr;
  for (ThreadRules& t : runtimes)
    if (t.engine == this && t.set == set.get() && t.version == snap.version) tr = &t;
  if (!tr) {
    std::erase_if(runtimes, [&](const ThreadRules& t) {
      return t.engine == this && t.version != snap.version;
    });
    tr = &runtimes.emplace_back();
    tr->runtime = std::make_unique<RuleRuntime>(set, snap.catalog);
    tr->engine = this;
    tr->version = snap.version;
    tr->set = set.get();
  }
  return tr->runtime->ok() ? tr->runtime.get() : nullptr;
}

std::string Engine::NextDecisionId(int64_t now) {
  char idbuf[48];
  std::snprintf(idbuf, sizeof idbuf, "d-%011llx-%06llx", static_cast<unsigned long long>(now),
                static_cast<unsigned long long>(decision_seq_.fetch_add(1) & 0xffffff));
  return idbuf;
}

std::variant<Decision, ApiError> Engine::Decide(const DecideRequest& req, DecideOptions options) {
  std::shared_ptr<const Snapshot> snap = snapshot_.load();
  const EngineConfig& cfg = snap->config;
  auto found = PlacementFor(cfg, req);
  if (auto* e = std::get_if<ApiError>(&found)) return std::move(*e);
  const PlacementConfig& base_placement = *std::get<const PlacementConfig*>(found);
  const int64_t now = req.now_ms ? *req.now_ms : now_ms();
  static thread_local DecisionScratch s;
  StageClock clock(metrics_);
  log::Scope log_scope(req.id);  // every line this decide logs names it

  // Experiment arm or holdout: a hash per experiment; the arm's overrides
  // come as a prepared copy of the placement.
  const experiments::Assignment assigned =
      snap->experiments ? snap->experiments->Assign(req.customer, req.placement, now)
                        : experiments::Assignment{};
  const PlacementConfig& placement =
      snap->experiments ? snap->experiments->PlacementOf(assigned, base_placement) : base_placement;
  // Shadow mode: the application's own choice is served. A shadow placement
  // needs it; an arm in shadow mode without it serves Tailor's choice.
  bool shadow = placement.mode == PlacementConfig::Mode::kShadow;
  if (shadow && !req.shadow) {
    if (base_placement.mode == PlacementConfig::Mode::kShadow)
      return ApiError{TAILOR_ERR_BAD_REQUEST, "shadow",
                      "placement '" + req.placement +
                          "' is in shadow mode: send the application's choice as "
                          "\"shadow\": {\"offers\": [...]}"};
    metrics_->counters.Add("experiments.shadow_choice_missing");
    shadow = false;
  }
  if (shadow)
    if (auto e = CheckShadowChoice(*req.shadow, placement, *snap->catalog)) return std::move(*e);

  // Profile and consent.
  std::shared_ptr<const Profile> profile;
  bool personalised = false;
  if (!req.customer.empty()) {
    profile = GetProfile(req.customer);
    // Consent to personalisation, and to this channel (README § Consent).
    const Consent consent = ParseConsent(profile->customer.consent_json);
    personalised = profile->known && consent.personalization && consent.channel(req.channel);
  }
  // The holdout and the popularity and random controls get what an anonymous
  // visitor gets; their impressions are still recorded (they consented).
  const bool consented = personalised;
  if (assigned.holdout || (assigned.arm && assigned.arm->non_personal())) personalised = false;
  s.recent.clear();
  if (personalised)
    for (const Event& e : profile->recent) s.recent.push_back(ViewOf(e));
  clock.Done(DecideStage::kProfile);

  // 1. Candidates.
  CollectCandidates(*snap->catalog, placement, req, now, &s.candidates);
  if (assigned.arm) KeepArmOffers(*assigned.arm, &s.candidates);
  clock.Done(DecideStage::kCandidates);
  const Candidates& cands = s.candidates;
  const size_t n = cands.size();

  // 2-3. Plugin scores and facts. A reply and its trace name the ranked head
  // and the (usually few) suppressed; in a large placement that is a small
  // part, so plugins score everything without reasons and explain only those
  // in a second, small call.
  const std::string context_text = req.context.dump();
  tailor_request_view view{personalised ? req.customer.c_str() : nullptr,
                           personalised ? 1 : 0,
                           req.channel.c_str(),
                           req.placement.c_str(),
                           context_text.c_str(),
                           now,
                           s.recent.data(),
                           s.recent.size()};
  const PluginList& plugins = plugins_->plugins();
  json dropped = json::object();
  for (const auto& f : plugins_->failures()) dropped[f.name] = "not loaded: " + f.error;
  const PluginCall call{plugins, view, metrics_, &dropped};
  ScoreCandidates(call, cands, ExplainAfter(n, req.limit), placement.plugin_weights, &s.scores);
  const json facts = AnnotateFacts(call, req.context);
  clock.Done(DecideStage::kScore);

  // 3b. Respond: P as the calibrated probability of response.
  learning::Learner::Placement* learned = learner_->For(req.placement);
  RespondInput respond{learned,
                       learner_.get(),
                       *snap->catalog,
                       placement,
                       req,
                       personalised ? profile.get() : nullptr,
                       facts,
                       now};
  Respond(respond, cands, s.scores, &s.responses);
  clock.Done(DecideStage::kRespond);

  // 4. Judge: the sensitive gate, journeys, rules (eligibility, then levers).
  RuleRuntime* rules =
      RulesFor(*snap, assigned.arm && assigned.arm->rules ? assigned.arm->rules : snap->rules);
  // Outlives Judge: the rule runtime keeps a pointer to it until End.
  RuleRequest rr;
  if (rules) {
    rr.profile = profile.get();
    rr.personalised = personalised;
    rr.customer_id = req.customer;
    rr.channel = req.channel;
    rr.placement = req.placement;
    rr.context_json = context_text;
    rr.now_ms = now;
    rr.plugin_names = &s.scores.names;
    rr.plugin_scores = s.scores.scores.data();
    rr.plugin_ok = &s.scores.ok;
    rr.n_candidates = n;
    rr.facts = facts.empty() ? nullptr : &facts;
    rules->Begin(rr);
  }
  SensitiveCheck sensitive(*snap->sensitive, profile ? &profile->customer : nullptr, personalised);
  JudgeContext judge{placement};
  judge.fallback_propensity = cfg.fallback_propensity;
  judge.sensitive = &sensitive;
  std::optional<SuppressionCheck> suppression;
  if (snap->suppression) {
    suppression.emplace(*snap->suppression, profile.get(), req.placement, now);
    judge.suppression = &*suppression;
  }
  if (journey_rt_ && snap->journeys && !snap->journeys->empty() && personalised) {
    judge.journeys = snap->journeys.get();
    judge.journey_runtime = journey_rt_.get();
  }
  judge.rules = rules;
  judge.customer = &req.customer;
  judge.channel = &req.channel;
  judge.now_ms = now;
  if (s.responses.active) judge.propensity = &s.responses.p;
  Judge(judge, cands, s.scores, &s.judgement);
  if (sensitive.vetoes() > 0) metrics_->counters.Add("sensitive.vetoes", sensitive.vetoes());
  if (suppression)
    for (size_t k = 0; k < suppression->vetoes().size(); ++k)
      if (suppression->vetoes()[k] > 0)
        metrics_->counters.Add(snap->suppression->counter(k), suppression->vetoes()[k]);
  if (cands.excluded_total > 0)
    metrics_->counters.Add("request_filters.excluded", cands.excluded_total);
  clock.Done(DecideStage::kJudge);

  // 5. Arbitrate: finalize hooks see the best few times the limit; diversity
  // picks from a pool that may be longer.
  const size_t limit = static_cast<size_t>(req.limit);
  const bool diversify = placement.diversity > 0 && req.limit > 1;
  const size_t eligible = s.judgement.eligible.size();
  const size_t finalized = std::min(eligible, std::max(limit * 4, kTraceEligible));
  const size_t keep =
      std::max(finalized, std::min(eligible, diversify ? placement.diversity_pool : 0));
  std::vector<Ranked> ranked = Arbitrate(cands, &s.judgement, keep);
  clock.Done(DecideStage::kArbitrate);

  // 6-8. Diversity and finalize hooks, then the policy.
  const std::vector<Diversified> diversified =
      diversify ? DiversifyRanked(placement, limit, call, cands, &s.diversity, &ranked)
                : std::vector<Diversified>{};
  Decision d;
  FinalizeRanked(rules, finalized, &ranked, &d.finalize);
  // The policy picks among what finalize left, so that its propensities
  // describe what is shown.
  d.id = NextDecisionId(now);
  log_scope.Decision(d.id);
  const PolicyInput policy{placement,   cands,   s.judgement,
                           s.responses, learned, learning::PolicySeed(d.id)};
  ApplyPolicy(policy, limit, &ranked, &s.policy, &s.picks);
  const size_t shown = std::min(ranked.size(), limit);
  ExplainNamed(call, cands, ranked, s.judgement, &s.scores);

  // 9. Explain and record.
  d.request_id = req.id;
  d.personalised = personalised;
  d.candidates = n;
  const ExplainInput explain{placement,   cands,   s.scores, s.judgement,  ranked,
                             diversified, dropped, facts,    &s.responses, &s.picks};
  d.offers = ShownOffers(explain, shown);
  // 9b. Price: the discount of each shown offer that declares a range. Not in
  // shadow mode: the application's choice is served at its own price, and a
  // discount nobody saw must not become a trial of its level.
  const PriceInput price{placement,
                         cfg.pricing,
                         *snap->catalog,
                         cands,
                         ranked,
                         shown,
                         personalised ? profile.get() : nullptr,
                         facts,
                         d.id,
                         options.record};
  if (!shadow) PriceShown(price, pricer_.get(), &s.prices);
  ApplyPrices(s.prices, &d.offers);
  for (const pricing::Choice& c : s.prices) {
    if (c.priced) metrics_->counters.Add("pricing.priced");
    if (!c.guardrail.empty()) metrics_->counters.Add("pricing.guardrail");
  }
  clock.Done(DecideStage::kFinish);
  // The stored trace is a compact record rendered to JSON when read
  // (decision/trace.h); only `tailor rules test` (trace_in_reply) builds the
  // JSON here.
  json trace;
  if (options.trace_in_reply) trace = DecisionTrace(explain, shown, snap->version, d.finalize);
  std::string stored_trace;
  if (options.record) stored_trace = EncodeTrace(explain, shown, snap->version, d.finalize);
  // Only a personalised decision records impressions: an unknown customer
  // must not become known by being shown something, and one who refused
  // personalisation leaves no behavioural trail.
  std::vector<ShadowPick> shadow_picks;
  if (shadow) {
    // Served: the application's choice, unchanged; logged: Tailor's own.
    shadow_picks = ShadowPicksOf(cands, s.judgement, s.responses, s.picks, ranked, shown);
    d.offers = ServedOffers(*req.shadow, cands, ranked);
    d.mode = "shadow";
    metrics_->counters.Add("decisions.shadow");
    if (consented)
      d.impressions = ServedImpressions(*req.shadow, cands, s.judgement, s.responses,
                                        *snap->catalog, req, d.id, now);
  } else if (consented) {
    d.impressions = ShownImpressions(cands, s.judgement, s.responses, s.picks, ranked, shown,
                                     *snap->catalog, req, d.id, now);
  }
  if (assigned.any()) {
    d.experiment = assigned.experiment_name();
    d.arm = assigned.arm_name();
    const json experiment = ExperimentJson(assigned);
    for (json& o : d.offers) o["why"]["experiment"] = experiment;
    for (Impression& m : d.impressions) m.experiment = d.experiment, m.arm = d.arm;
    metrics_->counters.Add(assigned.counter());
  }
  for (Impression& m : d.impressions)
    for (size_t k = 0; k < shown && k < s.prices.size(); ++k)
      if (s.prices[k].priced && ranked[k].id == m.offer_id) m.discount = s.prices[k].discount;
  if (options.record) {
    Record(req, now, d, std::move(stored_trace), std::move(shadow_picks));
    RecordImpressions(placement, d);
    // Shown and not clicked within the window: a negative for the click model.
    // Decision time, not the clock: replays and simulations bring their own.
    if ((flush_count_.fetch_add(1, std::memory_order_relaxed) & 63) == 0) learner_->Flush(now);
  }
  if (options.trace_in_reply) d.trace = std::move(trace);
  clock.Done(DecideStage::kRecord);
  metrics_->counters.Add("decisions");
  return d;
}

void Engine::Record(const DecideRequest& req, int64_t now, const Decision& d, std::string trace,
                    std::vector<ShadowPick> shadow_picks) {
  DecisionRecord rec;
  rec.id = d.id;
  rec.experiment = d.experiment;
  rec.arm = d.arm;
  rec.mode = d.mode;
  rec.shadow_picks = std::move(shadow_picks);
  rec.customer_id = req.customer;
  rec.channel = req.channel;
  rec.placement = req.placement;
  rec.ts_ms = now;
  json rj = {{"customer", req.customer},
             {"channel", req.channel},
             {"placement", req.placement},
             {"limit", req.limit},
             {"context", req.context}};
  // The request's filters, when it set any (explain shows what was asked).
  if (!req.exclude.empty()) rj["exclude"] = req.exclude;
  if (!req.include_categories.empty()) rj["include_categories"] = req.include_categories;
  if (!req.exclude_categories.empty()) rj["exclude_categories"] = req.exclude_categories;
  if (req.shadow) rj["shadow"] = {{req.shadow->items ? "items" : "offers", req.shadow->ids}};
  rec.request_json = rj.dump();
  json response = {{"offers", d.offers}};
  if (!d.finalize.empty()) response["finalize"] = d.finalize;
  rec.response_json = response.dump(-1, ' ', false, json::error_handler_t::replace);
  rec.trace_json = std::move(trace);
  if (!config_.store.durable_decisions) {
    store_->LogDecision(std::move(rec));
  } else if (Status st = store_->LogDecisionDurably(std::move(rec)).get(); !st.ok()) {
    // Answered all the same: the reply is the decision; it is counted.
    metrics_->counters.Add("decisions.not_logged");
  }
}

void Engine::ReplayResponses(int64_t now) {
  const int64_t since = now - learner_->ReplayHorizonMs();
  int64_t impressions = store_->ForEachImpression(since, [&](const Impression& m) {
    if (m.shown) learner_->Observe(m);
    return true;
  });
  int64_t outcomes = store_->ForEachOutcome(since, [&](const Outcome& o) {
    learner_->Observe(o);
    return true;
  });
  learner_->Flush(now);
  if (impressions > 0)
    log::Info("learning", "replayed " + std::to_string(impressions) + " impressions and " +
                              std::to_string(outcomes) + " outcomes");
}

void Engine::RecordImpressions(const PlacementConfig& placement, const Decision& d) {
  cache_.ApplyEvents(feedback_->Decided(placement, d.impressions), config_.store.recent_events);
}

std::variant<json, ApiError> Engine::Explain(const std::string& decision_id) {
  auto rec = store_->GetDecision(decision_id);
  if (!rec) {
    // The writer may not have flushed a decision made a moment ago.
    store_->Flush();
    rec = store_->GetDecision(decision_id);
  }
  if (!rec)
    return ApiError{"not_found", "decision", "no decision '" + decision_id + "' in the store"};
  json response = ParseObject(rec->response_json);
  return json{
      {"decision", rec->id},
      {"customer", rec->customer_id},
      {"channel", rec->channel},
      {"placement", rec->placement},
      {"ts", format_iso8601_ms(rec->ts_ms)},
      {"request", ParseObject(rec->request_json)},
      {"offers", response.value("offers", json::array())},
      {"trace", ParseObject(RenderTrace(rec->trace_json).value_or("{}"))},
      {"outcomes", feedback_->OutcomesJson(rec->id)},
      {"mode", rec->mode.empty() ? std::string("live") : rec->mode},
      {"experiment", rec->experiment.empty() ? json(nullptr)
                                             : json{{"name", rec->experiment}, {"arm", rec->arm}}}};
}

std::string Engine::ChatIntent(const Event& e) {
  // The chat line is handed to the plugins as a decide request's
  // context.message would be; the first plugin naming an intent wins.
  const std::string context = json{{"message", e.text}}.dump();
  const std::string channel = e.channel.empty() ? "chat" : e.channel;
  tailor_request_view view{e.customer_id.c_str(), 1,       channel.c_str(), "chat",
                           context.c_str(),       e.ts_ms, nullptr,         0};
  for (const auto& p : plugins_->plugins()) {
    if (!p->can_annotate() || p->disabled()) continue;
    json facts;
    if (Status st = p->Annotate(view, &facts); !st.ok()) {
      metrics_->counters.Add("plugin_errors." + p->name());
      log::Warn("plugin:" + p->name(), st.message());
      continue;
    }
    if (!facts.is_object()) continue;
    auto ctx = facts.find("context");
    if (ctx == facts.end()) continue;
    if (auto it = ctx->find("intent"); it != ctx->end() && it->is_string())
      return it->get<std::string>();
  }
  return {};
}

bool Engine::LearnsFrom(const std::string& customer_id) {
  if (auto p = cache_.Get(customer_id)) return ParseConsent(p->customer.consent_json).learning();
  // Consent changes outside tailord (an import) are seen within a minute.
  constexpr int64_t kKeepMs = 60'000;
  constexpr size_t kMaxKept = 200'000;
  const int64_t now = mono_ns() / 1'000'000;
  {
    std::lock_guard lock(consent_mu_);
    if (auto it = consent_seen_.find(customer_id);
        it != consent_seen_.end() && now - it->second.second < kKeepMs)
      return it->second.first;
  }
  bool learn = true;  // new: no consent stated yet
  if (auto c = store_->GetCustomer(customer_id)) learn = ParseConsent(c->consent_json).learning();
  std::lock_guard lock(consent_mu_);
  if (consent_seen_.size() >= kMaxKept) consent_seen_.clear();
  consent_seen_[customer_id] = {learn, now};
  return learn;
}

void Engine::AfterDurable(const Event& e, bool cached, bool learn,
                          JourneyRuntime::Batch* journeys) {
  if (!cached) cache_.ApplyEvent(e, config_.store.recent_events);
  metrics_->counters.Add("events." + e.type);
  // Stored as the business's record, and used for nothing else.
  if (!learn) {
    metrics_->counters.Add("consent.events_not_learned");
    return;
  }
  if (journey_rt_) {
    auto snap = snapshot_.load();
    if (snap->journeys && !snap->journeys->empty()) {
      // Journeys trigger on categories: the item's, else the offer's.
      std::string category;
      const Catalog& cat = *snap->catalog;
      if (auto it = cat.item_index.find(e.item_id); it != cat.item_index.end())
        category = cat.items[it->second].category;
      else if (auto o = cat.offer_index.find(e.offer_id); o != cat.offer_index.end())
        category = cat.offers[o->second].category;
      std::string intent = e.type == "chat" && !e.text.empty() ? ChatIntent(e) : std::string();
      if (Status st = journey_rt_->OnEvent(*snap->journeys, e, category, intent, journeys);
          !st.ok())
        log::Warn("journeys", st.message());
    }
  }
  tailor_event_view v = ViewOf(e);
  for (const auto& p : plugins_->plugins()) {
    if (!p->can_observe()) continue;
    if (Status st = p->Observe(v); !st.ok()) {
      metrics_->counters.Add("plugin_errors." + p->name());
      log::Warn("plugin:" + p->name(), st.message());
    }
  }
}

Status Engine::IngestEvent(Event event) {
  std::vector<Event> one;
  one.push_back(std::move(event));
  return IngestEvents(std::move(one)).front();
}

std::vector<Status> Engine::IngestEvents(std::vector<Event> events) {
  return ApplyEvents(QueueEvents(std::move(events)));
}

std::unique_ptr<Engine::QueuedEvents> Engine::QueueEvents(std::vector<Event> events) {
  auto q = std::make_unique<QueuedEvents>();
  q->events = std::move(events);
  q->seqs.assign(q->events.size(), 0);  // outcomes name the event they come from
  q->stored.reserve(q->events.size());
  for (size_t i = 0; i < q->events.size(); ++i)
    q->stored.push_back(store_->AppendEvent(q->events[i], &q->seqs[i]));
  return q;
}

std::vector<Status> Engine::ApplyEvents(std::unique_ptr<QueuedEvents> q) {
  std::vector<Status> out;
  out.reserve(q->events.size());
  // The batch's journey changes commit together, before any is acknowledged.
  JourneyRuntime::Batch journeys;
  for (size_t i = 0; i < q->events.size(); ++i) {
    Event& e = q->events[i];
    Status st = q->stored[i].get();
    if (st.ok()) {
      e.seq = q->seqs[i];
      const bool learn = LearnsFrom(e.customer_id);
      AfterDurable(e, /*cached=*/false, learn, &journeys);
      if (learn) feedback_->Observe(e);
    } else {
      metrics_->counters.Add("events.failed");
      log::Error("events",
                 "event for " + log::Customer(e.customer_id) + " not stored: " + st.message());
    }
    out.push_back(std::move(st));
  }
  if (Status st = journeys.Wait(); !st.ok()) log::Warn("journeys", st.message());
  return out;
}

json Engine::ProfileJson(const std::string& customer_id) {
  auto p = GetProfile(customer_id);
  json recent = json::array();
  for (const Event& e : p->recent) recent.push_back(EventJson(e));
  json j = {{"customer", customer_id},
            {"known", p->known},
            {"attributes", ParseObject(p->customer.attributes_json)},
            {"consent", ParseObject(p->customer.consent_json)},
            {"counts", p->counts},
            {"recent", std::move(recent)}};
  if (journey_rt_) {
    auto snap = snapshot_.load();
    if (snap->journeys) {
      json stages = json::object();
      for (const auto& [journey, stage] : journey_rt_->StagesOf(*snap->journeys, customer_id))
        stages[journey] = stage;
      j["journeys"] = std::move(stages);
    }
  }
  if (p->first_seen_ms) j["first_seen"] = format_iso8601_ms(p->first_seen_ms);
  if (p->last_seen_ms) j["last_seen"] = format_iso8601_ms(p->last_seen_ms);
  return j;
}

std::variant<json, ApiError> Engine::ForgetCustomer(const std::string& customer_id) {
  // Journeys first: their rows for the customer, already queued to the
  // store's writer, land before the erasure queued next deletes every row.
  if (journey_rt_) journey_rt_->Forget(customer_id);
  ErasedRows rows;
  if (Status s = store_->EraseCustomer(customer_id, &rows).get(); !s.ok())
    return ApiError{TAILOR_ERR_INTERNAL, "", "erasure failed in the store: " + s.message()};
  cache_.Erase(customer_id);
  {
    std::lock_guard lock(consent_mu_);
    consent_seen_.erase(customer_id);
  }
  feedback_->attribution().Forget(customer_id);
  json forgot = json::array();
  for (const auto& p : plugins_->plugins())
    if (p->can_forget()) forgot.push_back(p->name());
  int retired = 0;
  std::vector<std::string> errors = plugins_->Forget(customer_id, &retired);
  metrics_->counters.Add("privacy.erasures");
  json out = {{"customer", customer_id},
              {"deleted",
               {{"events", rows.events},
                {"decisions", rows.decisions},
                {"impressions", rows.impressions},
                {"outcomes", rows.outcomes},
                {"journey_rows", rows.journey_rows},
                {"customer", rows.customer > 0}}},
              {"plugins", std::move(forgot)},
              {"retired_models", retired}};
  if (!errors.empty())
    return ApiError{TAILOR_ERR_INTERNAL, "",
                    "the store forgot the customer, but a plugin did not: " + errors.front()};
  return out;
}

std::vector<std::string> Engine::TakeDueOutbound(size_t max) {
  if (!journey_rt_) return {};
  auto snap = snapshot_.load();
  if (!snap->journeys) return {};
  // The sensitive gate on every step, whatever the journey's own checks said;
  // a refused step is cancelled, logged and counted.
  const std::shared_ptr<const SensitiveGate> gate = snap->sensitive;
  auto refuse = [&](const Customer* customer, const std::string& offer) {
    std::string why = gate->OutboundRefusal(offer, customer);
    if (!why.empty()) {
      metrics_->counters.Add("sensitive.outbound_cancelled");
      log::Warn("sensitive", "outbound step with offer '" + offer + "' not sent" +
                                 (customer ? " to " + log::Customer(customer->id) : std::string()) +
                                 ": " + why);
    }
    return why;
  };
  const OutboundDelivery& d = config_.service.outbound_delivery;
  return journey_rt_->TakeDue(*snap->journeys, now_ms(), max, refuse,
                              d.acks ? d.retry_after_s * 1000 : 0);
}

std::vector<std::string> Engine::RedeliverDue(size_t max) {
  std::vector<std::string> out;
  const OutboundDelivery& d = config_.service.outbound_delivery;
  if (!d.acks) return out;
  const int64_t now = now_ms();
  std::vector<OutboxRow> rows;
  if (Status s = store_->OutboxDue(now, max, &rows); !s.ok()) {
    log::Error("outbound", "cannot read the outbox: " + s.message());
    return out;
  }
  if (rows.empty()) return out;
  std::vector<JourneyWrite> writes;
  for (OutboxRow& row : rows) {
    JourneyWrite& w = writes.emplace_back();
    w.kind = JourneyWrite::Kind::kAttempted;
    w.id = row.id;
    w.attempts = row.attempts + 1;
    if (w.attempts < d.max_attempts) {
      // retry_after_s, then twice as long each time, at most max_retry_s.
      const int shift = static_cast<int>(std::min<int64_t>(row.attempts, 30));
      w.next_ms = now + std::min(d.retry_after_s << shift, d.max_retry_s) * 1000;
    } else {
      metrics_->counters.Add("outbound.given_up");
      log::Warn("outbound", "message " + std::to_string(row.id) + " given up after " +
                                std::to_string(w.attempts) +
                                " attempts without an ack; outbound.pending still returns it");
    }
    out.push_back(std::move(row.message));
  }
  // Recorded before it goes out again: a crash in between sends it once
  // more at the next attempt, never loses it.
  if (Status s = store_->WriteJourney(std::move(writes)).get(); !s.ok()) {
    log::Error("outbound", "cannot record delivery attempts: " + s.message());
    return {};
  }
  metrics_->counters.Add("outbound.redelivered", out.size());
  return out;
}

Status Engine::AckOutbound(const std::vector<int64_t>& ids) {
  std::vector<JourneyWrite> writes;
  const int64_t now = now_ms();
  for (int64_t id : ids) {
    JourneyWrite& w = writes.emplace_back();
    w.kind = JourneyWrite::Kind::kAcked;
    w.id = id;
    w.time = now;
  }
  Status s = store_->WriteJourney(std::move(writes)).get();
  if (s.ok()) metrics_->counters.Add("outbound.acked", ids.size());
  return s;
}

std::variant<json, ApiError> Engine::PendingOutbound(int64_t after, size_t limit) {
  std::vector<OutboxRow> rows;
  if (Status s = store_->OutboxPending(after, limit + 1, &rows); !s.ok())
    return ApiError{TAILOR_ERR_INTERNAL, "", "cannot read the outbox: " + s.message()};
  const bool more = rows.size() > limit;
  if (more) rows.pop_back();
  json messages = json::array();
  for (const OutboxRow& row : rows) {
    json m = json::parse(row.message, nullptr, false);
    if (m.is_discarded()) continue;  // written by this code; never expected
    m["attempts"] = row.attempts;
    messages.push_back(std::move(m));
  }
  return json{{"messages", std::move(messages)}, {"more", more}};
}

json Engine::Health() const {
  json plugins = json::object();
  for (const auto& p : plugins_->plugins())
    plugins[p->name()] = {{"status", p->disabled()  ? "disabled"
                                     : p->warming() ? "warming"
                                                    : "ok"},
                          {"version", p->version()}};
  for (const auto& f : plugins_->failures())
    plugins[f.name] = {{"status", "failed"}, {"error", f.error}};
  auto snap = snapshot_.load();
  const Catalog* cat = snap->catalog.get();
  // Degraded, with every reason: a plugin that failed to load, a store that
  // cannot write, a writer far behind.
  json problems = json::array();
  for (const auto& f : plugins_->failures())
    problems.push_back("plugin " + f.name + " failed: " + f.error);
  for (const auto& p : plugins_->plugins())
    if (p->disabled())
      problems.push_back("plugin " + p->name() +
                         " disabled: too many calls over its time budget (reload to retry)");
  const Store::WriterState w = store_->Writer();
  if (!store_->writable()) problems.push_back("store opened read-only");
  if (w.failing) problems.push_back("store writes failing: " + w.last_error);
  if (w.capacity && w.pending > w.capacity / 2)
    problems.push_back("store writer behind: " + std::to_string(w.pending) + " writes queued");
  const OutboxCounts outbox = store_->Outbox();
  if (outbox.given_up > 0)
    problems.push_back(std::to_string(outbox.given_up) +
                       " outbound messages given up without an ack (outbound.pending lists them)");
  return {{"status", problems.empty() ? "ok" : "degraded"},
          {"problems", std::move(problems)},
          {"snapshot", snap->version},
          {"rules", snap->rules ? snap->rules->rules().size() : 0},
          {"uptime_s", (now_ms() - started_ms_) / 1000},
          {"protocol", {{"v", TAILOR_SCHEMA_VERSION}, {"minor", TAILOR_SCHEMA_MINOR}}},
          {"store",
           {{"path", store_->path()},
            {"schema_version", store_->schema_version()},
            {"pending_writes", store_->PendingWrites()}}},
          {"catalog", {{"offers", cat->offers.size()}, {"items", cat->items.size()}}},
          {"plugins", std::move(plugins)}};
}

json Engine::OutboxJson() const {
  const OutboxCounts c = store_->Outbox();
  return {{"acks", config_.service.outbound_delivery.acks},
          {"unacked", c.unacked},
          {"given_up", c.given_up}};
}

json Engine::RetentionJson() const {
  const RetentionCounts r = store_->Retained();
  const Retention& days = config_.store.retention;
  return {{"days",
           {{"events", days.events_days},
            {"decisions", days.decisions_days},
            {"traces", days.traces_days},
            {"chat_text", days.chat_text_days}}},
          {"removed",
           {{"events", r.events},
            {"decisions", r.decisions},
            {"impressions", r.impressions},
            {"outcomes", r.outcomes},
            {"traces", r.traces},
            {"chat_texts", r.chat_texts}}},
          {"last_run", r.last_run_ms ? json(format_iso8601_ms(r.last_run_ms)) : json(nullptr)}};
}

json Engine::Stats() const {
  json counters = json::object();
  json requests = json::object(), errors = json::object(), plugin_errors = json::object(),
       events = json::object();
  json sensitive = {{"vetoes", 0}, {"outbound_cancelled", 0}};
  for (const auto& counter : metrics_->counters.Snapshot()) {
    const auto& k = counter.first;  // not a structured binding: the lambda captures it
    const auto& v = counter.second;
    auto split = [&](const char* prefix, json& into) {
      size_t len = std::strlen(prefix);
      if (k.compare(0, len, prefix) != 0) return false;
      into[k.substr(len)] = v;
      return true;
    };
    if (split("requests.", requests) || split("errors.", errors) ||
        split("plugin_errors.", plugin_errors) || split("events.", events) ||
        split("sensitive.", sensitive))
      continue;
    counters[k] = v;
  }
  json plugins = json::object();
  // Mean time per call, in microseconds (0 before the first call).
  auto mean_us = [](const std::atomic<uint64_t>& ns, const std::atomic<uint64_t>& calls) {
    const uint64_t n = calls.load();
    return n ? static_cast<double>(ns.load()) / 1000.0 / static_cast<double>(n) : 0.0;
  };
  for (const auto& p : plugins_->plugins()) {
    const PluginCounters& c = p->counters();
    plugins[p->name()] = {{"score_calls", c.score_calls.load()},
                          {"score_errors", c.score_errors.load()},
                          {"observe_calls", c.observe_calls.load()},
                          {"observe_errors", c.observe_errors.load()},
                          {"annotate_calls", c.annotate_calls.load()},
                          {"annotate_errors", c.annotate_errors.load()},
                          {"similarity_calls", c.similarity_calls.load()},
                          {"similarity_errors", c.similarity_errors.load()},
                          {"forget_calls", c.forget_calls.load()},
                          {"score_overruns", c.score_overruns.load()},
                          {"explain_overruns", c.explain_overruns.load()},
                          {"annotate_overruns", c.annotate_overruns.load()},
                          {"similarity_overruns", c.similarity_overruns.load()},
                          {"observe_overruns", c.observe_overruns.load()},
                          {"mean_observe_us", mean_us(c.observe_ns, c.observe_calls)},
                          {"score_skipped", c.score_skipped.load()},
                          {"forget_errors", c.forget_errors.load()},
                          {"explain_calls", c.explain_calls.load()},
                          {"explain_errors", c.explain_errors.load()},
                          {"mean_score_us", mean_us(c.score_ns, c.score_calls)}};
  }
  json rules = json::object();
  auto snap = snapshot_.load();
  if (snap->rules) {
    for (size_t r = 0; r < snap->rules->rules().size(); ++r) {
      const RuleCounters& c = snap->rules->counters(r);
      rules[snap->rules->rules()[r].name] = {
          {"calls", c.calls.load()},       {"vetoes", c.vetoes.load()},
          {"levers", c.levers.load()},     {"errors", c.errors.load()},
          {"timeouts", c.timeouts.load()}, {"memory", c.memory.load()}};
    }
    // Requests whose rules did not all run (not a rule's own counters).
    const RuleRequestCounters& rc = snap->rules->request_counters();
    counters["rules.request_deadline"] = rc.deadlines.load();
    counters["rules.request_build_errors"] = rc.build_errors.load();
  }
  auto hist = [](const LatencyHistogram& h) {
    return json{{"count", h.count()},        {"mean", h.Mean()},
                {"p50", h.Percentile(0.5)},  {"p90", h.Percentile(0.9)},
                {"p99", h.Percentile(0.99)}, {"p999", h.Percentile(0.999)}};
  };
  json stages = json::object();
  for (size_t k = 0; k < metrics_->stage_us.size(); ++k)
    stages[DecideStageName(static_cast<DecideStage>(k))] = hist(metrics_->stage_us[k]);
  return {{"requests", requests},
          {"errors", errors},
          {"plugin_errors", plugin_errors},
          {"events", events},
          {"counters", counters},
          {"plugins", plugins},
          {"rules", rules},
          {"sensitive", sensitive},
          {"snapshot", snap->version},
          {"latency_us",
           {{"decide", hist(metrics_->decide_us)},
            {"event", hist(metrics_->event_us)},
            {"stages", std::move(stages)}}},
          {"store", {{"pending_writes", store_->PendingWrites()}, {"retention", RetentionJson()}}},
          {"outbound", OutboxJson()},
          {"feedback", feedback_->CountsJson()},
          {"pricing", pricer_->StatsJson()}};
}

}  // namespace tailor
