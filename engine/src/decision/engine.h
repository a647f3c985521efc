// The decision loop: request -> profile -> candidates -> plugin scores ->
// arbitration (priority = P x C x V x L) -> reply with `why` -> audit log.
// Also the event path: durable append -> profile cache -> plugins observe.
//
// Thread-safe: Decide and IngestEvent run concurrently from any number of
// worker threads. The catalog (offers and items) is an immutable snapshot
// behind an atomic pointer; each request keeps the snapshot it started with.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "decision/decision.h"
#include "decision/profile_cache.h"
#include "decision/sensitive_gate.h"
#include "decision/suppression.h"
#include "experiments/experiments.h"
#include "feedback/loop.h"
#include "journeys/journeys.h"
#include "journeys/runtime.h"
#include "learning/learner.h"
#include "metrics/metrics.h"
#include "model/api_error.h"
#include "model/decide_request.h"
#include "model/types.h"
#include "plugin_host/host.h"
#include "pricing/pricing.h"
#include "rules/rules.h"
#include "store/store.h"

namespace tailor {

// Everything a reload replaces, published together with one atomic swap. A
// request holds the snapshot it started with until it is answered.
struct Snapshot {
  uint64_t version = 0;
  EngineConfig config;
  std::shared_ptr<const Catalog> catalog;
  std::shared_ptr<const RuleSet> rules;            // null when no rules directory is set
  std::shared_ptr<const Journeys> journeys;        // null when no journeys directory is set
  std::shared_ptr<const SensitiveGate> sensitive;  // never null: the gate is never off
  std::shared_ptr<const Suppression> suppression;  // contact policies; null: none
  // Experiments and holdout (experiments/experiments.h); null: none.
  std::shared_ptr<const experiments::ExperimentSet> experiments;
};

struct DecideOptions {
  // Also return the per-candidate trace in the reply ("trace"), as
  // `tailor rules test` shows it.
  bool trace_in_reply = false;
  // False: decide and leave no trace — no decision log, no impressions, no
  // profile change, no learning flush. `tailor eval policy` replays logged
  // requests through a candidate config this way.
  bool record = true;
};

class Engine {
 public:
  // store, plugins and metrics must outlive the engine.
  Engine(EngineConfig config, Store* store, PluginHost* plugins, Metrics* metrics);

  // Builds the first snapshot: the catalog from the config's offers, the
  // store's offers table and items; the rules. Fails on any error.
  Status LoadCatalog();
  // Re-reads the config file, offers, rules (and items from the store), checks
  // them and swaps them in. On any error the old snapshot keeps serving and
  // the errors are returned ("file:line:col: path: message").
  std::vector<std::string> Reload();
  // Loads models registered since the plugins loaded theirs (`tailor train`);
  // one note per plugin that changed or failed (a failure keeps the old one).
  std::vector<std::string> ReloadModels() { return plugins_->ReloadModels(); }
  std::shared_ptr<const Snapshot> snapshot() const { return snapshot_.load(); }
  std::shared_ptr<const Catalog> catalog() const { return snapshot_.load()->catalog; }

  // Runs the stages (decision/stages.h) and records the decision; returns
  // it (service/reply.h renders the wire reply), or an error naming the
  // offending field.
  std::variant<Decision, ApiError> Decide(const DecideRequest& req, DecideOptions options = {});
  // The stored explanation of a past decision: what was shown, what was
  // suppressed, and why.
  std::variant<nlohmann::json, ApiError> Explain(const std::string& decision_id);

  // Appends durably (blocks until committed), then updates the cached profile
  // and lets every plugin observe it.
  Status IngestEvent(Event event);
  // Same as IngestEvent for many events: one wait for the whole batch.
  std::vector<Status> IngestEvents(std::vector<Event> events);
  // IngestEvents in two halves, for a caller that overlaps the writer's
  // commit of one batch with applying the one before: QueueEvents hands the
  // events to the store's writer; ApplyEvents waits until they are durable
  // and applies them (profile cache, journeys, plugins, feedback) in order.
  struct QueuedEvents {
    std::vector<Event> events;
    std::vector<int64_t> seqs;  // written by the store's writer
    std::vector<std::future<Status>> stored;
  };
  std::unique_ptr<QueuedEvents> QueueEvents(std::vector<Event> events);
  std::vector<Status> ApplyEvents(std::unique_ptr<QueuedEvents> queued);
  // Receives every response joined to a decision (feedback/loop.h), on the
  // event path once the event is durable. Set before serving.
  // The engine's own learning (learning/learner.h) sees every outcome first.
  void SetOutcomeObserver(std::function<void(const Outcome&)> observer) {
    outcome_listener_ = std::move(observer);
  }

  nlohmann::json ProfileJson(const std::string& customer_id);
  // Erasure (`profile.delete`): the customer leaves every table, every cache
  // and every plugin; the reply says what went. Events for them that arrive
  // later start a new profile.
  std::variant<nlohmann::json, ApiError> ForgetCustomer(const std::string& customer_id);
  nlohmann::json Health() const;
  // Outbound journey messages now due, for the PUB socket (marked sent and,
  // with service.outbound_delivery.acks, kept in the outbox).
  std::vector<std::string> TakeDueOutbound(size_t max);
  // Outbox messages not acknowledged whose next attempt is due: recorded as
  // attempted (the next one further off, or none after the last), returned
  // for publishing again.
  std::vector<std::string> RedeliverDue(size_t max);
  // outbound.ack: these messages need no more sending (unknown or already
  // acknowledged ids change nothing). Durable when it returns.
  Status AckOutbound(const std::vector<int64_t>& ids);
  // outbound.pending: {"messages":[...],"more":bool}, the messages not yet
  // acknowledged with id > after, by id.
  std::variant<nlohmann::json, ApiError> PendingOutbound(int64_t after, size_t limit);
  nlohmann::json Stats() const;

  const EngineConfig& config() const { return config_; }
  uint64_t reloads() const { return snapshot_.load()->version; }
  Metrics& metrics() { return *metrics_; }

 private:
  std::shared_ptr<const Profile> GetProfile(const std::string& customer_id);
  // The request's placement, or an error naming the placement or channel.
  static std::variant<const PlacementConfig*, ApiError> PlacementFor(const EngineConfig& cfg,
                                                                     const DecideRequest& req);
  // This thread's rule runtime for the snapshot's rules, or an experiment
  // arm's rule set of it (null: no rules or broken).
  RuleRuntime* RulesFor(const Snapshot& snap, const std::shared_ptr<const RuleSet>& set);
  std::string NextDecisionId(int64_t now_ms);
  // The decision log: request, shown offers, and the trace as a compact
  // record (decision/trace.h).
  void Record(const DecideRequest& req, int64_t now_ms, const Decision& d, std::string trace,
              std::vector<ShadowPick> shadow_picks = {});
  // cached: the profile cache has the event already (impressions on_decide).
  // learn: the customer's consent lets their events feed plugins, journeys
  // and response models (LearnsFrom); otherwise the event only updates the
  // cached profile and the counters.
  // journeys: queue journey writes there (the caller waits for the batch)
  // rather than wait for each.
  void AfterDurable(const Event& e, bool cached = false, bool learn = true,
                    JourneyRuntime::Batch* journeys = nullptr);
  bool LearnsFrom(const std::string& customer_id);
  nlohmann::json RetentionJson() const;  // stats.store.retention
  nlohmann::json OutboxJson() const;     // stats.outbound
  // The record stage's impressions to the feedback loop; on_decide also
  // applies their impression events to the profile cache.
  void RecordImpressions(const PlacementConfig& placement, const Decision& d);
  // Rebuilds what responses taught from the stored impressions and outcomes.
  void ReplayResponses(int64_t now_ms);
  // A chat event's intent from the plugins' facts ("" when none names one).
  std::string ChatIntent(const Event& e);
  // Builds a snapshot from a config; errors appended.
  std::shared_ptr<Snapshot> Build(EngineConfig config, std::vector<std::string>* errors);

  EngineConfig config_;
  Store* store_;
  PluginHost* plugins_;
  Metrics* metrics_;
  ProfileCache cache_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::mutex reload_mu_;  // one reload at a time
  // LearnsFrom's answers for customers not in the profile cache, so that an
  // event costs no store read: (learn, when read), kept 60 s, bounded.
  std::mutex consent_mu_;
  std::unordered_map<std::string, std::pair<bool, int64_t>> consent_seen_;
  std::unique_ptr<JourneyRuntime> journey_rt_;  // null without journeys
  uint64_t next_version_ = 1;
  std::atomic<uint64_t> decision_seq_;
  int64_t started_ms_;
  // What responses taught, per placement; fed by feedback_.
  std::unique_ptr<learning::Learner> learner_;
  // Dynamic discounts: posteriors and the disparity window (pricing/pricing.h).
  std::unique_ptr<pricing::Pricer> pricer_ = std::make_unique<pricing::Pricer>();
  std::function<void(const Outcome&)> outcome_listener_;
  std::atomic<uint64_t> flush_count_{0};  // decisions since the click models last labelled
  // Last: its thread hands impression events to AfterDurable until it goes.
  std::unique_ptr<FeedbackLoop> feedback_;
};

}  // namespace tailor
