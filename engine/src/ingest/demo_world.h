// `tailor demo`: a deterministic, seeded demo world — customers with declared
// attributes and consent, a catalog over ten categories, and months of
// behaviour (view, click, add_to_cart, purchase, return) driven by hidden
// long-term traits. The traits are written with Store::Bulk::Truth so that
// evaluations can check what the models learned; models never read them.
// docs/import.md describes the traits and how they shape the events.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tailor {
class Store;
}

namespace tailor::ingest {

struct DemoOptions {
  int customers = 3000;  // ids c1..cN
  int items = 500;       // ids i1..iM
  int days = 180;        // history length, ending at end_ms
  uint64_t seed = 42;    // same seed and end_ms: the same world, byte for byte
  int64_t end_ms = 0;    // 0: now
};

struct DemoSummary {
  int64_t customers = 0;
  int64_t items = 0;
  int64_t events = 0;
  int64_t truths = 0;  // rows of hidden ground truth
  std::map<std::string, int64_t> events_by_type;
  std::map<std::string, int64_t> trait_counts;  // customers whose trait is >= 0.5
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  double generate_seconds = 0;
  double write_seconds = 0;
};

// The catalog's categories, in a fixed order.
const std::vector<std::string>& DemoCategories();
// The hidden traits every demo customer has a value for.
const std::vector<std::string>& DemoTraits();

// One demo customer's hidden traits as the generator drew them, for the
// simulator's true response model and for evaluations (`tailor simulate`,
// docs/simulate.md). The engine never reads these.
struct DemoCustomerTruth {
  std::string id;                       // c1..cN
  std::vector<double> category_weight;  // by DemoCategories(); larger = shops it more
  double deal_seeker = 0, night_owl = 0, big_spender = 0, gift_buyer = 0, churn_risk = 0;
  double sessions_per_week = 0;
};

// The hidden traits of every customer of the world GenerateDemo makes with the
// same customers, items and seed (days and end_ms do not change them); only
// the catalog and the people are drawn, no events, so this is fast.
std::vector<DemoCustomerTruth> DemoHiddenTraits(const DemoOptions& options);

// Called with the stage ("world", "events", "writing"), units done and total.
using DemoProgressFn = std::function<void(std::string_view stage, int64_t done, int64_t total)>;

// Generates the world into store in one bulk transaction. The store should be
// empty: ids c1..cN and i1..iM overwrite rows with those ids, events append.
Status GenerateDemo(Store& store, const DemoOptions& options, DemoSummary* summary,
                    const DemoProgressFn& progress = {});

}  // namespace tailor::ingest
