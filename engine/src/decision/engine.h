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
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "decision/profile_cache.h"
#include "metrics/metrics.h"
#include "plugin_host/host.h"
#include "service/protocol.h"
#include "store/store.h"

namespace tailor {

// Offers and items as served; never modified after publication.
struct Catalog {
  std::vector<Offer> offers;
  std::vector<Item> items;
  std::vector<double> item_value;  // price x margin (or price, or 1) per item
  std::unordered_map<std::string, size_t> item_index;
  double max_offer_value = 1.0;
};

class Engine {
 public:
  // store, plugins and metrics must outlive the engine.
  Engine(EngineConfig config, Store* store, PluginHost* plugins, Metrics* metrics);

  // Builds the catalog from the config's offers, the store's offers table and
  // the store's items, and publishes it.
  Status LoadCatalog();
  std::shared_ptr<const Catalog> catalog() const { return catalog_.load(); }

  // Returns the reply object, or an error naming the offending field.
  std::variant<nlohmann::json, ApiError> Decide(const DecideRequest& req);

  // Appends durably (blocks until committed), then updates the cached profile
  // and lets every plugin observe it.
  Status IngestEvent(Event event);
  // Same as IngestEvent for many events: one wait for the whole batch.
  std::vector<Status> IngestEvents(std::vector<Event> events);

  nlohmann::json ProfileJson(const std::string& customer_id);
  nlohmann::json Health() const;
  nlohmann::json Stats() const;

  const EngineConfig& config() const { return config_; }
  Metrics& metrics() { return *metrics_; }

 private:
  std::shared_ptr<const Profile> GetProfile(const std::string& customer_id);
  void AfterDurable(const Event& e);

  EngineConfig config_;
  Store* store_;
  PluginHost* plugins_;
  Metrics* metrics_;
  ProfileCache cache_;
  std::atomic<std::shared_ptr<const Catalog>> catalog_;
  std::atomic<uint64_t> decision_seq_;
  int64_t started_ms_;
};

}  // namespace tailor
