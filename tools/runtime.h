// The engine stack (config, store, plugins, engine) opened in-process, for
// CLI commands that decide or train without a running tailord.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"
#include "decision/engine.h"
#include "metrics/metrics.h"
#include "plugin_host/host.h"
#include "store/store.h"

namespace tailor::cli {

struct Runtime {
  EngineConfig config;
  std::unique_ptr<Store> store;
  Metrics metrics;
  std::unique_ptr<PluginHost> plugins;
  std::unique_ptr<Engine> engine;

  // store_override / plugin_dir may be empty. Prints errors to stderr.
  static std::unique_ptr<Runtime> Open(const std::string& config_path,
                                       const std::string& store_override,
                                       const std::string& plugin_dir, bool load_plugins = true);
};

// Prints message to stderr and throws CLI::RuntimeError(code).
[[noreturn]] void Fail(const std::string& message, int code = 1);

}  // namespace tailor::cli
