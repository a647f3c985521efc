// Engine configuration: config/tailor.yaml and the offer catalog it points at.
//
// Loading collects every error before reporting, each as
// "file:line:col: key.path: message"; unknown keys are errors that list the
// valid ones. The same Load function serves start-up, `tailor` tools and tests.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "learning/policy.h"
#include "model/types.h"
#include "plugin_host/host.h"
#include "rules/rules.h"
#include "store/retention.h"

namespace tailor {

// tailor.yaml `security:` (README § Security).
struct SecurityConfig {
  // CURVE: both empty = off, and then every endpoint must be loopback (or
  // ipc/inproc) unless `insecure` says otherwise.
  std::string server_key;  // NAME.key from `tailor keygen` (resolved path)
  std::string clients;     // client keys and roles (security/access.h); re-read on reload
  bool insecure = false;   // allow non-loopback binds without CURVE
  // Client events whose ts lies further from now are refused (replays),
  // unless the sender holds the admin role or allow_replay is set.
  int64_t max_event_age_s = 7 * 86400;
  int64_t max_event_ahead_s = 300;
  bool allow_replay = false;
  // Customer ids in logs: a keyed hash unless plain (common/log.h); the key
  // from this file, else random per start.
  bool log_plain_customer_ids = false;
  std::string log_key_file;
  bool curve() const { return !server_key.empty(); }
};

// How journey messages on the outbound socket are delivered
// (service.outbound_delivery).
struct OutboundDelivery {
  // At least once: each message stays in the store's outbox and is published
  // again, with backoff, until a consumer sends outbound.ack. false: at most
  // once (published once; nobody listening, nobody gets it).
  bool acks = true;
  int64_t retry_after_s = 30;  // the first re-send; each next waits twice as long
  int64_t max_retry_s = 3600;  // the longest wait between two sends
  int max_attempts = 10;       // then it is given up (still in outbound.pending)
};

struct ServiceConfig {
  std::string requests = "tcp://127.0.0.1:5555";  // ROUTER
  std::string events = "tcp://127.0.0.1:5556";    // PULL
  std::string outbound = "tcp://127.0.0.1:5557";  // PUB
  int workers = 2;                                // decision threads
  size_t max_message_bytes = 64 * 1024;           // larger messages get too_large
  // A lone request while every worker is idle is answered on the I/O thread:
  // two thread hand-offs fewer. Under load requests go to the workers.
  bool inline_when_idle = true;
  // Requests handed to the workers and not yet answered, at most; past it
  // a request is answered `overloaded` at once.
  int max_in_flight = 1024;
  // host:port of the read-only HTTP listener (/metrics, /healthz, /readyz);
  // empty: none. Port 0 picks a free one.
  std::string http;
  OutboundDelivery outbound_delivery;
  SecurityConfig security;
};

struct StoreConfig {
  std::string path = "tailor.db";  // relative to the working directory
  bool synchronous_full = true;
  size_t profile_cache = 10000;  // customers kept in memory
  size_t recent_events = 50;     // per profile, handed to plugins
  // Days of events each profile holds for rules' history.* (every event, by
  // type x offer/item id), counted back from the earlier of now and the
  // customer's newest event. Windows reaching further see only these.
  size_t history_days = 400;
  Retention retention;  // store.retention; nothing expires by default
  // A decide is answered only once its decision (explain, the audit log) is
  // committed: no acknowledged decision is lost in a crash, for one group
  // commit (and fsync) of latency.
  bool durable_decisions = false;
};

// The engine's gate for sensitive offers and items (decision/sensitive_gate.h):
// on whatever tailor.yaml says, never off.
struct SensitiveConfig {
  // An offer whose tags carry this key, or an item whose attributes (or
  // attributes.tags) do, is sensitive; the value names the topic.
  std::string tag = "sensitive";
  // The consent flag the customer must have set to true.
  std::string consent = "sensitive";
  // The customer attribute `age` must be a number >= this (0: no age needed).
  int min_age = 21;
};

// One contact policy of tailor.yaml `suppression:` (decision/suppression.h):
// after `threshold` dismissals (or impressions without a click) of an offer or
// item within `within_days`, that customer does not see it for
// `suppress_days` from the event that crossed the threshold.
struct SuppressionPolicy {
  enum class Trigger { kDismissals, kImpressionsWithoutClick };
  std::string name;  // unique; shown in why/explain and counted as suppression.<name>
  // What the policy covers; every list given must match (empty = any).
  std::vector<std::string> offers, items, categories, placements;
  Trigger trigger = Trigger::kDismissals;
  int64_t threshold = 1;
  int64_t within_days = 1;
  int64_t suppress_days = 1;
  std::string where;         // "file:line:col" of the policy
  std::string offers_where;  // "file:line:col" of its offers list, for catalog checks
};

// A placement's response posteriors (learning/response_stats.h).
struct ResponseConfig {
  // P from the placement's response models, learned from joined responses
  // (learning/learner.h), instead of the plugins' blend. Offers placements.
  bool learn = false;
  double half_life_days = 14;  // a response's weight halves every half-life
  double prior_strength = 20;  // pseudo-impressions the prior is worth
  // DNA traits the segment key names (learning/features.h SegmentKey);
  // empty: every trait the plugins' facts carry.
  std::vector<std::string> segment_traits;
};

// Dynamic discounts and their guardrails: tailor.yaml `pricing:`
// (pricing/pricing.h). A misconfigured guardrail is a load error, never a
// silent pass.
struct PricingConfig {
  bool configured = false;  // the block is present
  // Fraction of the price a conversion must still earn after discount and
  // cost: (price x (1 - d) - cost) / price >= min_margin for every level chosen.
  double min_margin = 0;
  // Customer attributes the pricing model may never read (age_band protects
  // age too, and age protects age_band).
  std::vector<std::string> protected_attrs;
  // What the bandit's segment is made of: DNA traits (the plugins'
  // facts.customer.dna) or customer attributes; none may be protected.
  std::vector<std::string> features;
  // Cap on max group / min group of the average discount over the rolling
  // window, groups by group_by (one of the protected attributes); 0: no cap.
  double max_disparity = 0;
  std::string group_by;
  size_t window = 2000;   // priced offers the disparity check looks back over
  size_t min_group = 30;  // a group enters the ratio with at least this many
  // Beta prior of the pooled rates a cell's prior is centred on (the offer's
  // rate, the level's rate over all offers): mean prior_rate, worth
  // prior_strength impressions (pricing.cc PooledMean).
  double prior_rate = 0.05;
  double prior_strength = 2;
};

struct PlacementConfig {
  enum class Kind { kOffers, kItems };
  std::string name;
  Kind kind = Kind::kOffers;
  double weight = 1.0;           // context weight C for everything shown here
  double value_exponent = 1.0;   // V = (value / max value) ^ value_exponent
  size_t max_candidates = 2000;  // items placements: catalog items scored at most
  // Journeys and rules judge only this many best candidates (0 = all); the
  // others are never shown. Default: all for offers, 200 for items.
  size_t rules_candidates = 0;
  std::vector<std::string> channels;  // empty = any channel
  // Diversity (off at 0): the shown positions are picked by maximal marginal
  // relevance among the best diversity_pool, priority minus diversity x the
  // best priority x the highest similarity to a candidate already shown,
  // similarities from plugin diversity_by (empty: the first that offers them).
  double diversity = 0;
  size_t diversity_pool = 60;
  std::string diversity_by;
  // Exploration among the eligible candidates, with logged propensities
  // (learning/policy.h): `policy: {kind: greedy|thompson|linear_ts|epsilon,
  // exploration: 0.1, samples: 64}` or the kind alone. Default greedy.
  learning::PolicyConfig policy;
  ResponseConfig response;
  // Per-placement override of the plugins' weights (plugin name -> weight);
  // plugins not named keep their `plugins:` weight. Names are checked against
  // the configured plugins. Empty: the plugins' own weights.
  std::map<std::string, double> plugin_weights;
  // The feedback contract (feedback/attribution.h): on_decide records the
  // shown candidates as impressions (and `impression` events) when the reply
  // goes out; explicit waits for the app's `impression` events naming the
  // decision. A response without a decision id joins the latest decision that
  // showed its offer/item within attribution_hours.
  enum class Impressions { kOnDecide, kExplicit };
  Impressions impressions = Impressions::kOnDecide;
  double attribution_hours = 24;
  // Dynamic discounts for the shown offers that declare a discount range
  // (`pricing: on`); needs the top-level `pricing:` guardrails.
  bool pricing = false;
  // `mode: shadow`: the application serves its own choice (the request's
  // `shadow`), Tailor returns it unchanged and logs what it would have chosen
  // (experiments/shadow_estimate.h). Experiment arms can set it too.
  enum class Mode { kLive, kShadow };
  Mode mode = Mode::kLive;
};

struct EngineConfig {
  std::string file;  // the tailor.yaml this came from ("" for defaults)
  ServiceConfig service;
  StoreConfig store;
  std::string plugin_dir;  // where bare plugin names are looked up
  std::vector<PluginSpec> plugins;
  std::map<std::string, PlacementConfig> placements;
  std::string offers_file;  // resolved path, may be empty
  std::vector<Offer> offers;
  // P when no plugin could score (none configured or all failed).
  double fallback_propensity = 0.5;
  std::string rules_dir;     // resolved; empty = no rules
  std::string journeys_dir;  // resolved; empty = no journeys
  // Experiments and holdout (experiments/experiments.h): tailor.yaml
  // `experiments:`, else experiments.yaml beside tailor.yaml when it exists;
  // empty = none.
  std::string experiments_file;
  RuleLimits rule_limits;
  SensitiveConfig sensitive;
  // Contact policies; each needs store.history_days >= within_days + suppress_days.
  std::vector<SuppressionPolicy> suppression;
  PricingConfig pricing;
};

// Loads tailor.yaml (and the offers file it names). plugin_dir_default is used
// when the file sets no plugin_dir (tailord passes <its dir>/../plugins).
// Returns nullopt and fills errors on any error.
std::optional<EngineConfig> LoadConfig(const std::string& path,
                                       const std::string& plugin_dir_default,
                                       std::vector<std::string>* errors);

// Parses an offers YAML file (top-level key `offers:` holding a list).
bool LoadOffers(const std::string& path, std::vector<Offer>* out, std::vector<std::string>* errors);

// Offers from the store's offers table (JSON definitions, same keys as YAML).
bool ParseOfferJson(const std::string& json_text, const std::string& source, Offer* out,
                    std::string* error);

// The directory part of a path ("." when there is none).
std::string DirName(const std::string& path);

}  // namespace tailor
