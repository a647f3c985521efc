// Helpers shared by the plugin suites: paths of built plugins and fixtures, a
// request view, a store seeded with events, and a scoring call that keeps
// the scores and reasons together.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "plugin_host/host.h"
#include "store/store.h"
#include "support/temp_dir.h"
#include "tailor/plugin.h"

namespace tailor::testing {

// build/tests/fixtures/<name>.so
inline std::string FixturePath(const std::string& name) {
  return std::string(TAILOR_FIXTURE_DIR) + "/" + name + ".so";
}

// build/plugins/tailor_<name>.so
inline std::string BuiltinPluginPath(const std::string& name) {
  return std::string(TAILOR_PLUGIN_DIR) + "/tailor_" + name + ".so";
}

// The built-in plugin `name` on store with config_json, models under
// data_dir; nullptr with *err when it does not load.
inline std::unique_ptr<LoadedPlugin> LoadBuiltin(const std::string& name,
                                                 const std::string& config_json, Store* store,
                                                 const std::string& data_dir, std::string* err) {
  PluginSpec spec;
  spec.name = name;
  spec.path = BuiltinPluginPath(name);
  spec.config_json = config_json;
  return LoadedPlugin::Load(spec, store, data_dir, err);
}

// The same, trained; failing to load or to train fails the test (nullptr
// when it did not load).
inline std::unique_ptr<LoadedPlugin> LoadTrainedBuiltin(const std::string& name,
                                                        const std::string& config_json,
                                                        Store* store, const std::string& data_dir) {
  std::string err;
  auto p = LoadBuiltin(name, config_json, store, data_dir, &err);
  EXPECT_NE(p, nullptr) << err;
  if (!p) return nullptr;
  Status s = p->Train();
  EXPECT_TRUE(s.ok()) << s.message();
  return p;
}

constexpr int64_t kDayMs = 86400000;
// A fixed "now" so that tests do not depend on the clock: 2026-01-01T00:00:00Z.
constexpr int64_t kNowMs = 1767225600000;

// A request view for an anonymous web visitor; the strings are static.
inline tailor_request_view MakeRequest(int64_t now_ms = kNowMs) {
  tailor_request_view req{};
  req.customer_id = nullptr;
  req.known_customer = 0;
  req.channel = "web";
  req.placement = "home";
  req.context_json = "{}";
  req.now_ms = now_ms;
  req.recent = nullptr;
  req.n_recent = 0;
  return req;
}

inline tailor_event_view ViewOf(const Event& e) {
  auto opt = [](const std::string& s) { return s.empty() ? nullptr : s.c_str(); };
  return tailor_event_view{e.customer_id.c_str(),
                           e.type.c_str(),
                           opt(e.item_id),
                           opt(e.offer_id),
                           e.ts_ms,
                           e.value,
                           e.quantity,
                           opt(e.text)};
}

inline Event MakeEvent(const std::string& customer, const std::string& type,
                       const std::string& item, int64_t ts_ms, const std::string& offer = "") {
  Event e;
  e.customer_id = customer;
  e.type = type;
  e.item_id = item;
  e.offer_id = offer;
  e.ts_ms = ts_ms;
  return e;
}

inline Item MakeItem(const std::string& id, const std::string& category) {
  Item it;
  it.id = id;
  it.title = "Item " + id;
  it.category = category;
  return it;
}

// A store in dir with the given catalog and events, written in one bulk
// transaction. Fails the test (and returns null) on any error.
inline std::unique_ptr<Store> MakeStore(const TempDir& dir, const std::vector<Item>& items,
                                        const std::vector<Event>& events) {
  Store::Options opt;
  opt.path = dir.file("tailor.db");
  opt.synchronous_full = false;
  std::string err;
  auto store = Store::Open(opt, &err);
  EXPECT_NE(store, nullptr) << err;
  if (!store) return nullptr;
  auto bulk = store->BeginBulk(&err);
  EXPECT_NE(bulk, nullptr) << err;
  if (!bulk) return nullptr;
  for (const Item& it : items) EXPECT_TRUE(bulk->Item(it).ok());
  for (const Event& e : events) EXPECT_TRUE(bulk->Event(e).ok());
  Status s = bulk->Commit();
  EXPECT_TRUE(s.ok()) << s.message();
  return store;
}

// Scores and reasons of one Score call.
struct Scored {
  Status status;
  std::vector<float> scores;
  std::vector<std::string> reasons;
  bool wrote_past_end = false;  // touched a guard beyond n scores or n reason slots
};

// Calls Score with guard bytes after both output arrays, which the host does
// not check, so a plugin that writes past n is caught here.
inline Scored ScoreAll(LoadedPlugin& plugin, const std::vector<tailor_candidate>& candidates,
                       size_t reason_cap = 128, int64_t now_ms = kNowMs) {
  constexpr size_t kGuard = 16;
  constexpr float kUnwritten = -7.0f;  // a value no plugin should leave behind
  Scored out;
  const size_t n = candidates.size();
  out.scores.assign(n + kGuard, kUnwritten);
  std::vector<char> reasons(n * reason_cap + kGuard, 'x');
  tailor_request_view req = MakeRequest(now_ms);
  out.status = plugin.Score(req, candidates.data(), n, out.scores.data(),
                            reason_cap ? reasons.data() : nullptr, reason_cap);
  for (size_t i = n; i < n + kGuard; ++i) out.wrote_past_end |= out.scores[i] != kUnwritten;
  for (size_t i = n * reason_cap; i < reasons.size(); ++i) out.wrote_past_end |= reasons[i] != 'x';
  out.scores.resize(n);
  for (size_t i = 0; i < n && reason_cap; ++i) {
    const char* slot = reasons.data() + i * reason_cap;
    out.reasons.emplace_back(slot, strnlen(slot, reason_cap));
  }
  return out;
}

inline tailor_candidate ItemCandidate(const char* item) { return {nullptr, item, nullptr}; }
inline tailor_candidate CategoryCandidate(const char* offer, const char* category) {
  return {offer, nullptr, category};
}
inline tailor_candidate OfferCandidate(const char* offer) { return {offer, nullptr, nullptr}; }

}  // namespace tailor::testing
