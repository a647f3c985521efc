#include "plugin_host/host.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "common/time.h"
#include "store/store.h"

// The host context handed to a plugin as an opaque tailor_host*.
struct tailor_host {
  tailor::Store* store;  // may be null
  std::string plugin_name;
};

namespace tailor {
namespace {

constexpr size_t kErrCap = 512;

// Host callbacks run inside plugin code: nothing may unwind out of them.
void HostLog(tailor_host* host, tailor_log_level level, const char* msg) noexcept try {
  if (!host || !msg) return;
  std::string component = "plugin:" + host->plugin_name;
  switch (level) {
    case TAILOR_LOG_DEBUG:
      log::Debug(component, msg);
      break;
    case TAILOR_LOG_INFO:
      log::Info(component, msg);
      break;
    case TAILOR_LOG_WARN:
      log::Warn(component, msg);
      break;
    default:
      log::Error(component, msg);
      break;
  }
} catch (...) {
}

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

int64_t HostForEachEvent(tailor_host* host, int64_t since_ms, tailor_event_cb cb,
                         void* user) noexcept try {
  if (!host || !cb) return -1;
  if (!host->store) return 0;
  // Models train only on customers who allow it (README § Consent).
  return host->store->ForEachEvent(
      since_ms,
      [&](const Event& e) {
        tailor_event_view v = ViewOf(e);
        cb(user, &v);
        return true;
      },
      /*learnable_only=*/true);
} catch (...) {
  return -1;
}

int64_t HostForEachItem(tailor_host* host, tailor_item_cb cb, void* user) noexcept try {
  if (!host || !cb) return -1;
  if (!host->store) return 0;
  int64_t n = 0;
  for (const Item& it : host->store->LoadItems()) {
    tailor_item_view v{it.id.c_str(),
                       NullIfEmpty(it.title),
                       NullIfEmpty(it.description),
                       NullIfEmpty(it.category),
                       NullIfEmpty(it.brand),
                       it.price,
                       it.attributes_json.c_str()};
    cb(user, &v);
    ++n;
  }
  return n;
} catch (...) {
  return -1;
}

std::string ErrText(const char* buf, const char* fallback) {
  return buf[0] ? std::string(buf) : std::string(fallback);
}

}  // namespace

struct LoadedPlugin::HostContext : tailor_host {};

// A field is readable only when the plugin's struct_size covers it.
#define TAILOR_HAS_FIELD(api, field)                                                  \
  ((api)->struct_size >= offsetof(tailor_plugin_api, field) + sizeof((api)->field) && \
   (api)->field != nullptr)

bool LoadedPlugin::can_observe() const { return TAILOR_HAS_FIELD(api_, observe); }
bool LoadedPlugin::can_forget() const { return TAILOR_HAS_FIELD(api_, forget); }
bool LoadedPlugin::can_train() const { return TAILOR_HAS_FIELD(api_, train); }
bool LoadedPlugin::can_save() const { return TAILOR_HAS_FIELD(api_, save); }
bool LoadedPlugin::can_load() const { return TAILOR_HAS_FIELD(api_, load); }
bool LoadedPlugin::can_annotate() const { return TAILOR_HAS_FIELD(api_, annotate); }
bool LoadedPlugin::can_similarity() const { return TAILOR_HAS_FIELD(api_, similarity); }
bool LoadedPlugin::observes_concurrently() const {
  return api_->struct_size >= offsetof(tailor_plugin_api, flags) + sizeof(api_->flags) &&
         (api_->flags & TAILOR_PLUGIN_CONCURRENT_OBSERVE) != 0;
}

std::string LoadedPlugin::model_path() const {
  std::shared_lock lock(mu_);
  return model_path_;
}

std::unique_ptr<LoadedPlugin> LoadedPlugin::Load(const PluginSpec& spec, Store* store,
                                                 const std::string& data_dir, std::string* err) {
  auto fail = [&](std::string msg) -> std::unique_ptr<LoadedPlugin> {
    if (err) *err = "plugin '" + spec.name + "' (" + spec.path + "): " + msg;
    return nullptr;
  };
  std::unique_ptr<LoadedPlugin> p(new LoadedPlugin());
  p->path_ = spec.path;
  p->weight_ = spec.weight;
  p->budget_ns_ = spec.budget_us * 1000;
  p->max_overruns_ = std::max(1, spec.max_overruns);
  // RTLD_NOW: a missing symbol fails here, at load, not in a request.
  p->handle_ = dlopen(spec.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!p->handle_) {
    const char* e = dlerror();
    return fail(std::string("cannot load: ") + (e ? e : "unknown dlopen error"));
  }
  dlerror();
  void* sym = dlsym(p->handle_, TAILOR_PLUGIN_ENTRY_SYMBOL);
  if (!sym) return fail("does not export " TAILOR_PLUGIN_ENTRY_SYMBOL "()");
  auto entry = reinterpret_cast<tailor_plugin_entry_fn>(sym);
  const tailor_plugin_api* api = entry();
  if (!api) return fail(TAILOR_PLUGIN_ENTRY_SYMBOL "() returned NULL");
  if (api->abi_major != TAILOR_PLUGIN_ABI_MAJOR) {
    return fail("ABI major version mismatch: plugin was built for ABI " +
                std::to_string(api->abi_major) + "." + std::to_string(api->abi_minor) +
                ", this host implements ABI " + std::to_string(TAILOR_PLUGIN_ABI_MAJOR) + "." +
                std::to_string(TAILOR_PLUGIN_ABI_MINOR));
  }
  if (api->struct_size < TAILOR_PLUGIN_API_MIN_SIZE_V1) {
    return fail("plugin table too small: struct_size " + std::to_string(api->struct_size) + " < " +
                std::to_string(TAILOR_PLUGIN_API_MIN_SIZE_V1) + " bytes required by ABI 1");
  }
  if (!api->name || !api->version) return fail("plugin table has no name or version");
  if (!api->create || !api->destroy || !api->score)
    return fail("plugin table lacks a required function (create, destroy or score)");
  if (!spec.name.empty() && spec.name != api->name)
    return fail(std::string("configured as '") + spec.name + "' but the library calls itself '" +
                api->name + "'");
  p->api_ = api;
  p->name_ = api->name;
  p->version_ = api->version;

  p->host_ctx_ = std::make_unique<HostContext>();
  p->host_ctx_->store = store;
  p->host_ctx_->plugin_name = p->name_;
  p->host_api_ = std::make_unique<tailor_host_api>();
  *p->host_api_ = tailor_host_api{sizeof(tailor_host_api), p->host_ctx_.get(), &HostLog,
                                  &HostForEachEvent,       &HostForEachItem,   nullptr};
  p->data_dir_ = data_dir.empty() ? "." : data_dir;
  p->host_api_->data_dir = p->data_dir_.c_str();

  char ebuf[kErrCap] = {0};
  tailor_plugin* inst = nullptr;
  tailor_status st = api->create(spec.config_json.empty() ? "{}" : spec.config_json.c_str(),
                                 p->host_api_.get(), &inst, ebuf, sizeof ebuf);
  ebuf[kErrCap - 1] = '\0';
  if (st != TAILOR_OK || !inst) {
    // The contract: a failed create leaves nothing to destroy.
    return fail("create failed: " + ErrText(ebuf, "no message"));
  }
  p->instance_ = inst;
  p->config_json_ = spec.config_json.empty() ? "{}" : spec.config_json;
  log::Info("plugins", "loaded " + p->name_ + " " + p->version_ + " (ABI " +
                           std::to_string(api->abi_major) + "." + std::to_string(api->abi_minor) +
                           ") from " + spec.path);
  return p;
}

LoadedPlugin::~LoadedPlugin() {
  if (api_ && instance_) {
    std::unique_lock lock(mu_);
    api_->destroy(instance_);
  }
  if (handle_) dlclose(handle_);
}

Status LoadedPlugin::Score(const tailor_request_view& req, const tailor_candidate* candidates,
                           size_t n, float* scores, char* reasons, size_t reason_cap) {
  if (warming()) {
    std::fill(scores, scores + n, TAILOR_SCORE_ABSTAIN);
    if (reasons && reason_cap) std::memset(reasons, 0, n * reason_cap);
    return Status::Ok();
  }
  if (disabled()) {
    counters_.score_skipped.fetch_add(1, std::memory_order_relaxed);
    return Disabled();
  }
  counters_.score_calls.fetch_add(1, std::memory_order_relaxed);
  int64_t t0 = mono_ns();
  Status st = CallScore(req, candidates, n, scores, reasons, reason_cap);
  const int64_t took = mono_ns() - t0;
  counters_.score_ns.fetch_add(static_cast<uint64_t>(took), std::memory_order_relaxed);
  if (!st.ok()) counters_.score_errors.fetch_add(1, std::memory_order_relaxed);
  if (st.ok()) st = CheckBudget(took, counters_.score_overruns, "score");
  return st;
}

Status LoadedPlugin::Disabled() const {
  return Status::Error("disabled after " + std::to_string(max_overruns_) +
                       " calls in a row over its time budget; reload to retry");
}

Status LoadedPlugin::CheckBudget(int64_t took_ns, std::atomic<uint64_t>& overruns,
                                 const char* call) {
  if (budget_ns_ <= 0) return Status::Ok();
  if (took_ns <= budget_ns_) {
    overruns_in_a_row_.store(0, std::memory_order_relaxed);
    return Status::Ok();
  }
  overruns.fetch_add(1, std::memory_order_relaxed);
  if (overruns_in_a_row_.fetch_add(1) + 1 >= max_overruns_ &&
      !disabled_.exchange(true, std::memory_order_acq_rel))
    log::Error("plugin:" + name_, "disabled until reload: " + std::to_string(max_overruns_) +
                                      " calls in a row over its " +
                                      std::to_string(budget_ns_ / 1000) + " µs budget (the last " +
                                      call + ")");
  return Status::Error(std::string(call) +
                       " over its time budget: " + std::to_string(took_ns / 1000) + " µs of " +
                       std::to_string(budget_ns_ / 1000));
}

void LoadedPlugin::Enable() {
  overruns_in_a_row_.store(0);
  disabled_.store(false, std::memory_order_release);
}

Status LoadedPlugin::Explain(const tailor_request_view& req, const tailor_candidate* candidates,
                             size_t n, char* reasons, size_t reason_cap) {
  if (warming()) {
    if (reasons && reason_cap) std::memset(reasons, 0, n * reason_cap);
    return Status::Ok();
  }
  if (disabled()) return Disabled();
  counters_.explain_calls.fetch_add(1, std::memory_order_relaxed);
  thread_local std::vector<float> discarded;
  discarded.resize(n);
  const int64_t t0 = mono_ns();
  Status st = CallScore(req, candidates, n, discarded.data(), reasons, reason_cap);
  if (st.ok()) st = CheckBudget(mono_ns() - t0, counters_.explain_overruns, "explain");
  if (!st.ok()) {
    counters_.explain_errors.fetch_add(1, std::memory_order_relaxed);
    if (reasons && reason_cap) std::memset(reasons, 0, n * reason_cap);
  }
  return st;
}

Status LoadedPlugin::CallScore(const tailor_request_view& req, const tailor_candidate* candidates,
                               size_t n, float* scores, char* reasons, size_t reason_cap) {
  if (reasons && reason_cap) std::memset(reasons, 0, n * reason_cap);
  char ebuf[kErrCap] = {0};
  tailor_status st;
  {
    std::shared_lock lock(mu_);
    st =
        api_->score(instance_, &req, candidates, n, scores, reasons, reason_cap, ebuf, sizeof ebuf);
  }
  ebuf[kErrCap - 1] = '\0';
  if (st != TAILOR_OK) return Status::Error("score failed: " + ErrText(ebuf, "no message"));
  const bool may_abstain = api_->abi_minor >= 1;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i]))
      return Status::Error("score returned a non-finite value for candidate " + std::to_string(i));
    if (may_abstain && scores[i] == TAILOR_SCORE_ABSTAIN) continue;
    scores[i] = std::clamp(scores[i], 0.0f, 1.0f);
  }
  if (reasons && reason_cap) {
    for (size_t i = 0; i < n; ++i) reasons[i * reason_cap + reason_cap - 1] = '\0';
  }
  return Status::Ok();
}

Status LoadedPlugin::Observe(const tailor_event_view& ev) {
  if (!can_observe()) return Status::Ok();
  counters_.observe_calls.fetch_add(1, std::memory_order_relaxed);
  char ebuf[kErrCap] = {0};
  tailor_status st;
  const int64_t t0 = mono_ns();
  if (observes_concurrently()) {
    std::shared_lock lock(mu_);  // the plugin locks its own state
    st = api_->observe(instance_, &ev, ebuf, sizeof ebuf);
  } else {
    std::unique_lock lock(mu_);
    st = api_->observe(instance_, &ev, ebuf, sizeof ebuf);
  }
  const int64_t took = mono_ns() - t0;
  counters_.observe_ns.fetch_add(static_cast<uint64_t>(took), std::memory_order_relaxed);
  // The event is stored and the plugin has learned from it: a slow observe
  // is counted, not undone, and disables nothing.
  if (budget_ns_ > 0 && took > budget_ns_)
    counters_.observe_overruns.fetch_add(1, std::memory_order_relaxed);
  ebuf[kErrCap - 1] = '\0';
  if (st != TAILOR_OK) {
    counters_.observe_errors.fetch_add(1, std::memory_order_relaxed);
    return Status::Error("observe failed: " + ErrText(ebuf, "no message"));
  }
  return Status::Ok();
}

Status LoadedPlugin::PrepareAside(const std::string& model_path) {
  if (model_path.empty() ? !can_train() : !can_load())
    return Status::Error(name_ + " does not implement " + (model_path.empty() ? "train" : "load"));
  char ebuf[kErrCap] = {0};
  tailor_plugin* fresh = nullptr;
  tailor_status st = api_->create(config_json_.c_str(), host_api_.get(), &fresh, ebuf, sizeof ebuf);
  ebuf[kErrCap - 1] = '\0';
  if (st != TAILOR_OK || !fresh)
    return Status::Error("create failed: " + ErrText(ebuf, "no message"));
  {
    std::unique_lock lock(mu_);
    ++preparing_;
  }
  // The fresh instance is ours alone: loading or training needs no lock, and
  // the one serving is never blocked by it.
  st = model_path.empty() ? api_->train(fresh, ebuf, sizeof ebuf)
                          : api_->load(fresh, model_path.c_str(), ebuf, sizeof ebuf);
  ebuf[kErrCap - 1] = '\0';
  tailor_plugin* old = nullptr;
  {
    // One hold of the lock from the replay to the swap, so no erasure falls
    // between them.
    std::unique_lock lock(mu_);
    // It may have read a customer erased while it trained or loaded.
    if (st == TAILOR_OK && can_forget())
      for (const std::string& id : forgotten_meanwhile_) {
        char fbuf[kErrCap] = {0};
        if (api_->forget(fresh, id.c_str(), fbuf, sizeof fbuf) != TAILOR_OK) st = TAILOR_ERROR;
      }
    if (--preparing_ == 0) forgotten_meanwhile_.clear();
    if (st == TAILOR_OK) {
      old = instance_;
      instance_ = fresh;
      if (!model_path.empty()) model_path_ = model_path;
    }
  }
  if (st != TAILOR_OK) {
    api_->destroy(fresh);
    return Status::Error((model_path.empty() ? "train failed: " : "load failed: ") +
                         ErrText(ebuf, "no message"));
  }
  api_->destroy(old);  // swapped out under the lock: no call can reach it now
  return Status::Ok();
}

Status LoadedPlugin::Forget(const std::string& customer_id) {
  if (!can_forget()) return Status::Ok();
  counters_.forget_calls.fetch_add(1, std::memory_order_relaxed);
  char ebuf[kErrCap] = {0};
  tailor_status st;
  std::string model;
  {
    std::unique_lock lock(mu_);
    st = api_->forget(instance_, customer_id.c_str(), ebuf, sizeof ebuf);
    if (preparing_ > 0) forgotten_meanwhile_.push_back(customer_id);
    model = model_path_;
  }
  ebuf[kErrCap - 1] = '\0';
  if (st != TAILOR_OK) {
    counters_.forget_errors.fetch_add(1, std::memory_order_relaxed);
    return Status::Error("forget failed: " + ErrText(ebuf, "no message"));
  }
  if (model.empty() || !can_save()) return Status::Ok();
  // The served model file still holds the customer: replace it, atomically.
  const std::string tmp = model + ".forget.tmp";
  if (Status s = Save(tmp); !s.ok()) {
    std::remove(tmp.c_str());
    counters_.forget_errors.fetch_add(1, std::memory_order_relaxed);
    return s;
  }
  if (std::rename(tmp.c_str(), model.c_str()) != 0) {
    counters_.forget_errors.fetch_add(1, std::memory_order_relaxed);
    return Status::Error("forget: cannot replace " + model);
  }
  return Status::Ok();
}

Status LoadedPlugin::Train() {
  if (!can_train()) return Status::Error(name_ + " does not implement train");
  char ebuf[kErrCap] = {0};
  std::unique_lock lock(mu_);
  tailor_status st = api_->train(instance_, ebuf, sizeof ebuf);
  ebuf[kErrCap - 1] = '\0';
  return st == TAILOR_OK ? Status::Ok()
                         : Status::Error("train failed: " + ErrText(ebuf, "no message"));
}

Status LoadedPlugin::Save(const std::string& path) {
  if (!can_save()) return Status::Error(name_ + " does not implement save");
  char ebuf[kErrCap] = {0};
  std::unique_lock lock(mu_);
  tailor_status st = api_->save(instance_, path.c_str(), ebuf, sizeof ebuf);
  ebuf[kErrCap - 1] = '\0';
  return st == TAILOR_OK ? Status::Ok()
                         : Status::Error("save failed: " + ErrText(ebuf, "no message"));
}

Status LoadedPlugin::LoadModel(const std::string& path) {
  if (!can_load()) return Status::Error(name_ + " does not implement load");
  if (path.empty()) return Status::Error("load failed: no model path");
  // Into a fresh instance while this one serves: a load may take seconds
  // (dna scores every customer), and scoring must not wait for it.
  return PrepareAside(path);
}

Status LoadedPlugin::Annotate(const tailor_request_view& req, nlohmann::json* facts) {
  *facts = nullptr;
  if (!can_annotate() || warming()) return Status::Ok();
  if (disabled()) return Disabled();
  counters_.annotate_calls.fetch_add(1, std::memory_order_relaxed);
  // Facts are a few hundred bytes; 8 KiB leaves room without a heap allocation.
  constexpr size_t kFactsCap = 8192;
  thread_local char out[kFactsCap];
  out[0] = '\0';
  char ebuf[kErrCap] = {0};
  tailor_status st;
  const int64_t t0 = mono_ns();
  {
    std::shared_lock lock(mu_);
    st = api_->annotate(instance_, &req, out, kFactsCap, ebuf, sizeof ebuf);
  }
  const int64_t took = mono_ns() - t0;
  ebuf[kErrCap - 1] = '\0';
  out[kFactsCap - 1] = '\0';
  auto fail = [&](std::string msg) {
    counters_.annotate_errors.fetch_add(1, std::memory_order_relaxed);
    return Status::Error(std::move(msg));
  };
  if (st != TAILOR_OK) return fail("annotate failed: " + ErrText(ebuf, "no message"));
  if (Status over = CheckBudget(took, counters_.annotate_overruns, "annotate"); !over.ok())
    return fail(over.message());
  if (out[0] == '\0') return Status::Ok();
  nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return fail("annotate returned no JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "customer" && it.key() != "context")
      return fail("annotate returned member '" + it.key() + "' (allowed: customer, context)");
    if (!it.value().is_object()) return fail("annotate: '" + it.key() + "' is not an object");
  }
  *facts = std::move(j);
  return Status::Ok();
}

Status LoadedPlugin::Similarity(const char* const* item_ids, size_t n, float* out) {
  if (!can_similarity()) return Status::Error(name_ + " does not implement similarity");
  if (warming()) return Status::Error(name_ + " is warming: its model trains in the background");
  if (disabled()) return Disabled();
  counters_.similarity_calls.fetch_add(1, std::memory_order_relaxed);
  std::fill(out, out + n * n, 0.0f);
  char ebuf[kErrCap] = {0};
  tailor_status st;
  const int64_t t0 = mono_ns();
  {
    std::shared_lock lock(mu_);
    st = api_->similarity(instance_, item_ids, n, out, ebuf, sizeof ebuf);
  }
  const int64_t took = mono_ns() - t0;
  ebuf[kErrCap - 1] = '\0';
  auto fail = [&](std::string msg) {
    counters_.similarity_errors.fetch_add(1, std::memory_order_relaxed);
    return Status::Error(std::move(msg));
  };
  if (st != TAILOR_OK) return fail("similarity failed: " + ErrText(ebuf, "no message"));
  if (Status over = CheckBudget(took, counters_.similarity_overruns, "similarity"); !over.ok())
    return fail(over.message());
  for (size_t i = 0; i < n * n; ++i) {
    if (!std::isfinite(out[i]))
      return fail("similarity returned a non-finite value for pair " + std::to_string(i / n) +
                  ", " + std::to_string(i % n));
    out[i] = std::clamp(out[i], 0.0f, 1.0f);
  }
  return Status::Ok();
}

PluginHost::PluginHost(Store* store, std::string data_dir)
    : store_(store), data_dir_(std::move(data_dir)) {}

PluginHost::~PluginHost() { WaitForTraining(); }

namespace {

// What a warming plugin does in the background: load its registered model
// (model non-empty), falling back to training when that fails and it may.
struct Warming {
  LoadedPlugin* plugin;
  std::string model;
  bool may_train;
};

void Warm(const Warming& w) {
  LoadedPlugin* p = w.plugin;
  const int64_t t0 = mono_ns();
  const auto ms = [&] { return std::to_string((mono_ns() - t0) / 1000000) + " ms"; };
  Status s = Status::Error("");
  if (!w.model.empty()) {
    s = p->PrepareAside(w.model);
    if (s.ok())
      log::Info("plugins", p->name() + ": loaded model " + w.model + " in the background in " +
                               ms() + "; serving it");
    else
      log::Warn("plugins", p->name() + ": " + s.message() + (w.may_train ? "; retraining" : ""));
  }
  if (!s.ok() && w.may_train) {
    s = p->PrepareAside("");
    // A failed training leaves the untrained instance serving, as a blocking
    // start would; say so loudly.
    if (s.ok())
      log::Info("plugins", p->name() + ": trained in the background in " + ms() + "; serving it");
    else
      log::Warn("plugins", p->name() + ": " + s.message());
  }
  p->set_warming(false);
}

}  // namespace

void PluginHost::LoadAll(const std::vector<PluginSpec>& specs, bool allow_background) {
  std::vector<Warming> background;
  std::vector<ModelRecord> models;
  if (store_) models = store_->ActiveModels();
  for (const PluginSpec& spec : specs) {
    std::string err;
    auto plugin = LoadedPlugin::Load(spec, store_, data_dir_, &err);
    if (!plugin) {
      log::Error("plugins", err + " — serving without it");
      failures_.push_back({spec.name, err});
      continue;
    }
    // The active registered model when there is one; else, with
    // train_on_start, a model trained from the store now.
    const ModelRecord* model = nullptr;
    for (const ModelRecord& m : models)
      if (m.plugin == plugin->name()) model = &m;
    const bool may_train = spec.train_on_start && plugin->can_train();
    const bool loadable = model && plugin->can_load();
    if (allow_background && spec.train_in_background && (loadable || may_train)) {
      // Loading a model may cost as much as training (a plugin may score
      // every customer at load): both happen aside while tailord serves.
      plugin->set_warming(true);
      background.push_back({plugin.get(), loadable ? model->path : std::string(), may_train});
      log::Info("plugins", plugin->name() +
                               ": warming: " + (loadable ? "loading its model" : "training") +
                               " in the background, serving without its opinion until then");
      plugins_.push_back(std::move(plugin));
      continue;
    }
    Status s = Status::Ok();
    if (loadable) {
      s = plugin->LoadModel(model->path);
      if (s.ok())
        log::Info("plugins", plugin->name() + ": loaded model " + model->path);
      else
        log::Warn("plugins", plugin->name() + ": " + s.message() +
                                 (spec.train_on_start ? "; retraining" : ""));
    }
    if (may_train && (!loadable || !s.ok())) {
      int64_t t0 = mono_ns();
      s = plugin->Train();
      if (s.ok())
        log::Info("plugins", plugin->name() + ": trained from the store in " +
                                 std::to_string((mono_ns() - t0) / 1000000) + " ms");
    }
    // Serving an untrained model is still better than none; say so loudly.
    if (!s.ok()) log::Warn("plugins", plugin->name() + ": " + s.message());
    plugins_.push_back(std::move(plugin));
  }
  if (background.empty()) return;
  trainer_ = std::thread([background] {
    for (const Warming& w : background) Warm(w);
  });
}

bool PluginHost::warming() const {
  for (const auto& p : plugins_)
    if (p->warming()) return true;
  return false;
}

void PluginHost::WaitForTraining() {
  if (trainer_.joinable()) trainer_.join();
}

std::vector<std::string> PluginHost::Forget(const std::string& customer_id, int* retired) {
  std::vector<std::string> errors;
  std::vector<ModelRecord> models;
  if (store_) models = store_->ActiveModels();
  for (auto& p : plugins_) {
    if (!p->can_forget()) continue;  // by its contract, no per-customer state
    // A model trained since the last reload would bring the customer back
    // with the next one: it serves now, so that it forgets too.
    std::string note;
    if (!ServeActiveModel(*p, models, &note) && !note.empty())
      errors.push_back(p->name() + ": " + note);
    if (Status s = p->Forget(customer_id); !s.ok()) {
      errors.push_back(p->name() + ": " + s.message());
      continue;
    }
    if (!store_) continue;
    // Older versions hold the customer too, and nothing serves them again.
    std::vector<std::string> paths;
    if (Status s = store_->RetireInactiveModels(p->name(), p->model_path(), &paths); !s.ok()) {
      errors.push_back(p->name() + ": older models not retired: " + s.message());
      continue;
    }
    for (const std::string& path : paths) {
      std::error_code ec;
      std::filesystem::remove(path, ec);
      if (ec)
        errors.push_back(p->name() + ": cannot delete older model " + path + ": " + ec.message());
      else if (retired)
        ++*retired;
    }
  }
  return errors;
}

bool PluginHost::ServeActiveModel(LoadedPlugin& plugin, const std::vector<ModelRecord>& models,
                                  std::string* note) {
  if (!plugin.can_load()) return false;
  const ModelRecord* model = nullptr;
  for (const ModelRecord& m : models)
    if (m.plugin == plugin.name()) model = &m;
  if (!model || model->path == plugin.model_path()) return false;
  if (Status s = plugin.LoadModel(model->path); !s.ok()) {
    *note = s.message() + "; the previous model keeps serving";
    return false;
  }
  *note = "loaded model " + model->path;
  return true;
}

std::vector<std::string> PluginHost::ReloadModels() {
  for (auto& p : plugins_)
    if (p->disabled()) {
      p->Enable();
      log::Info("plugin:" + p->name(), "enabled again by the reload");
    }
  std::vector<std::string> notes;
  if (!store_) return notes;
  std::vector<ModelRecord> models = store_->ActiveModels();
  for (const auto& plugin : plugins_) {
    std::string note;
    const bool loaded = ServeActiveModel(*plugin, models, &note);
    if (note.empty()) continue;
    notes.push_back(plugin->name() + ": " + note);
    if (loaded)
      log::Info("plugins", notes.back());
    else
      log::Warn("plugins", notes.back());
  }
  return notes;
}

}  // namespace tailor
