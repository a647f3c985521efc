// `tailor plugin check LIB.so`: what a plugin author runs before shipping.
// The contract tests' checks (tests/plugins/contract_test.cc) against any
// plugin, on a small world of its own in a temporary store, with a pass /
// fail table and exit 1 on any failure.
#include <dlfcn.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "commands.h"
#include "common/time.h"
#include "plugin_host/host.h"
#include "runtime.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

constexpr size_t kReasonCap = 128;
constexpr int64_t kDayMs = 86'400'000;

struct Check {
  std::string name;
  std::string result;  // PASS, FAIL, SKIP
  std::string detail;
};

// A small world: 7 items in 3 categories, 5 customers with 40 item events,
// offer events and a chat line.
void FillWorld(Store::Bulk& bulk, int64_t now) {
  for (int i = 0; i < 7; ++i) {
    Item it;
    it.id = "i" + std::to_string(i);
    it.title = "item " + std::to_string(i);
    it.category = "cat" + std::to_string(i % 3);
    it.price = 10 + i;
    (void)bulk.Item(it);
  }
  const char* types[] = {"view", "click", "add_to_cart", "purchase"};
  auto event = [&](std::string c, std::string type, std::string item, std::string offer,
                   int64_t ts) {
    Event e;
    e.customer_id = std::move(c);
    e.type = std::move(type);
    e.item_id = std::move(item);
    e.offer_id = std::move(offer);
    e.ts_ms = ts;
    return e;
  };
  for (int i = 0; i < 40; ++i)
    (void)bulk.Event(event("c" + std::to_string(i % 5), types[i % 4], "i" + std::to_string(i % 7),
                           "", now - (40 - i) * kDayMs / 4));
  (void)bulk.Event(event("c1", "offer_click", "", "o1", now - kDayMs));
  (void)bulk.Event(event("c2", "convert", "i1", "o2", now - kDayMs));
  Event chat = event("c4", "chat", "", "", now - kDayMs);
  chat.text = "do you have running shoes?";
  (void)bulk.Event(chat);
}

const std::vector<tailor_candidate>& Candidates() {
  static const std::vector<tailor_candidate> k = {
      {nullptr, "i0", nullptr},      {nullptr, "i3", nullptr},   {nullptr, "unknown", nullptr},
      {"o2", "i1", "cat1"},          {"o3", nullptr, "cat0"},    {"o1", nullptr, nullptr},
      {"unknown", nullptr, nullptr}, {nullptr, nullptr, nullptr}};
  return k;
}

struct Scores {
  Status status;
  std::vector<float> s;
  std::vector<char> reasons;
};

Scores ScoreAll(LoadedPlugin& p, const char* customer, int64_t now, bool reasons = true) {
  const auto& c = Candidates();
  tailor_request_view req{customer, customer ? 1 : 0, "web", "home", "{}", now, nullptr, 0};
  Scores out;
  out.s.assign(c.size(), -9.0f);
  out.reasons.assign(reasons ? c.size() * kReasonCap : 0, '\0');
  out.status = p.Score(req, c.data(), c.size(), out.s.data(),
                       reasons ? out.reasons.data() : nullptr, reasons ? kReasonCap : 0);
  return out;
}

std::string WellFormed(const Scores& r) {
  if (!r.status.ok()) return r.status.message();
  for (size_t i = 0; i < r.s.size(); ++i)
    if (!(r.s[i] == TAILOR_SCORE_ABSTAIN || (r.s[i] >= 0 && r.s[i] <= 1)))
      return "candidate " + std::to_string(i) + " scored " + std::to_string(r.s[i]);
  return "";
}

// The plugin's own name, read from its table.
std::string NameOf(const std::string& path, std::string* err) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *err = dlerror();
    return "";
  }
  auto entry = reinterpret_cast<tailor_plugin_entry_fn>(dlsym(h, TAILOR_PLUGIN_ENTRY_SYMBOL));
  const tailor_plugin_api* api = entry ? entry() : nullptr;
  std::string name = api && api->name ? api->name : "";
  if (name.empty()) *err = "no tailor_plugin_entry or no name";
  dlclose(h);
  return name;
}

class Checker {
 public:
  Checker(std::string path, std::string config)
      : path_(std::move(path)), config_(std::move(config)) {}

  int Run() {
    std::string err;
    const std::string name = NameOf(path_, &err);
    if (name.empty()) return Report({{"loads", "FAIL", err}});
    dir_ = std::filesystem::temp_directory_path() /
           ("tailor-plugin-check-" + std::to_string(now_ms()));
    std::filesystem::create_directories(dir_);
    Store::Options so;
    so.path = (dir_ / "world.db").string();
    so.synchronous_full = false;
    store_ = Store::Open(so, &err);
    if (!store_) return Report({{"store", "FAIL", err}});
    if (auto bulk = store_->BeginBulk(&err)) {
      FillWorld(*bulk, now_);
      (void)bulk->Commit();
    }
    spec_.name = name;
    spec_.path = path_;
    spec_.config_json = config_;
    spec_.budget_us = 0;  // timing is not the contract here
    auto p = Fresh(&err);
    add("loads", p ? "" : err,
        p ? name + " " + p->version() + ", ABI 1." + std::to_string(p->abi_minor()) : "");
    if (!p) return Report(checks_);
    Untrained(*p);
    if (p->can_train())
      Trained(*p);
    else
      skip("trains from the store", "no train");
    Observes(*p);
    if (p->can_save() && p->can_load())
      RoundTrip(*p);
    else
      skip("save / load round trip", "no save or load");
    Concurrent(*p);
    Optional(*p);
    std::filesystem::remove_all(dir_);
    return Report(checks_);
  }

 private:
  std::unique_ptr<LoadedPlugin> Fresh(std::string* err) {
    return LoadedPlugin::Load(spec_, store_.get(), dir_.string(), err);
  }
  void add(const std::string& name, const std::string& problem, const std::string& detail = "") {
    checks_.push_back(
        {name, problem.empty() ? "PASS" : "FAIL", problem.empty() ? detail : problem});
  }
  void skip(const std::string& name, const std::string& why) {
    checks_.push_back({name, "SKIP", why});
  }

  void Untrained(LoadedPlugin& p) {
    add("scores untrained: finite, in [0, 1] or abstain", WellFormed(ScoreAll(p, "c1", now_)));
    add("scores an anonymous request", WellFormed(ScoreAll(p, nullptr, now_)));
    tailor_request_view req{"c1", 1, "web", "home", "{}", now_, nullptr, 0};
    float none = 0;
    Status st = p.Score(req, Candidates().data(), 0, &none, nullptr, 0);
    add("handles no candidates", st.ok() ? "" : st.message());
  }
  void Trained(LoadedPlugin& p) {
    Status st = p.Train();
    add("trains from the store", st.ok() ? "" : st.message());
    const Scores a = ScoreAll(p, "c1", now_), b = ScoreAll(p, "c1", now_, false);
    std::string problem = WellFormed(a);
    if (problem.empty() && a.s != b.s) problem = "asking for reasons changed the scores";
    add("reasons change no score", problem);
    auto again = Fresh(&problem);
    if (again && again->Train().ok())
      add("training is repeatable",
          ScoreAll(*again, "c1", now_).s == a.s ? "" : "two trainings scored differently");
  }
  void Observes(LoadedPlugin& p) {
    if (!p.can_observe()) return skip("observe keeps scores well-formed", "no observe");
    std::string problem;
    int n = 0;
    store_->ForEachEvent(0, [&](const Event& e) {
      Event later = e;
      later.ts_ms += kDayMs;
      tailor_event_view v{later.customer_id.c_str(),
                          later.type.c_str(),
                          later.item_id.empty() ? nullptr : later.item_id.c_str(),
                          later.offer_id.empty() ? nullptr : later.offer_id.c_str(),
                          later.ts_ms,
                          later.value,
                          later.quantity,
                          later.text.empty() ? nullptr : later.text.c_str()};
      if (Status st = p.Observe(v); !st.ok() && problem.empty()) problem = st.message();
      ++n;
      return true;
    });
    if (problem.empty()) problem = WellFormed(ScoreAll(p, "c1", now_ + 2 * kDayMs));
    add("observe keeps scores well-formed", problem, std::to_string(n) + " events");
  }
  void RoundTrip(LoadedPlugin& p) {
    const std::string model = (dir_ / "m.model").string();
    Status st = p.Save(model);
    std::string problem = st.ok() ? "" : st.message();
    if (problem.empty()) {
      auto loaded = Fresh(&problem);
      if (loaded) {
        st = loaded->LoadModel(model);
        if (!st.ok())
          problem = st.message();
        else if (ScoreAll(*loaded, "c1", now_).s != ScoreAll(p, "c1", now_).s)
          problem = "the loaded model scores differently";
      }
    }
    add("save / load round trip", problem);
  }
  void Concurrent(LoadedPlugin& p) {
    const Scores expected = ScoreAll(p, "c2", now_);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < 100; ++i)
          if (ScoreAll(p, "c2", now_).s != expected.s) ++mismatches;
      });
    for (auto& t : threads) t.join();
    add("concurrent score calls agree",
        mismatches ? std::to_string(mismatches.load()) + " of 400 differ" : "", "4 threads x 100");
  }
  void Optional(LoadedPlugin& p) {
    if (p.can_annotate()) {
      nlohmann::json facts;
      tailor_request_view req{"c4", 1,       "chat", "chat", R"({"message":"running shoes"})",
                              now_, nullptr, 0};
      Status st = p.Annotate(req, &facts);
      add("annotate returns facts or nothing", st.ok() ? "" : st.message(),
          facts.is_null() ? "none" : facts.dump().substr(0, 60));
    } else {
      skip("annotate returns facts or nothing", "no annotate");
    }
    if (p.can_similarity()) {
      const char* ids[] = {"i0", "i1", "i2", "unknown", ""};
      std::vector<float> sim(25);
      Status st = p.Similarity(ids, 5, sim.data());
      std::string problem = st.ok() ? "" : st.message();
      for (size_t i = 0; problem.empty() && i < 5; ++i)
        for (size_t j = 0; j < 5; ++j)
          if (i != j && std::fabs(sim[i * 5 + j] - sim[j * 5 + i]) > 1e-5f)
            problem = "not symmetric";
      add("similarity in [0, 1], symmetric", problem);
    } else {
      skip("similarity in [0, 1], symmetric", "no similarity");
    }
    if (p.can_forget()) {
      Status st = p.Forget("c1");
      std::string problem = st.ok() ? WellFormed(ScoreAll(p, "c1", now_)) : st.message();
      add("forget drops a customer", problem);
    } else {
      skip("forget drops a customer", "no forget: the plugin must keep no per-customer state");
    }
  }

  int Report(const std::vector<Check>& checks) {
    int failed = 0;
    std::cout << "tailor plugin check " << path_ << "\n\n";
    for (const Check& c : checks) {
      std::printf("  %-4s  %-48s %s\n", c.result.c_str(), c.name.c_str(), c.detail.c_str());
      failed += c.result == "FAIL";
    }
    std::cout << "\n"
              << (failed ? std::to_string(failed) + " check(s) failed" : "all checks passed")
              << "\n";
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    return failed ? 1 : 0;
  }

  std::string path_, config_;
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  PluginSpec spec_;
  std::vector<Check> checks_;
  const int64_t now_ = now_ms();
};

}  // namespace

void RegisterPlugin(CLI::App& app) {
  CLI::App* plugin = app.add_subcommand("plugin", "Plugin author's tools");
  plugin->require_subcommand(1);
  auto lib = std::make_shared<std::string>();
  auto config = std::make_shared<std::string>("{}");
  CLI::App* check = plugin->add_subcommand(
      "check", "Run the plugin contract's checks against LIB.so and print a pass/fail table");
  check->add_option("lib", *lib, "the plugin's shared library")
      ->required()
      ->check(CLI::ExistingFile);
  check->add_option("--config", *config, "the plugin's config block as JSON")
      ->capture_default_str();
  check->callback([lib, config] {
    const int rc = Checker(std::filesystem::absolute(*lib).string(), *config).Run();
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tailor::cli
