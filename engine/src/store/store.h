// The store: one SQLite file in WAL mode holding customers, items, offers, the
// append-only event log, the decision audit log, journey state and the model
// registry.
//
// Writes from the service go through one writer thread that batches them into
// transactions; append_event()'s future resolves only after the transaction
// holding the event has committed, so an acknowledged event is durable. Reads
// use a pool of read-only connections and are safe from any thread.
//
// The seam past one machine: this is the only class that speaks SQL. A
// PostgreSQL backend would implement the same operations.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "model/feedback.h"
#include "model/types.h"
#include "store/journey_rows.h"
#include "store/retention.h"

struct sqlite3;

namespace tailor {

// An offer as stored; the definition is the offer's JSON (see config/offers.yaml).
struct OfferRecord {
  std::string id;
  std::string definition_json;
};

// Shadow mode: one position of what Tailor would have shown (table
// shadow_picks, migration 7).
struct ShadowPick {
  int position = 0;  // 1-based
  std::string offer_id, item_id;
  double propensity = 1;  // the policy's, as a live decision would log it
  double p_click = 0;     // the P it was ranked by
  double p_convert = 1;   // P(convert | click); 1 without a response model
  double value = 0;       // business value of a conversion
};

// One shadow decision with its responses, for shadow_estimate.h.
struct ShadowDecisionRow {
  std::string decision_id, placement;
  int64_t ts_ms = 0;
  std::string served_top, tailor_top;   // offer (else item) id at position 1; '' none
  int64_t served = 0;                   // served impressions
  int64_t picks = 0;                    // Tailor's picks
  double tailor_clicks = 0;             // sum of the picks' p_click
  double tailor_conversions = 0;        // sum of p_click x p_convert
  double tailor_value = 0;              // sum of p_click x p_convert x value
  double served_p_click = 0;            // sum of the served impressions' logged P(click)
  int64_t clicks = 0, conversions = 0;  // observed on the served choice (first of kind)
  int64_t top_clicks = 0;               // observed clicks on the served position 1
  double revenue = 0;                   // sum of the conversions' values
};

struct DecisionRecord {
  std::string id;
  std::string customer_id;
  std::string channel;
  std::string placement;
  int64_t ts_ms = 0;
  std::string request_json;
  std::string response_json;  // offers with their `why`
  // Every candidate: shown or suppressed, and why. The engine stores a
  // compact binary record (decision/trace.h RenderTrace makes it JSON);
  // stores written before hold the JSON itself.
  std::string trace_json = "{}";
  std::string experiment;     // '' outside any experiment
  std::string arm;            // the experiment's arm, or "holdout"
  std::string mode = "live";  // "live", "shadow", or "" for both      // live | shadow
  std::vector<ShadowPick>
      shadow_picks;  // shadow mode: Tailor's own choice (written, not read back)
};

// What erasing one customer removed (Store::EraseCustomer).
struct ErasedRows {
  int64_t events = 0, decisions = 0, impressions = 0, outcomes = 0, journey_rows = 0;
  int64_t customer = 0;  // the customer row (and demo ground truth)
};

struct ModelRecord {
  int64_t id = 0;
  std::string plugin;
  std::string path;
  int64_t created_ms = 0;
  std::string metrics_json = "{}";
  bool active = false;
};

// --- What `tailor report` reads (report/kpi.h) ------------------------------

// The decisions a report covers: ts_ms in [since_ms, until_ms), of one mode,
// and of one experiment when experiment is not empty.
struct KpiWindow {
  int64_t since_ms = 0;
  int64_t until_ms = INT64_MAX;
  std::string experiment;
  std::string mode = "live";
};

// One customer's decisions of one day (UTC) under one experiment, arm and
// placement, with what they caused: shown impressions, impressions clicked
// and converted (each counted once), and the conversions' summed value.
struct CustomerDayKpi {
  std::string customer_id;
  std::string experiment;
  std::string arm;
  std::string placement;
  int64_t day = 0;  // ts_ms / 86,400,000
  int64_t decisions = 0;
  int64_t impressions = 0;
  int64_t clicks = 0;
  int64_t conversions = 0;
  double revenue = 0;
};

// One offer's shown impressions in a window and what they caused.
struct OfferKpi {
  std::string offer_id;
  int64_t impressions = 0;
  int64_t clicks = 0;
  int64_t conversions = 0;
  double revenue = 0;
};

// A decision's trace as stored (decision/explanation.cc); the view is valid
// only during the callback.
struct DecisionTraceRow {
  std::string_view id;
  std::string_view experiment;
  std::string_view arm;
  std::string_view placement;
  int64_t ts_ms = 0;
  std::string_view trace_json;
};

// What retention removed since the store opened.
struct RetentionCounts {
  int64_t events = 0, decisions = 0, impressions = 0, outcomes = 0, traces = 0, chat_texts = 0;
  int64_t last_run_ms = 0;  // 0: not yet
};

class Store {
 public:
  struct Options {
    std::string path;
    // FULL fsyncs every commit (acknowledged = survives power loss); NORMAL only
    // survives a process crash. Batching keeps FULL cheap under load.
    bool synchronous_full = true;
    size_t max_batch = 512;  // writes per transaction at most
    // Logs (decisions, impressions, outcomes) queued for the writer at most;
    // past it, logging waits for the writer: decisions slow down to the
    // disk's pace instead of memory growing.
    size_t max_queued_logs = 65536;
    bool start_writer = true;  // tools that only bulk-load can skip the thread
    Retention retention;       // enforced by the writer in the background
    bool read_only = false;    // open without migrating or writing
  };

  // Opens (creating if needed) and migrates to the newest schema. Returns null
  // and sets *err when the file cannot be opened, is not a Tailor store, or was
  // written by a newer Tailor.
  static std::unique_ptr<Store> Open(const Options& options, std::string* err);
  ~Store();  // drains the writer queue first

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const;
  int schema_version() const;

  // --- Writes through the writer thread -------------------------------------
  // Durable once the future is ready and ok(). Also creates the customer row
  // when the customer is new. When seq_out is given, the event's seq is
  // written there before the future becomes ready (it must outlive it).
  // A client waits on an event (`urgent`): it is committed at once. The
  // engine's own impression events may wait a moment for company, as the
  // decision logs do (one commit and fsync for many).
  std::future<Status> AppendEvent(Event event, int64_t* seq_out = nullptr, bool urgent = true);
  // Fire and forget: the audit log is written in the next batch.
  void LogDecision(DecisionRecord decision);
  // The same, committed at once with whatever is queued (store.durable_decisions):
  // ready once the decision is durable.
  std::future<Status> LogDecisionDurably(DecisionRecord decision);
  // Fire and forget, like the decision log: a decision's candidates at their
  // positions (the feedback contract). A (decision, position) already stored
  // is kept as it was.
  void LogImpressions(std::vector<Impression> impressions);
  // Fire and forget: an explicit placement's impression was rendered at ts_ms.
  void MarkShown(const std::string& decision_id, int position, int64_t ts_ms);
  // Fire and forget: a response joined to its impression.
  void LogOutcome(Outcome outcome);
  // Erasure: removes every row about the customer from every table, after
  // everything queued before it, then checkpoints and empties the WAL, so
  // that with secure_delete on no byte of them stays in the files. *erased
  // (kept alive by the caller until the future is ready) gets the counts.
  std::future<Status> EraseCustomer(const std::string& customer_id, ErasedRows* erased);
  // Journey changes (journeys/runtime.h), written in order as one savepoint
  // behind everything queued before them; ready once durable.
  std::future<Status> WriteJourney(std::vector<JourneyWrite> writes);
  // Runs a whole retention pass through the writer now (the writer also
  // runs one at start and every Retention::every_ms, a chunk at a time).
  std::future<Status> EnforceRetention();
  RetentionCounts Retained() const;
  // Blocks until everything queued so far is committed.
  void Flush();
  // Number of queued writes not yet committed.
  size_t PendingWrites() const;
  // How the writer fares, for `health`: whether its last batch failed (the
  // transaction, or a write in it), and the last failure.
  struct WriterState {
    size_t pending = 0;
    size_t capacity = 0;  // Options::max_queued_logs
    bool failing = false;
    std::string last_error;
    int64_t last_error_ms = 0;
  };
  WriterState Writer() const;
  // The most writes ever queued at once (for tests of the bound).
  size_t MaxQueuedWrites() const;
  // Whether the writer thread runs (false: opened read-only or for bulk load;
  // appends fail and fire-and-forget writes are dropped).
  bool writable() const;

  // --- Synchronous writes (tools, admin) ------------------------------------
  Status UpsertCustomer(const Customer& c);
  Status UpsertItem(const Item& item);
  Status UpsertOffer(const OfferRecord& offer);
  Status RegisterModel(const ModelRecord& model, int64_t* id_out);
  // Erasure: unregisters plugin's inactive models (nothing makes one active
  // again) except the one at keep_path, and returns their files' paths for
  // the caller to delete.
  Status RetireInactiveModels(const std::string& plugin, const std::string& keep_path,
                              std::vector<std::string>* paths);

  // Bulk loading for import and demo: everything between Begin and Commit is
  // one transaction on a dedicated connection. Not thread-safe; one at a time.
  class Bulk {
   public:
    ~Bulk();  // rolls back unless committed
    Status Customer(const tailor::Customer& c);
    Status Item(const tailor::Item& item);
    Status Offer(const OfferRecord& offer);
    Status Event(const tailor::Event& e);  // does not create the customer row
    // Hidden ground truth of the demo world (trait name -> value), kept apart
    // from customers.attributes so that models never see it.
    Status Truth(const std::string& customer_id, const std::string& trait, double value);
    Status Commit();

   private:
    friend class Store;
    struct Impl;
    explicit Bulk(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
  };
  std::unique_ptr<Bulk> BeginBulk(std::string* err);

  // --- Reads (any thread) ---------------------------------------------------
  std::optional<Customer> GetCustomer(const std::string& id);
  // history holds the customer's events of the history_days before the
  // earlier of now and their newest event.
  Profile LoadProfile(const std::string& customer_id, size_t recent_limit,
                      int64_t history_days = EventHistory::kDefaultDays);
  std::optional<DecisionRecord> GetDecision(const std::string& id);
  std::vector<Item> LoadItems();
  std::vector<OfferRecord> LoadOffers();
  std::vector<ModelRecord> ActiveModels();
  std::map<std::string, double> Truth(const std::string& customer_id);
  // Visits events with ts_ms >= since_ms in insertion order; fn returns false to
  // stop. Returns how many were visited, or -1 on error.
  // learnable_only: only events of customers whose consent allows learning
  // from them (what plugins train on).
  int64_t ForEachEvent(int64_t since_ms, const std::function<bool(const Event&)>& fn,
                       bool learnable_only = false);
  // --- Journey reads (journeys/runtime.h) -----------------------------------
  // A customer's journey states, channel impressions since contacts_since_ms
  // and first/last activity, in one read transaction.
  Status LoadJourneyCustomer(const std::string& customer_id, int64_t contacts_since_ms,
                             JourneyCustomerRows* out);
  // Steps and timers not yet taken with due_ms <= now_ms, soonest first.
  Status DueJourneySteps(int64_t now_ms, size_t max, std::vector<JourneyStepRow>* out);
  // The outbox: messages whose next attempt is due at now_ms, soonest first;
  Status OutboxDue(int64_t now_ms, size_t max, std::vector<OutboxRow>* out);
  // messages not yet acknowledged with id > after_id, by id;
  Status OutboxPending(int64_t after_id, size_t max, std::vector<OutboxRow>* out);
  // and how many wait for an ack.
  OutboxCounts Outbox();
  // --- Feedback reads (feedback/attribution.h) ------------------------------
  // A decision's impressions (shown or waiting for the app), by position.
  std::vector<Impression> ImpressionsOf(const std::string& decision_id);
  // The customer's shown impressions with ts_ms >= since_ms, newest first, at
  // most limit.
  std::vector<Impression> RecentImpressions(const std::string& customer_id, int64_t since_ms,
                                            size_t limit);
  // Visits impressions (shown or not) with ts_ms >= since_ms, oldest first;
  // fn returns false to stop. Returns how many were visited, -1 on error.
  int64_t ForEachImpression(int64_t since_ms, const std::function<bool(const Impression&)>& fn);
  // Visits outcomes with ts_ms >= since_ms in the order they were stored, each
  // with its whole impression (segment and features included) when that is
  // stored. Returns how many were visited, -1 on error.
  int64_t ForEachOutcome(int64_t since_ms, const std::function<bool(const Outcome&)>& fn);
  // A decision's outcomes in the order they were stored.
  std::vector<Outcome> OutcomesOf(const std::string& decision_id);
  // Shadow mode (migration 7): a decision's logged picks, by position.
  std::vector<ShadowPick> ShadowPicksOf(const std::string& decision_id);
  // Visits shadow decisions with since_ms <= ts_ms < until_ms (until_ms <= 0:
  // no bound), oldest first, with their served responses and Tailor's picks
  // summed. Returns how many were visited, -1 on error.
  int64_t ForEachShadowDecision(int64_t since_ms, int64_t until_ms,
                                const std::function<bool(const ShadowDecisionRow&)>& fn);
  // --- Replays (tailor eval policy) -----------------------------------------
  // Visits the decisions with since_ms <= ts_ms < until_ms (until_ms <= 0: no
  // end) on placement ('' : every placement), oldest first (ties by id); fn
  // returns false to stop. Returns how many were visited, -1 on error.
  int64_t ForEachDecision(int64_t since_ms, int64_t until_ms, const std::string& placement,
                          const std::function<bool(const DecisionRecord&)>& fn);
  // Copies the whole store into a new file at dest (SQLite's online backup:
  // consistent even while tailord writes). dest must not exist.
  Status BackupTo(const std::string& dest);
  // On a copy: forgets everything that happened at or after ts_ms (events,
  // decisions, impressions, outcomes, journey states entered then), so that a
  // replay can feed the later events back one by one and decide as of each
  // logged decision's time. Refused on a read-only store.
  Status RewindTo(int64_t ts_ms);

  // --- Report reads (report/kpi.h): streamed, so memory stays bounded ------
  // Decisions in the window.
  int64_t CountDecisions(const KpiWindow& w);
  // Visits (customer, experiment, arm, placement, day) groups ordered by
  // customer id, so a caller can total each customer without holding them
  // all. fn returns false to stop. Returns rows visited, -1 on error.
  int64_t ForEachCustomerDayKpi(const KpiWindow& w,
                                const std::function<bool(const CustomerDayKpi&)>& fn);
  // Per offer, the window's decisions' shown impressions and their outcomes.
  std::vector<OfferKpi> OfferKpis(const KpiWindow& w);
  // Visits the window's decisions' traces oldest first; fn returns false to
  // stop. Returns rows visited, -1 on error.
  int64_t ForEachDecisionTrace(const KpiWindow& w,
                               const std::function<bool(const DecisionTraceRow&)>& fn);

  // Per customer with decisions in [since_ms, until_ms): their attributes and
  // what they were decided, shown (offers only), discounted and converted —
  // the fairness report's rows (report/fairness.h).
  struct CustomerExposure {
    std::string customer_id;
    std::string attributes_json = "{}";
    int64_t decisions = 0;
    int64_t impressions = 0;  // shown offers
    int64_t discounted = 0;   // shown offers with a discount > 0
    double discount_sum = 0;  // over the discounted ones
    int64_t conversions = 0;  // conversions joined to shown offers (one per impression)
  };
  std::vector<CustomerExposure> ExposureByCustomer(int64_t since_ms, int64_t until_ms);

  // Row count of one of: customers, items, offers, events, decisions, models,
  // impressions, outcomes, shadow_picks.
  int64_t Count(const std::string& table);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailor
