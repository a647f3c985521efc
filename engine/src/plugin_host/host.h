// The plugin host: loads model plugins (shared libraries behind
// tailor/plugin.h), checks their ABI, and calls them with an exception-free,
// validating wrapper. A plugin that fails to load is remembered with its error
// and the engine serves without it; a plugin call that fails is reported to the
// caller, counted, and never crashes the host.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "tailor/plugin.h"

namespace tailor {

class Store;
struct ModelRecord;

struct PluginSpec {
  std::string name;                // as configured; must match the plugin's own name
  std::string path;                // path to the .so
  double weight = 1.0;             // weight in the blended propensity P
  std::string config_json = "{}";  // the plugin's config block
  bool train_on_start = true;      // call train() after create when no model could be loaded
  // Train that model on a second instance in the background while the first
  // serves without an opinion (tailord only; see PluginHost::LoadAll).
  bool train_in_background = false;
  // Time budget of one call a decision waits on: score, its explain pass,
  // annotate, similarity (0: none). A call over it is dropped from that
  // decision; max_overruns in a row, of any of them, disable the plugin until
  // a reload. observe is timed against it too, counted, never disabled by it
  // (its event is stored already). In-process calls cannot be interrupted:
  // this bounds how often a slow plugin can slow decisions, not one call.
  int64_t budget_us = 100'000;
  int max_overruns = 20;
};

struct PluginCounters {
  std::atomic<uint64_t> score_calls{0};
  std::atomic<uint64_t> score_errors{0};
  std::atomic<uint64_t> score_ns{0};
  std::atomic<uint64_t> score_overruns{0};  // calls over budget_us (dropped)
  std::atomic<uint64_t> score_skipped{0};   // decisions skipped while disabled
  std::atomic<uint64_t> observe_calls{0};
  std::atomic<uint64_t> observe_errors{0};
  std::atomic<uint64_t> observe_ns{0};
  std::atomic<uint64_t> observe_overruns{0};  // over budget_us: counted only
  std::atomic<uint64_t> annotate_calls{0};
  std::atomic<uint64_t> annotate_errors{0};
  std::atomic<uint64_t> annotate_overruns{0};  // facts dropped
  std::atomic<uint64_t> similarity_calls{0};
  std::atomic<uint64_t> similarity_errors{0};
  std::atomic<uint64_t> similarity_overruns{0};  // no diversifying that decision
  std::atomic<uint64_t> explain_overruns{0};     // reasons dropped
  std::atomic<uint64_t> forget_calls{0};
  std::atomic<uint64_t> forget_errors{0};
  std::atomic<uint64_t> explain_calls{0};
  std::atomic<uint64_t> explain_errors{0};
};

// One loaded plugin instance. Thread-safe: Score, Explain, Annotate and
// Similarity may run concurrently, Observe too for a plugin that declares it;
// the other calls take the instance exclusively (plugin.h's threading rule).
class LoadedPlugin {
 public:
  // Loads path, validates the table and creates an instance. store may be
  // null (then the host's for_each_* services visit nothing).
  static std::unique_ptr<LoadedPlugin> Load(const PluginSpec& spec, Store* store,
                                            const std::string& data_dir, std::string* err);
  ~LoadedPlugin();

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  const std::string& path() const { return path_; }
  double weight() const { return weight_; }
  uint32_t abi_minor() const { return api_->abi_minor; }

  // Scores n candidates. On success every scores[i] is finite and in [0, 1]
  // (out-of-range values are clamped), or TAILOR_SCORE_ABSTAIN from a plugin
  // of ABI >= 1.1. On failure the scores are unspecified
  // and the message says what went wrong.
  Status Score(const tailor_request_view& req, const tailor_candidate* candidates, size_t n,
               float* scores, char* reasons, size_t reason_cap);
  // Reasons only: the same score call on the few candidates a reply shows or
  // traces, after a Score without reasons on all of them; the scores of this
  // call are discarded. Counted apart from Score (explain_calls).
  Status Explain(const tailor_request_view& req, const tailor_candidate* candidates, size_t n,
                 char* reasons, size_t reason_cap);
  Status Observe(const tailor_event_view& ev);
  Status Train();
  // Loads model_path into a fresh instance (or, when empty, trains it) while
  // this one keeps serving, then swaps it in (what a background start does);
  // the old instance is destroyed.
  Status PrepareAside(const std::string& model_path);
  Status Save(const std::string& path);
  // Loads path into a fresh instance and swaps it in (PrepareAside): the one
  // serving keeps scoring meanwhile; on failure it stays.
  Status LoadModel(const std::string& path);
  // ABI 1.1: the plugin's facts about the request, validated to be a JSON
  // object with at most the members "customer" and "context", each an object;
  // *facts is null when the plugin has nothing to say. Concurrent like Score.
  Status Annotate(const tailor_request_view& req, nlohmann::json* facts);
  // ABI 1.2: n x n item similarities into out (row-major), each finite and
  // clamped to [0, 1]. Concurrent like Score.
  Status Similarity(const char* const* item_ids, size_t n, float* out);
  // ABI 1.3, erasure: the instance drops the customer (so does one being
  // prepared aside, once swapped in), and the model file it serves from is
  // saved again without them. A plugin without forget keeps no per-customer
  // state by its contract: nothing to do.
  Status Forget(const std::string& customer_id);

  // Disabled after too many calls over its time budget in a row: score,
  // explain, annotate and similarity then fail at once without calling it
  // (observe still runs). A reload (Enable) gives it another chance.
  bool disabled() const { return disabled_.load(std::memory_order_acquire); }
  void Enable();

  // Optional functions: present when struct_size covers them and non-null.
  bool can_observe() const;
  bool can_train() const;
  bool can_save() const;
  bool can_load() const;
  bool can_annotate() const;
  bool can_similarity() const;
  bool can_forget() const;
  // ABI 1.4: observe runs beside score (a shared hold of the instance), the
  // plugin locking its own state (TAILOR_PLUGIN_CONCURRENT_OBSERVE).
  bool observes_concurrently() const;
  // The model file the plugin last loaded successfully ("" when none).
  std::string model_path() const;
  // True while a background start trains its model: score and explain
  // abstain, annotate has no facts, similarity fails, without calling the
  // untrained instance.
  bool warming() const { return warming_.load(std::memory_order_acquire); }
  void set_warming(bool w) { warming_.store(w, std::memory_order_release); }

  const PluginCounters& counters() const { return counters_; }

 private:
  LoadedPlugin() = default;
  // After a successful call a decision waits on: over the budget is an error
  // (counted in overruns), and too many in a row disable the plugin.
  Status CheckBudget(int64_t took_ns, std::atomic<uint64_t>& overruns, const char* call);
  // The error of a call refused while disabled.
  Status Disabled() const;
  // The checked score call behind Score and Explain.
  Status CallScore(const tailor_request_view& req, const tailor_candidate* candidates, size_t n,
                   float* scores, char* reasons, size_t reason_cap);
  void* handle_ = nullptr;
  const tailor_plugin_api* api_ = nullptr;
  tailor_plugin* instance_ = nullptr;
  struct HostContext;
  std::unique_ptr<HostContext> host_ctx_;
  std::unique_ptr<tailor_host_api> host_api_;
  std::string name_, version_, path_, data_dir_;
  double weight_ = 1.0;
  std::string model_path_;   // guarded by mu_
  std::string config_json_;  // what create() got, for PrepareAside's instance
  std::atomic<bool> warming_{false};
  std::atomic<bool> disabled_{false};
  std::atomic<int> overruns_in_a_row_{0};
  int64_t budget_ns_ = 0;
  int max_overruns_ = 0;
  mutable std::shared_mutex mu_;
  // Guarded by mu_: instances being prepared aside, and the customers
  // forgotten meanwhile (applied to the fresh instance before it serves).
  int preparing_ = 0;
  std::vector<std::string> forgotten_meanwhile_;
  PluginCounters counters_;
};

// All plugins of one engine. Load failures are kept, not fatal.
class PluginHost {
 public:
  struct Failure {
    std::string name;
    std::string error;
  };

  PluginHost(Store* store, std::string data_dir);
  ~PluginHost();

  // Loads each spec, then its active model registered in the store; a plugin
  // with train_on_start and no (loadable) model trains from the store. With
  // allow_background, a spec with train_in_background returns at once: the
  // plugin is warming (health says so) while one thread loads its model (a
  // plugin may precompute per customer at load) or trains it, such plugins in
  // turn, each swapped in when ready: neither blocks serving.
  void LoadAll(const std::vector<PluginSpec>& specs, bool allow_background = false);
  // Waits for the background training LoadAll started (shutdown).
  void WaitForTraining();
  // True while any plugin is warming (its model still training).
  bool warming() const;
  // Loads each plugin's active registered model when it differs from the one
  // it serves (after `tailor train`); a plugin whose load fails keeps its
  // current model. One line per plugin that changed or failed. Also enables
  // plugins disabled for overrunning their time budget.
  std::vector<std::string> ReloadModels();
  // Erasure: every plugin with per-customer state first serves its active
  // registered model (one trained since the last reload would bring the
  // customer back), forgets the customer (its model file saved again), and
  // its older, inactive model versions are unregistered and deleted
  // (counted in *retired). The errors, one per plugin and step.
  std::vector<std::string> Forget(const std::string& customer_id, int* retired = nullptr);

  const std::vector<std::unique_ptr<LoadedPlugin>>& plugins() const { return plugins_; }
  const std::vector<Failure>& failures() const { return failures_; }

 private:
  // Loads plugin's active model among models when it is not the one it
  // serves; true when it did. *note says what happened ("" when nothing).
  static bool ServeActiveModel(LoadedPlugin& plugin, const std::vector<ModelRecord>& models,
                               std::string* note);
  Store* store_;
  std::string data_dir_;
  std::vector<std::unique_ptr<LoadedPlugin>> plugins_;
  std::vector<Failure> failures_;
  std::thread trainer_;
};

}  // namespace tailor
