// `tailor train PLUGIN`: rebuild a plugin's model from the store, save it as a
// versioned file and register it as the active model (tailord loads it at start).
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "common/time.h"
#include "progress.h"
#include "runtime.h"

namespace tailor::cli {
namespace {

struct TrainArgs {
  std::string plugin, config = "config/tailor.yaml", store, plugin_dir, data, embeddings;
};

void RunTrain(const TrainArgs& a) {
  auto rt = Runtime::Open(a.config, a.store, a.plugin_dir, /*load_plugins=*/false);
  const PluginSpec* spec = nullptr;
  for (const auto& p : rt->config.plugins)
    if (p.name == a.plugin) spec = &p;
  if (!spec) Fail("plugin '" + a.plugin + "' is not listed in " + a.config);
  PluginSpec s = *spec;
  s.train_on_start = false;
  if (!a.data.empty() || !a.embeddings.empty()) {
    // Training data outside the store (e.g. labelled chat lines) reaches the
    // plugin as config key "data", word vectors as "embeddings".
    nlohmann::json cfg = nlohmann::json::parse(s.config_json, nullptr, false);
    if (!cfg.is_object()) cfg = nlohmann::json::object();
    if (!a.data.empty()) cfg["data"] = std::filesystem::absolute(a.data).string();
    if (!a.embeddings.empty()) cfg["embeddings"] = std::filesystem::absolute(a.embeddings).string();
    s.config_json = cfg.dump();
  }
  std::string data_dir = rt->config.store.path + ".models", err;
  auto plugin = LoadedPlugin::Load(s, rt->store.get(), data_dir, &err);
  if (!plugin) Fail(err);
  if (!plugin->can_train()) Fail(a.plugin + " has no train step");
  std::cerr << "training " << a.plugin << " from " << rt->config.store.path << " ("
            << rt->store->Count("events") << " events)...\n";
  int64_t t0 = mono_ns();
  // The plugin reports its stages through the host log; meanwhile a ticker
  // shows that it is alive (training has no total the host could know).
  Status train_status;
  {
    std::atomic<bool> finished{false};
    std::thread worker([&] {
      train_status = plugin->Train();
      finished = true;
    });
    Progress ticker("train " + a.plugin);
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ticker.Update((mono_ns() - t0) / 1'000'000'000, 0, "s elapsed");
    }
    worker.join();
    ticker.Done("");
  }
  if (!train_status.ok()) Fail(train_status.message());
  double secs = static_cast<double>(mono_ns() - t0) / 1e9;
  ModelRecord m;
  m.plugin = a.plugin;
  m.created_ms = now_ms();
  m.path = data_dir + "/" + a.plugin + "-" + std::to_string(m.created_ms) + ".model";
  m.active = true;
  if (plugin->can_save()) {
    if (Status st = plugin->Save(m.path); !st.ok()) Fail(st.message());
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(m.path, ec);
    m.metrics_json = nlohmann::json{
        {"train_seconds", secs},
        {"events", rt->store->Count("events")},
        {"file_bytes",
         ec ? 0 : bytes}}.dump();
    int64_t id = 0;
    if (Status st = rt->store->RegisterModel(m, &id); !st.ok()) Fail(st.message());
    char size[32];
    std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(ec ? 0 : bytes) / 1e6);
    std::cout << "trained " << a.plugin << " in " << secs << " s; model " << id << " (" << size
              << ") saved to " << m.path << " and marked active\n";
  } else {
    std::cout << "trained " << a.plugin << " in " << secs
              << " s (the plugin cannot save; tailord retrains at start)\n";
  }
}

}  // namespace

void RegisterTrain(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  CLI::App* t = app.add_subcommand("train", "Train a plugin's model from the store");
  t->add_option("plugin", a->plugin, "plugin name as listed in the config")->required();
  t->add_option("-c,--config", a->config, "engine config")->capture_default_str();
  t->add_option("--store", a->store, "store path (overrides the config)");
  t->add_option("--plugin-dir", a->plugin_dir, "plugin directory");
  t->add_option("--data", a->data, "training data file, passed to the plugin as config \"data\"")
      ->check(CLI::ExistingFile);
  t->add_option("--embeddings", a->embeddings,
                "word vectors (tools/fetch_embeddings.py), passed to the plugin as config "
                "\"embeddings\" (the intent plugin; the trained model keeps what it needs)")
      ->check(CLI::ExistingFile);
  t->callback([a] { RunTrain(*a); });
}

}  // namespace tailor::cli
