// tailord: the Tailor decision service.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/log.h"
#include "common/paths.h"
#include "common/version.h"
#include "config/config.h"
#include "decision/engine.h"
#include "metrics/metrics.h"
#include "metrics/prometheus.h"
#include "plugin_host/host.h"
#include "service/http.h"
#include "service/server.h"
#include "store/store.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void OnSignal(int sig) {
  if (sig == SIGHUP)
    g_reload.store(true);
  else
    g_stop.store(true);
}

// Customer ids in logs: hashed with the configured key (or a random one).
tailor::Status ApplyLogPrivacy(const tailor::SecurityConfig& sec) {
  tailor::log::SetPlainCustomerIds(sec.log_plain_customer_ids);
  if (sec.log_key_file.empty()) return tailor::Status::Ok();
  std::ifstream in(sec.log_key_file, std::ios::binary);
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof())
    return tailor::Status::Error("security.log_key_file: cannot read " + sec.log_key_file);
  if (key.size() < 16)
    return tailor::Status::Error("security.log_key_file: " + sec.log_key_file +
                                 " holds fewer than 16 bytes");
  tailor::log::SetPseudonymKey(key);
  return tailor::Status::Ok();
}

// /readyz: why this tailord should not get traffic yet; empty when it should.
std::vector<std::string> NotReady(bool serving, const tailor::PluginHost& host,
                                  tailor::Store& store) {
  std::vector<std::string> why;
  if (!serving) why.push_back("not serving");
  for (const auto& f : host.failures()) why.push_back("plugin " + f.name + " failed: " + f.error);
  for (const auto& p : host.plugins())
    if (p->warming()) why.push_back("plugin " + p->name() + " warming (its model trains)");
  if (!store.writable()) why.push_back("store not writable");
  if (const tailor::Store::WriterState w = store.Writer(); w.failing)
    why.push_back("store writes failing: " + w.last_error);
  return why;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tailord: the Tailor real-time decision service"};
  app.set_version_flag("--version", tailor::VersionLine("tailord"));
  std::string config_path = "config/tailor.yaml";
  std::string store, requests, events, outbound, plugin_dir, ready_file, http, log_level = "info",
                                                                               log_format = "text";
  bool ready_after_training = false;
  int workers = 0;
  app.add_option("-c,--config", config_path, "engine config (tailor.yaml)")->capture_default_str();
  app.add_option("--store", store, "SQLite store path (overrides store.path)");
  app.add_option("--requests", requests, "ROUTER endpoint, e.g. tcp://127.0.0.1:*");
  app.add_option("--events", events, "PULL endpoint for events");
  app.add_option("--outbound", outbound, "PUB endpoint for outbound offers");
  app.add_option("--http", http,
                 "host:port of the read-only HTTP listener (/metrics, /healthz, /readyz); "
                 "port 0 picks one; overrides service.http");
  app.add_option("--plugin-dir", plugin_dir, "where bare plugin names are looked up");
  app.add_option("--workers", workers, "decision worker threads")->check(CLI::Range(1, 256));
  app.add_option("--ready-file", ready_file,
                 "write the bound endpoints as JSON here once serving (for tests and scripts)");
  app.add_flag("--ready-after-training", ready_after_training,
               "write the ready file only once no plugin is warming (serving starts at once)");
  app.add_option("--log-format", log_format,
                 "text, or json: one JSON object per line (ts, level, component, msg, and the "
                 "request and decision of a decide)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, warn, error, off")->capture_default_str();
  bool durable_decisions = false;
  app.add_flag("--durable-decisions", durable_decisions,
               "answer a decide only once its decision is committed (store.durable_decisions)");
  CLI11_PARSE(app, argc, argv);

  tailor::log::SetJson(log_format == "json");
  if (!tailor::log::SetLevel(log_level)) {
    std::cerr << "tailord: unknown --log-level '" << log_level << "'\n";
    return 2;
  }
  std::vector<std::string> errors;
  auto cfg = tailor::LoadConfig(
      config_path, plugin_dir.empty() ? tailor::DefaultPluginDir() : plugin_dir, &errors);
  if (!cfg) {
    for (const auto& e : errors) std::cerr << e << "\n";
    std::cerr << "tailord: " << errors.size() << " config error(s); not starting\n";
    return 2;
  }
  if (!store.empty()) cfg->store.path = store;
  if (!requests.empty()) cfg->service.requests = requests;
  if (!events.empty()) cfg->service.events = events;
  if (!outbound.empty()) cfg->service.outbound = outbound;
  if (!plugin_dir.empty()) {
    for (auto& p : cfg->plugins)
      if (p.path.rfind(cfg->plugin_dir, 0) == 0)
        p.path = plugin_dir + p.path.substr(cfg->plugin_dir.size());
    cfg->plugin_dir = plugin_dir;
  }
  if (workers > 0) cfg->service.workers = workers;
  if (!http.empty()) cfg->service.http = http;
  if (durable_decisions) cfg->store.durable_decisions = true;
  if (tailor::Status s = ApplyLogPrivacy(cfg->service.security); !s.ok()) {
    std::cerr << "tailord: " << s.message() << "\n";
    return 2;
  }

  // Signals only set a flag; the serving loop notices within one poll tick.
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string err;
  tailor::Store::Options so;
  so.path = cfg->store.path;
  so.synchronous_full = cfg->store.synchronous_full;
  so.retention = cfg->store.retention;
  auto st = tailor::Store::Open(so, &err);
  if (!st) {
    std::cerr << "tailord: " << err << "\n";
    return 1;
  }
  std::string data_dir = cfg->store.path + ".models";
  std::filesystem::create_directories(data_dir);
  tailor::Metrics metrics;
  tailor::PluginHost host(st.get(), data_dir);
  host.LoadAll(cfg->plugins, /*allow_background=*/true);
  tailor::Engine engine(*cfg, st.get(), &host, &metrics);
  if (auto s = engine.LoadCatalog(); !s.ok()) {
    std::cerr << "tailord: " << s.message() << "\n";
    return 1;
  }
  tailor::Server server(&engine, cfg->service);
  if (auto s = server.Bind(); !s.ok()) {
    std::cerr << "tailord: " << s.message() << "\n";
    return 1;
  }
  const auto& ep = server.endpoints();
  tailor::log::Info("service", "serving requests on " + ep.requests + ", events on " + ep.events +
                                   ", outbound on " + ep.outbound + " (store " + cfg->store.path +
                                   ")");
  tailor::log::Info("security", server.SecuritySummary());
  std::atomic<bool> serving{false};
  std::unique_ptr<tailor::HttpServer> http_server;
  if (!cfg->service.http.empty()) {
    tailor::HttpServer::Handlers handlers;
    handlers.metrics = [&] {
      return tailor::RenderPrometheus(metrics, engine.Stats(), engine.Health());
    };
    handlers.not_ready = [&] { return NotReady(serving.load(), host, *st); };
    http_server = tailor::HttpServer::Start(cfg->service.http, std::move(handlers), &err);
    if (!http_server) {
      std::cerr << "tailord: " << err << "\n";
      return 1;
    }
    tailor::log::Info("service", "HTTP on " + http_server->address() +
                                     ": /metrics, /healthz, /readyz (read-only, no customer data)");
  }
  // Serving starts at once; the ready file may wait for background training.
  std::thread ready_writer([&] {
    if (ready_file.empty()) return;
    while (ready_after_training && host.warming() && !g_stop.load())
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (g_stop.load()) return;
    // Write then rename, so a reader never sees half a file.
    std::string tmp = ready_file + ".tmp";
    {
      std::ofstream out(tmp);
      out << "{\"requests\":\"" << ep.requests << "\",\"events\":\"" << ep.events
          << "\",\"outbound\":\"" << ep.outbound << "\",";
      if (http_server) out << "\"http\":\"" << http_server->address() << "\",";
      out << "\"pid\":" << getpid() << "}\n";
    }
    std::filesystem::rename(tmp, ready_file);
  });
  serving = true;
  server.Run(&g_stop, &g_reload);
  serving = false;
  ready_writer.join();
  st->Flush();
  tailor::log::Info("service", "all writes flushed; bye");
  if (host.warming()) {
    // A model still training in the background would hold the exit until it
    // ends (a minute on a big store). Everything acknowledged is stored: leave
    // without waiting for it (the next start trains again).
    tailor::log::Info("plugins", "exiting while a model still trains in the background");
    std::fflush(nullptr);
    std::_Exit(0);
  }
  return 0;
}
