#include "runtime.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "common/paths.h"

namespace tailor::cli {

void Fail(const std::string& message, int code) {
  std::cerr << "tailor: " << message << "\n";
  throw CLI::RuntimeError(code);
}

std::unique_ptr<Runtime> Runtime::Open(const std::string& config_path,
                                       const std::string& store_override,
                                       const std::string& plugin_dir, bool load_plugins) {
  auto rt = std::make_unique<Runtime>();
  std::vector<std::string> errors;
  auto cfg = LoadConfig(config_path, plugin_dir.empty() ? DefaultPluginDir() : plugin_dir, &errors);
  if (!cfg) {
    for (const auto& e : errors) std::cerr << e << "\n";
    Fail(std::to_string(errors.size()) + " config error(s)", 2);
  }
  rt->config = std::move(*cfg);
  if (!store_override.empty()) rt->config.store.path = store_override;
  if (!std::filesystem::exists(rt->config.store.path))
    Fail("store '" + rt->config.store.path +
         "' does not exist (create one with `tailor demo --store PATH` or `tailor import`)");
  std::string err;
  Store::Options so;
  so.path = rt->config.store.path;
  rt->store = Store::Open(so, &err);
  if (!rt->store) Fail(err);
  std::string data_dir = rt->config.store.path + ".models";
  std::filesystem::create_directories(data_dir);
  rt->plugins = std::make_unique<PluginHost>(rt->store.get(), data_dir);
  if (load_plugins) {
    // Training is what makes a quick command slow: say so, once.
    std::string untrained;
    const std::vector<ModelRecord> models = rt->store->ActiveModels();
    for (const PluginSpec& p : rt->config.plugins) {
      const bool registered = std::any_of(models.begin(), models.end(),
                                          [&](const ModelRecord& m) { return m.plugin == p.name; });
      if (p.train_on_start && !registered) untrained += (untrained.empty() ? "" : ", ") + p.name;
    }
    if (!untrained.empty())
      std::cerr << "training " << untrained << " from the store (no registered model; `tailor "
                << "train PLUGIN` saves one and makes this quick)\n";
    rt->plugins->LoadAll(rt->config.plugins);
  }
  rt->engine =
      std::make_unique<Engine>(rt->config, rt->store.get(), rt->plugins.get(), &rt->metrics);
  if (Status s = rt->engine->LoadCatalog(); !s.ok()) Fail(s.message());
  return rt;
}

}  // namespace tailor::cli
