#include "decision/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <random>
#include <set>

#include "common/log.h"
#include "common/time.h"
#include "decision/diversify.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

using nlohmann::json;

constexpr size_t kReasonCap = 96;

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

// Per-thread scratch space so a decision allocates little.
struct Scratch {
  std::vector<tailor_candidate> candidates;
  std::vector<int> offer_index;  // into catalog->offers, or -1
  std::vector<int> item_index;   // into catalog->items, or -1 for offers
  std::vector<double> values;
  std::vector<double> context;  // C per candidate
  std::vector<double> propensity;
  std::vector<double> levers;
  std::vector<char> vetoed;
  std::vector<char> evaluate;                   // judged by journeys and rules
  std::vector<std::vector<std::string>> notes;  // rule reasons per candidate
  std::vector<double> weighted_sum;
  std::vector<double> weight_sum;  // per candidate: plugins that did not abstain
  std::vector<float> all_scores;   // plugin-major: [plugin][candidate]
  std::vector<char> all_reasons;   // one pass: [plugin][candidate]; two: [plugin][explained]
  std::vector<tailor_candidate> explained;  // two passes: the candidates a reply names
  std::vector<int> explained_at;            // per candidate: its place there, or -1
  std::vector<size_t> order;
  std::vector<double> priority;
  std::vector<tailor_event_view> recent;
  std::vector<std::string> plugin_names;
  std::vector<bool> plugin_ok;
  std::vector<const char*> pool_items;  // diversity: the pool's item ids
  std::vector<double> pool_scores;
  std::vector<float> pool_similarity;
};

// One rule runtime per worker thread and snapshot; rebuilt after a reload.
struct ThreadRules {
  const void* engine = nullptr;
  uint64_t version = 0;
  std::unique_ptr<RuleRuntime> runtime;
};

// Candidates kept in a decision's stored trace: every suppressed one and the
// best of the rest, so a trace stays small for large item placements.
constexpr size_t kTraceEligible = 50;
constexpr size_t kTraceSuppressed = 200;

// A candidate moved down for its likeness to one picked before it, for `why`.
struct Diversified {
  size_t candidate, similar_to;
  double penalty, similarity;
};

// A placement with diversity: re-orders the head of `ranked` (best first) by
// maximal marginal relevance with the similarities of one plugin; without
// them the list stays as ranked and `dropped` says why.
std::vector<Diversified> Diversity(const PlacementConfig& placement, size_t limit,
                                   const std::vector<std::unique_ptr<LoadedPlugin>>& plugins,
                                   Scratch& s, Metrics* metrics,
                                   std::vector<RuleRuntime::Ranked>* ranked, json* dropped) {
  std::vector<Diversified> out;
  if (ranked->size() < 2) return out;
  LoadedPlugin* by = nullptr;
  for (const auto& p : plugins)
    if (p->can_similarity() &&
        (placement.diversity_by.empty() || p->name() == placement.diversity_by)) {
      by = p.get();
      break;
    }
  if (by == nullptr) {
    metrics->counters.Add("diversity.unavailable");
    (*dropped)["diversity"] = placement.diversity_by.empty()
                                  ? "no loaded plugin offers item similarities"
                                  : "plugin '" + placement.diversity_by +
                                        "' is not loaded or offers no item similarities";
    return out;
  }
  const size_t m = std::min(ranked->size(), placement.diversity_pool);
  s.pool_items.clear();
  s.pool_scores.clear();
  for (size_t r = 0; r < m; ++r) {
    const char* item = s.candidates[(*ranked)[r].candidate].item_id;
    s.pool_items.push_back(item ? item : "");
    s.pool_scores.push_back((*ranked)[r].priority);
  }
  s.pool_similarity.resize(m * m);
  if (Status st = by->Similarity(s.pool_items.data(), m, s.pool_similarity.data()); !st.ok()) {
    metrics->counters.Add("plugin_errors." + by->name());
    log::Warn("plugin:" + by->name(), st.message());
    (*dropped)[by->name() + ".similarity"] = st.message();
    return out;
  }
  const std::vector<DiversifyPick> picks =
      Diversify(s.pool_scores, s.pool_similarity, placement.diversity, std::min(m, limit));
  // Moved out and back: every one of the first m places is refilled below.
  std::vector<RuleRuntime::Ranked> head(
      std::make_move_iterator(ranked->begin()),
      std::make_move_iterator(ranked->begin() + static_cast<std::ptrdiff_t>(m)));
  for (size_t r = 0; r < m; ++r) {
    const DiversifyPick& pick = picks[r];
    (*ranked)[r] = std::move(head[pick.from]);
    if (pick.similarity > 0 && pick.from < r)  // moved down by its likeness
      out.push_back(
          {(*ranked)[r].candidate, head[pick.similar_to].candidate, pick.penalty, pick.similarity});
  }
  metrics->counters.Add("diversity.applied");
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
  if (!config.rules_dir.empty())
    snap->rules = RuleSet::Load(config.rules_dir, config.rule_limits, errors);
  if (!config.journeys_dir.empty()) {
    std::set<std::string> offer_ids;
    for (const Offer& o : cat->offers) offer_ids.insert(o.id);
    snap->journeys = Journeys::Load(config.journeys_dir, offer_ids, errors);
  }
  snap->sensitive =
      std::make_shared<const SensitiveGate>(config.sensitive, cat->offers, cat->items);
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
    std::string err;
    journey_rt_ = JourneyRuntime::Open(store_->path(), &err);
    if (!journey_rt_) return Status::Error("journeys: " + err);
  }
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

std::variant<json, ApiError> Engine::Decide(const DecideRequest& req, DecideOptions options) {
  std::shared_ptr<const Snapshot> snap = snapshot_.load();
  const EngineConfig& cfg = snap->config;
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
  const int64_t now = req.now_ms ? *req.now_ms : now_ms();
  const Catalog* cat = snap->catalog.get();
  static thread_local Scratch s;

  // Profile and consent.
  std::shared_ptr<const Profile> profile;
  bool personalised = false;
  if (!req.customer.empty()) {
    profile = GetProfile(req.customer);
    personalised = profile->known && AllowsPersonalisation(profile->customer);
  }
  s.recent.clear();
  if (personalised)
    for (const Event& e : profile->recent) s.recent.push_back(ViewOf(e));

  // Candidates and their business value.
  s.candidates.clear();
  s.offer_index.clear();
  s.item_index.clear();
  s.values.clear();
  s.context.clear();
  std::string category_filter;
  if (auto c = req.context.find("category"); c != req.context.end() && c->is_string())
    category_filter = c->get<std::string>();
  if (placement.kind == PlacementConfig::Kind::kOffers) {
    for (size_t oi = 0; oi < cat->offers.size(); ++oi) {
      const Offer& o = cat->offers[oi];
      if (now < o.valid_from_ms || now > o.valid_until_ms) continue;
      if (!Contains(o.placements, req.placement) || !Contains(o.channels, req.channel)) continue;
      // An offer that promotes an item is also about that item's category.
      const std::string* category = &o.category;
      if (category->empty() && !o.item.empty())
        if (auto it = cat->item_index.find(o.item); it != cat->item_index.end())
          category = &cat->items[it->second].category;
      s.candidates.push_back(
          tailor_candidate{o.id.c_str(), NullIfEmpty(o.item), NullIfEmpty(*category)});
      s.offer_index.push_back(static_cast<int>(oi));
      s.item_index.push_back(-1);
      s.values.push_back(o.value);
      double C = placement.weight;
      if (auto w = o.channel_weights.find(req.channel); w != o.channel_weights.end())
        C *= w->second;
      s.context.push_back(C);
    }
  } else {
    for (size_t i = 0; i < cat->items.size() && s.candidates.size() < placement.max_candidates;
         ++i) {
      const Item& it = cat->items[i];
      if (!category_filter.empty() && it.category != category_filter) continue;
      s.candidates.push_back(tailor_candidate{nullptr, it.id.c_str(), NullIfEmpty(it.category)});
      s.offer_index.push_back(-1);
      s.item_index.push_back(static_cast<int>(i));
      s.values.push_back(cat->item_value[i]);
      s.context.push_back(placement.weight);
    }
  }
  const size_t n = s.candidates.size();

  // Plugins score the whole batch; a failing plugin drops out of this decision.
  const std::string context_text = req.context.dump();
  tailor_request_view view{personalised ? req.customer.c_str() : nullptr,
                           personalised ? 1 : 0,
                           req.channel.c_str(),
                           req.placement.c_str(),
                           context_text.c_str(),
                           now,
                           s.recent.data(),
                           s.recent.size()};
  const auto& plugins = plugins_->plugins();
  // A reply and its trace name the ranked head and the (usually few)
  // suppressed; in a large placement that is a small part, so plugins score
  // everything without reasons and explain only those in a second, small call.
  const bool explain_after = n > 2 * std::max(static_cast<size_t>(req.limit) * 4, kTraceEligible);
  s.all_scores.assign(plugins.size() * n, 0.0f);
  s.all_reasons.assign(explain_after ? 0 : plugins.size() * n * kReasonCap, '\0');
  s.weighted_sum.assign(n, 0.0);
  s.weight_sum.assign(n, 0.0);
  s.plugin_ok.assign(plugins.size(), false);
  s.plugin_names.clear();
  for (const auto& p : plugins) s.plugin_names.push_back(p->name());
  json dropped = json::object();
  for (const auto& f : plugins_->failures()) dropped[f.name] = "not loaded: " + f.error;
  double weight_total = 0;
  for (size_t k = 0; k < plugins.size(); ++k) {
    LoadedPlugin& p = *plugins[k];
    if (n == 0) break;
    Status st = p.Score(view, s.candidates.data(), n, s.all_scores.data() + k * n,
                        explain_after ? nullptr : s.all_reasons.data() + k * n * kReasonCap,
                        explain_after ? 0 : kReasonCap);
    if (!st.ok()) {
      metrics_->counters.Add("plugin_errors." + p.name());
      log::Warn("plugin:" + p.name(), st.message());
      dropped[p.name()] = st.message();
      continue;
    }
    s.plugin_ok[k] = true;
    weight_total += p.weight();
    const float* sc = s.all_scores.data() + k * n;
    for (size_t i = 0; i < n; ++i) {
      if (sc[i] == TAILOR_SCORE_ABSTAIN) continue;  // only ABI >= 1.1 plugins get it through
      s.weighted_sum[i] += p.weight() * sc[i];
      s.weight_sum[i] += p.weight();
    }
  }

  // Facts (ABI 1.1): what plugins know about the customer and the moment
  // (DNA buckets, the chat intent), for rules and `why`. The request's own
  // context wins over a plugin; among plugins, the first listed wins.
  json facts = json::object();
  for (const auto& p : plugins) {
    if (!p->can_annotate()) continue;
    json f;
    if (Status st = p->Annotate(view, &f); !st.ok()) {
      metrics_->counters.Add("plugin_errors." + p->name());
      log::Warn("plugin:" + p->name(), st.message());
      dropped[p->name() + ".facts"] = st.message();
      continue;
    }
    if (f.is_null()) continue;
    for (auto part = f.begin(); part != f.end(); ++part) {
      json& into = facts[part.key()];
      for (auto it = part.value().begin(); it != part.value().end(); ++it) {
        if (part.key() == "context" && req.context.contains(it.key())) continue;
        if (!into.contains(it.key())) into[it.key()] = it.value();
      }
    }
  }

  // Rules: eligibility (veto with a reason), then levers L.
  static thread_local ThreadRules tr;
  RuleRuntime* rules = nullptr;
  if (snap->rules) {
    if (tr.engine != this || tr.version != snap->version || !tr.runtime) {
      tr.runtime = std::make_unique<RuleRuntime>(snap->rules, snap->catalog);
      tr.engine = this;
      tr.version = snap->version;
    }
    if (tr.runtime->ok()) rules = tr.runtime.get();
  }
  const Journeys* journeys =
      journey_rt_ && snap->journeys && !snap->journeys->empty() && personalised
          ? snap->journeys.get()
          : nullptr;
  RuleRequest rr;
  rr.profile = profile.get();
  rr.personalised = personalised;
  rr.customer_id = req.customer;
  rr.channel = req.channel;
  rr.placement = req.placement;
  rr.context_json = context_text;
  rr.now_ms = now;
  rr.plugin_names = &s.plugin_names;
  rr.plugin_scores = s.all_scores.data();
  rr.plugin_ok = &s.plugin_ok;
  rr.n_candidates = n;
  rr.facts = facts.empty() ? nullptr : &facts;
  if (rules) rules->Begin(rr);

  double max_value = 0;
  for (double v : s.values) max_value = std::max(max_value, v);
  if (max_value <= 0) max_value = 1;
  s.priority.resize(n);
  s.propensity.resize(n);
  s.levers.assign(n, 1.0);
  s.vetoed.assign(n, 0);
  if (s.notes.size() < n) s.notes.resize(n);
  s.order.clear();
  SensitiveCheck sensitive(*snap->sensitive, profile ? &profile->customer : nullptr, personalised);
  // Large item placements: journeys and rules judge only the best
  // rules_candidates by P x C x V; the rest are not shown at all, so nothing
  // reaches a customer unchecked.
  s.evaluate.assign(n, 1);
  if ((rules || journeys) && placement.rules_candidates > 0 && n > placement.rules_candidates) {
    std::vector<std::pair<double, size_t>> base(n);
    for (size_t i = 0; i < n; ++i) {
      double P =
          s.weight_sum[i] > 0 ? s.weighted_sum[i] / s.weight_sum[i] : cfg.fallback_propensity;
      base[i] = {P * s.context[i] * std::pow(s.values[i] / max_value, placement.value_exponent), i};
    }
    std::nth_element(base.begin(),
                     base.begin() + static_cast<std::ptrdiff_t>(placement.rules_candidates),
                     base.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::fill(s.evaluate.begin(), s.evaluate.end(), 0);
    for (size_t k = 0; k < placement.rules_candidates; ++k) s.evaluate[base[k].second] = 1;
  }
  for (size_t i = 0; i < n; ++i) {
    s.notes[i].clear();
    double P = s.weight_sum[i] > 0 ? s.weighted_sum[i] / s.weight_sum[i] : cfg.fallback_propensity;
    s.propensity[i] = P;
    if (!s.evaluate[i]) {
      s.priority[i] =
          P * s.context[i] * std::pow(s.values[i] / max_value, placement.value_exponent);
      continue;
    }
    // The sensitive gate before journeys and rules: it fails closed, and a
    // vetoed candidate never reaches a rule that could lift it.
    if (std::string veto = sensitive.Veto(s.offer_index[i], s.item_index[i]); !veto.empty()) {
      s.notes[i].push_back(std::move(veto));
      s.vetoed[i] = 1;
      s.priority[i] = 0;
      continue;
    }
    // Then journeys: a stage that does not allow this offer or item (its
    // channel, category or a contact cap) suppresses it before any rule runs.
    if (journeys) {
      const tailor_candidate& c = s.candidates[i];
      JourneyRuntime::Verdict v =
          journey_rt_->Check(*journeys, req.customer, req.channel, c.offer_id ? c.offer_id : "",
                             c.category ? c.category : "", now);
      if (!v.journey.empty())
        s.notes[i].push_back("journey " + v.journey + ", stage " + v.stage +
                             (v.allowed ? "" : ": " + v.reason));
      if (!v.allowed) {
        s.vetoed[i] = 1;
        s.priority[i] = 0;
        continue;
      }
    }
    if (rules) {
      RuleEffect fx = rules->Evaluate(i, s.offer_index[i], s.item_index[i], P);
      s.vetoed[i] = fx.vetoed;
      s.levers[i] = fx.levers;
      for (auto& note : fx.reasons) s.notes[i].push_back(std::move(note));
    }
    double V = std::pow(s.values[i] / max_value, placement.value_exponent);
    s.priority[i] = P * s.context[i] * V * s.levers[i];
    if (!s.vetoed[i]) s.order.push_back(i);
  }
  if (sensitive.vetoes() > 0) metrics_->counters.Add("sensitive.vetoes", sensitive.vetoes());
  auto id_of = [&](size_t i) {
    return s.candidates[i].offer_id ? s.candidates[i].offer_id : s.candidates[i].item_id;
  };
  // Rank the eligible; finalize hooks see the best few times the limit.
  // Diversity picks from a pool that may be longer.
  const bool diversify = placement.diversity > 0 && req.limit > 1;
  const size_t finalized =
      std::min(s.order.size(), std::max(static_cast<size_t>(req.limit) * 4, kTraceEligible));
  const size_t keep =
      std::max(finalized, std::min(s.order.size(), diversify ? placement.diversity_pool : 0));
  std::partial_sort(s.order.begin(), s.order.begin() + static_cast<std::ptrdiff_t>(keep),
                    s.order.end(), [&](size_t a, size_t b) {
                      if (s.priority[a] != s.priority[b]) return s.priority[a] > s.priority[b];
                      return std::strcmp(id_of(a), id_of(b)) < 0;
                    });
  std::vector<RuleRuntime::Ranked> ranked;
  for (size_t r = 0; r < keep; ++r)
    ranked.push_back(
        {s.order[r], id_of(s.order[r]), s.priority[s.order[r]],
         s.candidates[s.order[r]].category ? s.candidates[s.order[r]].category : std::string()});
  const std::vector<Diversified> diversified =
      diversify ? Diversity(placement, static_cast<size_t>(req.limit), plugins, s, metrics_,
                            &ranked, &dropped)
                : std::vector<Diversified>{};
  ranked.resize(finalized);
  std::vector<std::string> final_notes;
  if (rules) {
    rules->Finalize(&ranked, &final_notes);
    rules->End();
  }
  size_t top = std::min<size_t>(ranked.size(), static_cast<size_t>(req.limit));
  if (explain_after) {
    // The candidates the reply and trace below name: the ranked list and the
    // first suppressed, in that order.
    s.explained.clear();
    s.explained_at.assign(n, -1);
    auto name = [&](size_t i) {
      s.explained_at[i] = static_cast<int>(s.explained.size());
      s.explained.push_back(s.candidates[i]);
    };
    for (const auto& r : ranked) name(r.candidate);
    for (size_t i = 0, named = 0; i < n && named < kTraceSuppressed; ++i) {
      if (!s.vetoed[i]) continue;
      name(i);
      ++named;
    }
    const size_t m = s.explained.size();
    s.all_reasons.assign(plugins.size() * m * kReasonCap, '\0');
    for (size_t k = 0; k < plugins.size() && m > 0; ++k) {
      if (!s.plugin_ok[k]) continue;
      LoadedPlugin& p = *plugins[k];
      if (Status st = p.Explain(view, s.explained.data(), m,
                                s.all_reasons.data() + k * m * kReasonCap, kReasonCap);
          !st.ok()) {
        metrics_->counters.Add("plugin_errors." + p.name());
        log::Warn("plugin:" + p.name(), st.message());
        dropped[p.name() + ".reasons"] = st.message();
      }
    }
  }
  auto reason_of = [&](size_t k, size_t i) -> const char* {
    if (!explain_after) return s.all_reasons.data() + (k * n + i) * kReasonCap;
    const int at = s.explained_at[i];
    return at < 0 ? "" : s.all_reasons.data() + (k * s.explained.size() + at) * kReasonCap;
  };

  // Reply, with every factor of every offer in `why`.
  char idbuf[48];
  std::snprintf(idbuf, sizeof idbuf, "d-%011llx-%06llx", static_cast<unsigned long long>(now),
                static_cast<unsigned long long>(decision_seq_.fetch_add(1) & 0xffffff));
  std::string decision_id = idbuf;
  // Built member by member: an initializer list would copy every value once
  // more, and this runs for each of the ~50 entries of a trace.
  auto factors = [&](size_t i) {
    json why = json::object();
    why["priority"] = s.priority[i];
    why["propensity"] = s.propensity[i];
    why["context"] = s.context[i];
    why["value"] = std::pow(s.values[i] / max_value, placement.value_exponent);
    why["levers"] = s.levers[i];
    why["business_value"] = s.values[i];
    json& pj = why["plugins"] = json::object();
    for (size_t k = 0; k < plugins.size(); ++k) {
      if (!s.plugin_ok[k]) continue;
      const float sc = s.all_scores[k * n + i];
      json& e = pj[plugins[k]->name()] = json::object();
      if (sc == TAILOR_SCORE_ABSTAIN)
        e["abstained"] = true;
      else
        e["score"] = sc;
      e["weight"] = plugins[k]->weight();
      const char* reason = reason_of(k, i);
      if (reason[0]) e["reason"] = reason;
    }
    if (!s.notes[i].empty()) why["rules"] = s.notes[i];
    for (const Diversified& d : diversified)
      if (d.candidate == i)
        why["diversity"] = {{"penalty", d.penalty},
                            {"similarity", d.similarity},
                            {"similar_to", id_of(d.similar_to)}};
    if (s.weight_sum[i] == 0)
      why["fallback"] = weight_total == 0
                            ? "no plugin scored; propensity is the configured fallback"
                            : "every plugin abstained; propensity is the configured fallback";
    if (!dropped.empty()) why["dropped"] = dropped;
    return why;
  };
  auto name_candidate = [&](json& o, size_t i) {
    const tailor_candidate& c = s.candidates[i];
    if (c.offer_id) o["offer"] = c.offer_id;
    if (c.item_id) o["item"] = c.item_id;
    if (c.category) o["category"] = c.category;
  };
  json offers = json::array();
  for (size_t r = 0; r < top; ++r) {
    size_t i = ranked[r].candidate;
    json o = json::object();
    o["rank"] = r + 1;
    o["score"] = s.priority[i];
    json& why = o["why"] = factors(i);
    if (!facts.empty()) why["facts"] = facts;
    name_candidate(o, i);
    offers.push_back(std::move(o));
  }
  // The trace: everything shown, everything suppressed (up to a bound), and
  // the best of what did not make the cut.
  json trace = json::array();
  std::vector<char> shown(n, 0);
  for (size_t r = 0; r < top; ++r) shown[ranked[r].candidate] = 1;
  size_t suppressed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!s.vetoed[i] || suppressed++ >= kTraceSuppressed) continue;
    json t = json::object();
    t["status"] = "suppressed";
    t["why"] = factors(i);
    name_candidate(t, i);
    trace.push_back(std::move(t));
  }
  for (size_t r = 0; r < ranked.size(); ++r) {
    size_t i = ranked[r].candidate;
    json t = json::object();
    t["status"] = shown[i] ? "shown" : "not chosen";
    t["why"] = factors(i);
    if (shown[i]) t["rank"] = r + 1;
    name_candidate(t, i);
    trace.push_back(std::move(t));
  }
  json reply = {{"v", TAILOR_SCHEMA_VERSION},   {"id", req.id},    {"decision", decision_id},
                {"personalised", personalised}, {"candidates", n}, {"offers", std::move(offers)}};
  if (!final_notes.empty()) reply["finalize"] = final_notes;
  json stored_trace = {
      {"snapshot", snap->version}, {"candidates", n}, {"suppressed", suppressed},
      {"finalize", final_notes},   {"facts", facts},  {"entries", std::move(trace)}};
  if (options.trace_in_reply) reply["trace"] = stored_trace;

  DecisionRecord rec;
  rec.id = decision_id;
  rec.customer_id = req.customer;
  rec.channel = req.channel;
  rec.placement = req.placement;
  rec.ts_ms = now;
  json rj = {{"customer", req.customer},
             {"channel", req.channel},
             {"placement", req.placement},
             {"limit", req.limit},
             {"context", req.context}};
  rec.request_json = rj.dump();
  rec.response_json = reply.dump(-1, ' ', false, json::error_handler_t::replace);
  if (options.reply_text) *options.reply_text = rec.response_json;
  rec.trace_json = stored_trace.dump(-1, ' ', false, json::error_handler_t::replace);
  store_->LogDecision(std::move(rec));
  metrics_->counters.Add("decisions");
  return reply;
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
  return json{{"decision", rec->id},
              {"customer", rec->customer_id},
              {"channel", rec->channel},
              {"placement", rec->placement},
              {"ts", format_iso8601_ms(rec->ts_ms)},
              {"request", ParseObject(rec->request_json)},
              {"offers", response.value("offers", json::array())},
              {"trace", ParseObject(rec->trace_json)}};
}

std::string Engine::ChatIntent(const Event& e) {
  // The chat line is handed to the plugins as a decide request's
  // context.message would be; the first plugin naming an intent wins.
  const std::string context = json{{"message", e.text}}.dump();
  const std::string channel = e.channel.empty() ? "chat" : e.channel;
  tailor_request_view view{e.customer_id.c_str(), 1,       channel.c_str(), "chat",
                           context.c_str(),       e.ts_ms, nullptr,         0};
  for (const auto& p : plugins_->plugins()) {
    if (!p->can_annotate()) continue;
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

void Engine::AfterDurable(const Event& e) {
  cache_.ApplyEvent(e, config_.store.recent_events);
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
      if (Status st = journey_rt_->OnEvent(*snap->journeys, e, category, intent); !st.ok())
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
  metrics_->counters.Add("events." + e.type);
}

Status Engine::IngestEvent(Event event) {
  std::vector<Event> one;
  one.push_back(std::move(event));
  return IngestEvents(std::move(one)).front();
}

std::vector<Status> Engine::IngestEvents(std::vector<Event> events) {
  std::vector<std::future<Status>> futures;
  futures.reserve(events.size());
  for (const Event& e : events) futures.push_back(store_->AppendEvent(e));
  std::vector<Status> out;
  out.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    Status st = futures[i].get();
    if (st.ok()) {
      AfterDurable(events[i]);
    } else {
      metrics_->counters.Add("events.failed");
      log::Error("events", "event for " + events[i].customer_id + " not stored: " + st.message());
    }
    out.push_back(std::move(st));
  }
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
                                 (customer ? " to '" + customer->id + "'" : std::string()) + ": " +
                                 why);
    }
    return why;
  };
  return journey_rt_->TakeDue(*snap->journeys, now_ms(), max, refuse);
}

json Engine::Health() const {
  json plugins = json::object();
  for (const auto& p : plugins_->plugins())
    plugins[p->name()] = {{"status", "ok"}, {"version", p->version()}};
  for (const auto& f : plugins_->failures())
    plugins[f.name] = {{"status", "failed"}, {"error", f.error}};
  auto snap = snapshot_.load();
  const Catalog* cat = snap->catalog.get();
  return {{"status", "ok"},
          {"snapshot", snap->version},
          {"rules", snap->rules ? snap->rules->rules().size() : 0},
          {"uptime_s", (now_ms() - started_ms_) / 1000},
          {"store",
           {{"path", store_->path()},
            {"schema_version", store_->schema_version()},
            {"pending_writes", store_->PendingWrites()}}},
          {"catalog", {{"offers", cat->offers.size()}, {"items", cat->items.size()}}},
          {"plugins", std::move(plugins)}};
}

json Engine::Stats() const {
  json counters = json::object();
  json requests = json::object(), errors = json::object(), plugin_errors = json::object(),
       events = json::object();
  json sensitive = {{"vetoes", 0}, {"outbound_cancelled", 0}};
  for (const auto& [k, v] : metrics_->counters.Snapshot()) {
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
  for (const auto& p : plugins_->plugins()) {
    const PluginCounters& c = p->counters();
    uint64_t calls = c.score_calls.load();
    plugins[p->name()] = {{"score_calls", calls},
                          {"score_errors", c.score_errors.load()},
                          {"observe_calls", c.observe_calls.load()},
                          {"observe_errors", c.observe_errors.load()},
                          {"annotate_calls", c.annotate_calls.load()},
                          {"annotate_errors", c.annotate_errors.load()},
                          {"similarity_calls", c.similarity_calls.load()},
                          {"similarity_errors", c.similarity_errors.load()},
                          {"explain_calls", c.explain_calls.load()},
                          {"explain_errors", c.explain_errors.load()},
                          {"mean_score_us", calls ? static_cast<double>(c.score_ns.load()) /
                                                        1000.0 / static_cast<double>(calls)
                                                  : 0.0}};
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
  return {
      {"requests", requests},
      {"errors", errors},
      {"plugin_errors", plugin_errors},
      {"events", events},
      {"counters", counters},
      {"plugins", plugins},
      {"rules", rules},
      {"sensitive", sensitive},
      {"snapshot", snap->version},
      {"latency_us", {{"decide", hist(metrics_->decide_us)}, {"event", hist(metrics_->event_us)}}},
      {"store", {{"pending_writes", store_->PendingWrites()}}}};
}

}  // namespace tailor
