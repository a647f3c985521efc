// The plugin ABI contract, from both sides:
// - one fixture plugin per misbehaviour (tests/plugins/fixtures/), each with
//   the exact outcome the host must produce;
// - a generic harness run over every built-in plugin in build/plugins, so a
//   new plugin is held to the same contract without writing a line.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "plugins/plugin_test_util.h"

namespace tailor {
namespace {

using testing::BuiltinPluginPath;
using testing::CategoryCandidate;
using testing::FixturePath;
using ::testing::HasSubstr;
using testing::ItemCandidate;
using testing::OfferCandidate;
using testing::ScoreAll;
using testing::TempDir;

class FixtureTest : public ::testing::Test {
 protected:
  std::unique_ptr<LoadedPlugin> Load(const std::string& fixture, std::string* err,
                                     Store* store = nullptr) {
    PluginSpec spec;
    spec.name = fixture;
    spec.path = FixturePath(fixture);
    return LoadedPlugin::Load(spec, store, dir_.path(), err);
  }

  TempDir dir_;
};

const std::vector<tailor_candidate> kThree = {ItemCandidate("a"), ItemCandidate("b"),
                                              ItemCandidate("c")};

TEST_F(FixtureTest, MissingFileReportsTheDlopenError) {
  std::string err;
  PluginSpec spec;
  spec.name = "nowhere";
  spec.path = FixturePath("does_not_exist");
  EXPECT_EQ(LoadedPlugin::Load(spec, nullptr, dir_.path(), &err), nullptr);
  EXPECT_THAT(err, HasSubstr(spec.path));
  EXPECT_THAT(err, HasSubstr("No such file"));  // dlerror()'s text
}

TEST_F(FixtureTest, WrongMajorIsRefusedNamingBothVersions) {
  std::string err;
  EXPECT_EQ(Load("wrong_major", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("99"));
  EXPECT_THAT(err, HasSubstr(std::to_string(TAILOR_PLUGIN_ABI_MAJOR) + "." +
                             std::to_string(TAILOR_PLUGIN_ABI_MINOR)));
  EXPECT_THAT(err, HasSubstr(FixturePath("wrong_major")));
}

TEST_F(FixtureTest, ShortStructIsRefusedNamingTheSize) {
  std::string err;
  EXPECT_EQ(Load("short_struct", &err), nullptr);
  EXPECT_THAT(err, HasSubstr(std::to_string(offsetof(tailor_plugin_api, score))));
  EXPECT_THAT(err, HasSubstr(std::to_string(TAILOR_PLUGIN_API_MIN_SIZE_V1)));
}

TEST_F(FixtureTest, NoEntrySymbolIsRefusedNamingTheSymbol) {
  std::string err;
  EXPECT_EQ(Load("no_entry", &err), nullptr);
  EXPECT_THAT(err, HasSubstr(TAILOR_PLUGIN_ENTRY_SYMBOL));
}

TEST_F(FixtureTest, NullCreateIsRefused) {
  std::string err;
  EXPECT_EQ(Load("null_create", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("create"));
}

TEST_F(FixtureTest, CreateFailurePropagatesTheMessageAndNeverDestroys) {
  // Our own handle keeps the library (and its counters) mapped after the
  // host's dlclose.
  void* handle = dlopen(FixturePath("create_fails").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto* creates = static_cast<int*>(dlsym(handle, "create_fails_create_calls"));
  auto* destroys = static_cast<int*>(dlsym(handle, "create_fails_destroy_calls"));
  ASSERT_NE(creates, nullptr);
  ASSERT_NE(destroys, nullptr);

  std::string err;
  EXPECT_EQ(Load("create_fails", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("create_fails: missing required key 'model_path'"));
  EXPECT_EQ(*creates, 1);
  EXPECT_EQ(*destroys, 0);
  dlclose(handle);
}

TEST_F(FixtureTest, ConfiguredNameMustMatchTheLibrarysName) {
  std::string err;
  PluginSpec spec;
  spec.name = "popularity";
  spec.path = FixturePath("good");
  EXPECT_EQ(LoadedPlugin::Load(spec, nullptr, dir_.path(), &err), nullptr);
  EXPECT_THAT(err, HasSubstr("'popularity'"));
  EXPECT_THAT(err, HasSubstr("'good'"));
}

TEST_F(FixtureTest, ScoreErrorIsReportedAndCounted) {
  std::string err;
  auto p = Load("score_error", &err);
  ASSERT_NE(p, nullptr) << err;
  auto r = ScoreAll(*p, kThree);
  EXPECT_FALSE(r.status.ok());
  EXPECT_THAT(r.status.message(), HasSubstr("model not ready"));
  EXPECT_EQ(p->counters().score_calls.load(), 1u);
  EXPECT_EQ(p->counters().score_errors.load(), 1u);
}

TEST_F(FixtureTest, NaNScoreIsAnErrorNamingTheCandidate) {
  std::string err;
  auto p = Load("score_nan", &err);
  ASSERT_NE(p, nullptr) << err;
  auto r = ScoreAll(*p, kThree);
  EXPECT_FALSE(r.status.ok());
  EXPECT_THAT(r.status.message(), HasSubstr("candidate 1"));
  EXPECT_EQ(p->counters().score_errors.load(), 1u);
}

TEST_F(FixtureTest, AbstentionPassesThroughForMinorOneOnly) {
  std::string err;
  auto p = Load("abstains", &err);
  ASSERT_NE(p, nullptr) << err;
  auto r = ScoreAll(*p, kThree);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.scores, (std::vector<float>{0.75f, TAILOR_SCORE_ABSTAIN, 0.0f}));
}

TEST_F(FixtureTest, OutOfRangeScoresAreClamped) {
  std::string err;
  auto p = Load("out_of_range", &err);
  ASSERT_NE(p, nullptr) << err;
  auto r = ScoreAll(*p, kThree);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.scores, (std::vector<float>{1.0f, 0.0f, 0.25f}));
  EXPECT_EQ(p->counters().score_errors.load(), 0u);
}

TEST_F(FixtureTest, ExceptionsStopAtTheSdkBarrier) {
  std::string err;
  auto p = Load("throws", &err);
  ASSERT_NE(p, nullptr) << err;
  auto r = ScoreAll(*p, kThree);
  EXPECT_FALSE(r.status.ok());
  EXPECT_THAT(r.status.message(), HasSubstr("boom"));
  EXPECT_EQ(p->counters().score_errors.load(), 1u);

  // Not a std::exception: still caught.
  Status t = p->Train();
  EXPECT_FALSE(t.ok());
  EXPECT_THAT(t.message(), HasSubstr("unknown exception"));

  // Methods the class lacks are NULL in the table.
  EXPECT_FALSE(p->can_observe());
  EXPECT_FALSE(p->can_save());
  EXPECT_FALSE(p->can_load());
  EXPECT_TRUE(p->can_train());
}

TEST_F(FixtureTest, AnnotateFactsAreValidatedAndCounted) {
  std::string err;
  auto p = Load("facts", &err);
  ASSERT_NE(p, nullptr) << err;
  ASSERT_TRUE(p->can_annotate());
  tailor_request_view req = testing::MakeRequest();
  req.customer_id = "c1";
  req.context_json = R"({"message":"I want to cancel"})";
  nlohmann::json facts;
  ASSERT_TRUE(p->Annotate(req, &facts).ok());
  EXPECT_EQ(facts["customer"]["dna"]["deal_seeker"], "high") << facts.dump();
  EXPECT_EQ(facts["context"]["intent"], "cancel") << facts.dump();

  req.customer_id = nullptr;  // anonymous, no message: nothing to say
  req.context_json = "{}";
  ASSERT_TRUE(p->Annotate(req, &facts).ok());
  EXPECT_TRUE(facts.is_null());

  req.context_json = R"({"message":"garbage"})";
  Status bad = p->Annotate(req, &facts);
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(bad.message(), HasSubstr("no JSON object"));
  req.context_json = R"({"message":"boom"})";
  Status thrown = p->Annotate(req, &facts);
  EXPECT_FALSE(thrown.ok());
  EXPECT_THAT(thrown.message(), HasSubstr("boom"));
  EXPECT_EQ(p->counters().annotate_calls.load(), 4u);
  EXPECT_EQ(p->counters().annotate_errors.load(), 2u);

  // A plugin without the hook (ABI 1.0 style) has nothing to annotate.
  auto plain = Load("throws", &err);
  ASSERT_NE(plain, nullptr) << err;
  EXPECT_FALSE(plain->can_annotate());
  EXPECT_TRUE(plain->Annotate(req, &facts).ok());
  EXPECT_TRUE(facts.is_null());
}

TEST_F(FixtureTest, SimilaritiesAreValidatedAndCounted) {
  std::string err;
  auto p = Load("similar", &err);
  ASSERT_NE(p, nullptr) << err;
  ASSERT_TRUE(p->can_similarity());
  const char* ids[] = {"i21", "i25", "i3", "", "x"};
  std::vector<float> sim(25, -1.0f);
  ASSERT_TRUE(p->Similarity(ids, 5, sim.data()).ok());
  EXPECT_EQ(sim[0 * 5 + 1], 1.0f);  // i21 ~ i25
  EXPECT_EQ(sim[1 * 5 + 0], 1.0f);
  EXPECT_EQ(sim[0 * 5 + 2], 0.0f);  // i21 vs i3
  EXPECT_EQ(sim[0 * 5 + 3], 0.0f);  // no item: nothing written, the host's zero
  EXPECT_EQ(sim[4 * 5 + 4], 0.0f);

  // NaN is refused with the pair named; a throw stops at the SDK barrier.
  PluginSpec spec;
  spec.name = "similar";
  spec.path = FixturePath("similar");
  spec.config_json = R"({"fail":"nan"})";
  auto nan = LoadedPlugin::Load(spec, nullptr, dir_.path(), &err);
  ASSERT_NE(nan, nullptr) << err;
  Status st = nan->Similarity(ids, 2, sim.data());
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("non-finite value for pair 0, 0"));
  spec.config_json = R"({"fail":"throw"})";
  auto thrower = LoadedPlugin::Load(spec, nullptr, dir_.path(), &err);
  ASSERT_NE(thrower, nullptr) << err;
  EXPECT_TRUE(thrower->Similarity(ids, 3, sim.data()).ok());
  const char* with_i30[] = {"i1", "i30"};
  st = thrower->Similarity(with_i30, 2, sim.data());
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("no similarity for i30"));
  EXPECT_EQ(thrower->counters().similarity_calls.load(), 2u);
  EXPECT_EQ(thrower->counters().similarity_errors.load(), 1u);

  // A plugin without the call (ABI 1.1 style) says so instead of crashing.
  auto plain = Load("facts", &err);
  ASSERT_NE(plain, nullptr) << err;
  EXPECT_FALSE(plain->can_similarity());
  EXPECT_FALSE(plain->Similarity(ids, 2, sim.data()).ok());
}

TEST_F(FixtureTest, EveryCallADecisionWaitsOnHasATimeBudget) {
  PluginSpec spec;
  spec.name = "facts";
  spec.path = FixturePath("facts");
  spec.budget_us = 5000;
  spec.max_overruns = 3;
  std::string err;
  auto p = LoadedPlugin::Load(spec, nullptr, dir_.path(), &err);
  ASSERT_NE(p, nullptr) << err;
  tailor_request_view req = testing::MakeRequest();
  req.customer_id = "c1";
  tailor_request_view slow = req;
  slow.context_json = R"({"message":"slow"})";
  nlohmann::json facts;

  Status st = p->Annotate(slow, &facts);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("annotate over its time budget"));
  EXPECT_TRUE(facts.is_null()) << "the facts of a call over budget are dropped";
  EXPECT_EQ(p->counters().annotate_overruns.load(), 1u);
  // observe is timed and counted, but its event is stored: nothing dropped.
  tailor_event_view ev{"c1", "slow", nullptr, nullptr, 0, 0, 0, nullptr};
  EXPECT_TRUE(p->Observe(ev).ok());
  EXPECT_EQ(p->counters().observe_overruns.load(), 1u);
  ASSERT_TRUE(p->Annotate(req, &facts).ok());  // in time: the streak starts over
  EXPECT_FALSE(facts.is_null());

  for (int i = 0; i < 3; ++i) EXPECT_FALSE(p->Annotate(slow, &facts).ok()) << i;
  EXPECT_TRUE(p->disabled());
  std::vector<float> scores(kThree.size());
  st = p->Score(req, kThree.data(), kThree.size(), scores.data(), nullptr, 0);
  EXPECT_THAT(st.message(), HasSubstr("disabled after 3"));
  EXPECT_THAT(p->Annotate(req, &facts).message(), HasSubstr("disabled after 3"));
  const uint64_t calls = p->counters().annotate_calls.load();
  EXPECT_EQ(calls, 5u) << "a disabled plugin is not called";
  p->Enable();
  EXPECT_TRUE(p->Annotate(req, &facts).ok());
  EXPECT_TRUE(p->Score(req, kThree.data(), kThree.size(), scores.data(), nullptr, 0).ok());

  spec.name = "similar";
  spec.path = FixturePath("similar");
  spec.config_json = R"({"fail":"slow"})";
  auto sim = LoadedPlugin::Load(spec, nullptr, dir_.path(), &err);
  ASSERT_NE(sim, nullptr) << err;
  const char* ids[] = {"i21", "i25"};
  std::vector<float> out(4);
  st = sim->Similarity(ids, 2, out.data());
  EXPECT_THAT(st.message(), HasSubstr("similarity over its time budget"));
  EXPECT_EQ(sim->counters().similarity_overruns.load(), 1u);
}

TEST_F(FixtureTest, ADeclaredConcurrentObserveDoesNotHoldScoringUp) {
  std::string err;
  auto p = Load("facts", &err);
  ASSERT_NE(p, nullptr) << err;
  ASSERT_TRUE(p->observes_concurrently());
  auto plain = Load("good", &err);
  ASSERT_NE(plain, nullptr) << err;
  EXPECT_FALSE(plain->observes_concurrently()) << "no flag, no concurrency";

  tailor_event_view ev{"c1", "slow", nullptr, nullptr, 0, 0, 0, nullptr};
  std::thread observer([&] { EXPECT_TRUE(p->Observe(ev).ok()); });
  while (p->counters().observe_calls.load() == 0) std::this_thread::yield();
  // Let it into the plugin's 30 ms nap; an exclusive observe would now make
  // the score below wait for the rest of it.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  tailor_request_view req = testing::MakeRequest();
  std::vector<float> scores(kThree.size());
  EXPECT_TRUE(p->Score(req, kThree.data(), kThree.size(), scores.data(), nullptr, 0).ok());
  const bool observe_still_running = p->counters().observe_ns.load() == 0;
  observer.join();
  EXPECT_TRUE(observe_still_running) << "score waited for observe";
}

TEST_F(FixtureTest, AModelLoadsAsideWhileTheServedOneKeepsScoring) {
  const std::string gate = dir_.file("gate"), model = dir_.file("m.model");
  std::ofstream(model) << "model";
  PluginSpec spec;
  spec.name = "gated_train";
  spec.path = FixturePath("gated_train");
  spec.config_json = R"({"gate": ")" + gate + R"("})";
  std::string err;
  auto p = LoadedPlugin::Load(spec, nullptr, dir_.path(), &err);
  ASSERT_NE(p, nullptr) << err;
  std::ofstream(gate) << "open";
  ASSERT_TRUE(p->Train().ok());
  std::filesystem::remove(gate);
  auto score = [&] {
    std::vector<float> s(1);
    const tailor_candidate one = ItemCandidate("a");
    EXPECT_TRUE(p->Score(testing::MakeRequest(), &one, 1, s.data(), nullptr, 0).ok());
    return s[0];
  };
  EXPECT_FLOAT_EQ(score(), 0.9f);  // trained
  // The load blocks inside the plugin until the gate exists again.
  std::thread loader([&] { EXPECT_TRUE(p->LoadModel(model).ok()); });
  while (!std::filesystem::exists(gate + ".waiting")) std::this_thread::yield();
  EXPECT_FLOAT_EQ(score(), 0.9f) << "scoring waits for no load";
  std::ofstream(gate) << "open";
  loader.join();
  EXPECT_FLOAT_EQ(score(), 0.8f);  // the loaded instance serves
  EXPECT_EQ(p->model_path(), model);
}

TEST_F(FixtureTest, GoodPluginFromANewerMinorWorks) {
  std::string err;
  auto p = Load("good", &err);
  ASSERT_NE(p, nullptr) << err;
  EXPECT_EQ(p->name(), "good");
  EXPECT_EQ(p->version(), "0.1.0");
  EXPECT_EQ(p->abi_minor(), static_cast<uint32_t>(TAILOR_PLUGIN_ABI_MINOR + 1));

  auto r = ScoreAll(*p, kThree);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.scores, (std::vector<float>(3, 0.5f)));
  EXPECT_EQ(r.reasons, (std::vector<std::string>(3, "fixture")));

  ASSERT_TRUE(p->can_observe());
  Event e = testing::MakeEvent("c1", "view", "a", testing::kNowMs);
  tailor_event_view ev = testing::ViewOf(e);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(p->Observe(ev).ok());
  EXPECT_EQ(p->counters().observe_calls.load(), 3u);
  EXPECT_EQ(p->counters().observe_errors.load(), 0u);

  // The plugin saw them too: its saved model is its event count.
  const std::string model = dir_.file("good.model");
  ASSERT_TRUE(p->Save(model).ok());
  EXPECT_EQ(testing::ReadFile(model), "good 3\n");

  auto q = Load("good", &err);
  ASSERT_NE(q, nullptr) << err;
  ASSERT_TRUE(q->LoadModel(model).ok());
  const std::string again = dir_.file("good2.model");
  ASSERT_TRUE(q->Save(again).ok());
  EXPECT_EQ(testing::ReadFile(again), "good 3\n");

  // With no store the host's for_each_event visits nothing.
  ASSERT_TRUE(q->Train().ok());
  ASSERT_TRUE(q->Save(again).ok());
  EXPECT_EQ(testing::ReadFile(again), "good 0\n");
}

TEST_F(FixtureTest, GoodPluginTrainsFromTheStore) {
  TempDir store_dir;
  auto store = testing::MakeStore(store_dir, {},
                                  {testing::MakeEvent("c1", "view", "a", testing::kNowMs),
                                   testing::MakeEvent("c2", "view", "b", testing::kNowMs)});
  ASSERT_NE(store, nullptr);
  std::string err;
  auto p = Load("good", &err, store.get());
  ASSERT_NE(p, nullptr) << err;
  ASSERT_TRUE(p->Train().ok());
  ASSERT_TRUE(p->Save(dir_.file("m")).ok());
  EXPECT_EQ(testing::ReadFile(dir_.file("m")), "good 2\n");
}

// The host loads the active registered model at start even without
// train_on_start, and ReloadModels picks up a newer one (after `tailor train`).
TEST_F(FixtureTest, HostLoadsRegisteredModelsAndReloadsNewerOnes) {
  TempDir store_dir;
  auto store = testing::MakeStore(store_dir, {}, {});
  ASSERT_NE(store, nullptr);
  auto write_model = [&](const std::string& name, const std::string& text) {
    const std::string path = dir_.file(name);
    std::ofstream(path) << text;
    ModelRecord m;
    m.plugin = "good";
    m.created_ms = testing::kNowMs;
    m.path = path;
    m.active = true;
    int64_t id = 0;
    EXPECT_TRUE(store->RegisterModel(m, &id).ok());
    return path;
  };
  const std::string first = write_model("good-1.model", "good 7\n");
  PluginSpec spec;
  spec.name = "good";
  spec.path = FixturePath("good");
  spec.train_on_start = false;
  PluginHost host(store.get(), dir_.path());
  host.LoadAll({spec});
  ASSERT_EQ(host.plugins().size(), 1u);
  EXPECT_EQ(host.plugins()[0]->model_path(), first);
  EXPECT_TRUE(host.ReloadModels().empty()) << "nothing new to load";

  const std::string second = write_model("good-2.model", "good 9\n");
  std::vector<std::string> notes = host.ReloadModels();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("loaded model " + second));
  EXPECT_EQ(host.plugins()[0]->model_path(), second);

  // A broken newer model keeps the current one serving.
  write_model("good-3.model", "not a good model\n");
  notes = host.ReloadModels();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("previous model keeps serving"));
  EXPECT_EQ(host.plugins()[0]->model_path(), second);
}

// --- The contract harness over every built-in plugin ------------------------

// Plugin names from build/plugins/tailor_<name>.so, sorted.
std::vector<std::string> BuiltinPlugins() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(TAILOR_PLUGIN_DIR, ec)) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() == ".so" && file.rfind("tailor_", 0) == 0) {
      names.push_back(entry.path().stem().string().substr(7));
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A small world every plugin should cope with: a catalog, views, purchases,
// offer interactions, an item absent from the catalog.
std::vector<Event> HarnessEvents() {
  using testing::kDayMs;
  using testing::kNowMs;
  using testing::MakeEvent;
  std::vector<Event> events;
  const char* types[] = {"view", "click", "add_to_cart", "purchase"};
  for (int i = 0; i < 40; ++i) {
    const std::string item = "i" + std::to_string(i % 7);
    events.push_back(
        MakeEvent("c" + std::to_string(i % 5), types[i % 4], item, kNowMs - (40 - i) * kDayMs / 4));
  }
  events.push_back(MakeEvent("c1", "impression", "", kNowMs - kDayMs, "o1"));
  events.push_back(MakeEvent("c1", "offer_click", "", kNowMs - kDayMs, "o1"));
  events.push_back(MakeEvent("c2", "convert", "i1", kNowMs - kDayMs, "o2"));
  events.push_back(MakeEvent("c3", "view", "not_in_catalog", kNowMs - kDayMs));
  Event chat = MakeEvent("c4", "chat", "", kNowMs - kDayMs);
  chat.text = "do you have running shoes?";
  events.push_back(chat);
  return events;
}

std::vector<Item> HarnessItems() {
  std::vector<Item> items;
  for (int i = 0; i < 7; ++i) {
    items.push_back(testing::MakeItem("i" + std::to_string(i), "cat" + std::to_string(i % 3)));
  }
  return items;
}

// Every kind of candidate plugin.h allows, known and unknown.
const std::vector<tailor_candidate>& HarnessCandidates() {
  static const std::vector<tailor_candidate> kCandidates = {
      ItemCandidate("i0"),
      ItemCandidate("i3"),
      ItemCandidate("unknown_item"),
      {"o2", "i1", "cat1"},
      CategoryCandidate("o3", "cat0"),
      CategoryCandidate("o4", "no_such_category"),
      OfferCandidate("o1"),
      OfferCandidate("unknown_offer"),
      {nullptr, nullptr, nullptr},
  };
  return kCandidates;
}

class PluginContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    store_ = testing::MakeStore(store_dir_, HarnessItems(), HarnessEvents());
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<LoadedPlugin> Load() {
    PluginSpec spec;
    spec.name = GetParam();
    spec.path = BuiltinPluginPath(GetParam());
    std::string err;
    auto p = LoadedPlugin::Load(spec, store_.get(), data_dir_.path(), &err);
    EXPECT_NE(p, nullptr) << err;
    return p;
  }

  std::unique_ptr<LoadedPlugin> LoadTrained() {
    auto p = Load();
    if (p && p->can_train()) {
      Status s = p->Train();
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return p;
  }

  // Every score finite and in [0, 1] or an abstention; every reason
  // NUL-terminated in its slot.
  static void ExpectWellFormed(const testing::Scored& r, size_t n, size_t reason_cap) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
    ASSERT_EQ(r.scores.size(), n);
    EXPECT_FALSE(r.wrote_past_end) << "wrote past the n scores or reason slots";
    for (size_t i = 0; i < n; ++i) {
      if (r.scores[i] == TAILOR_SCORE_ABSTAIN) continue;
      EXPECT_TRUE(std::isfinite(r.scores[i])) << "candidate " << i;
      EXPECT_GE(r.scores[i], 0.0f) << "candidate " << i;
      EXPECT_LE(r.scores[i], 1.0f) << "candidate " << i;
    }
    for (size_t i = 0; i < r.reasons.size(); ++i) {
      EXPECT_LT(r.reasons[i].size(), reason_cap) << "reason " << i << " overflows its slot";
    }
  }

  TempDir store_dir_, data_dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(PluginContract, LoadsWithEmptyConfigAndNamesItself) {
  auto p = Load();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name(), GetParam());
  EXPECT_FALSE(p->version().empty());
  EXPECT_EQ(p->path(), BuiltinPluginPath(GetParam()));
}

TEST_P(PluginContract, ScoresUntrained) {
  auto p = Load();
  ASSERT_NE(p, nullptr);
  const auto& c = HarnessCandidates();
  ExpectWellFormed(ScoreAll(*p, c), c.size(), 128);
}

TEST_P(PluginContract, ScoresEveryCandidateFiniteInUnitRange) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const auto& c = HarnessCandidates();
  for (size_t cap : {size_t{128}, size_t{16}, size_t{1}}) {
    SCOPED_TRACE("reason_cap " + std::to_string(cap));
    ExpectWellFormed(ScoreAll(*p, c, cap), c.size(), cap);
  }
  // Reasons disabled.
  ExpectWellFormed(ScoreAll(*p, c, 0), c.size(), 1);
  EXPECT_EQ(p->counters().score_errors.load(), 0u);
}

// The engine scores large placements without reason slots and asks for the
// reasons of a few candidates afterwards (LoadedPlugin::Explain), so the
// scores must not depend on whether reasons were asked for, and a subset's
// reasons must be the full call's.
TEST_P(PluginContract, ReasonsChangeNoScoreAndExplainASubset) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const auto& c = HarnessCandidates();
  const testing::Scored with = ScoreAll(*p, c, 128);
  const testing::Scored without = ScoreAll(*p, c, 0);
  ASSERT_TRUE(with.status.ok() && without.status.ok());
  EXPECT_EQ(with.scores, without.scores);
  const std::vector<size_t> picked = {c.size() - 1, 0, 3};
  std::vector<tailor_candidate> subset;
  for (size_t i : picked) subset.push_back(c[i]);
  std::vector<char> slots(subset.size() * 128, 'x');
  tailor_request_view req = testing::MakeRequest();
  Status st = p->Explain(req, subset.data(), subset.size(), slots.data(), 128);
  ASSERT_TRUE(st.ok()) << st.message();
  for (size_t k = 0; k < picked.size(); ++k)
    EXPECT_EQ(std::string(slots.data() + k * 128), with.reasons[picked[k]]) << "candidate " << k;
  EXPECT_EQ(p->counters().explain_calls.load(), 1u);
  EXPECT_EQ(p->counters().score_calls.load(), 2u);  // Explain is counted apart
}

TEST_P(PluginContract, HandlesNoCandidates) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  tailor_request_view req = testing::MakeRequest();
  // An empty vector's data() may be NULL; both must work.
  float dummy = 0;
  EXPECT_TRUE(p->Score(req, nullptr, 0, nullptr, nullptr, 0).ok());
  EXPECT_TRUE(p->Score(req, HarnessCandidates().data(), 0, &dummy, nullptr, 64).ok());
}

TEST_P(PluginContract, ObserveKeepsScoresWellFormed) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  if (!p->can_observe()) {
    // Not interested in events: observing is a no-op, not an error or a call.
    EXPECT_TRUE(p->Observe(testing::ViewOf(HarnessEvents().front())).ok());
    EXPECT_EQ(p->counters().observe_calls.load(), 0u);
    return;
  }
  for (const Event& e : HarnessEvents()) {
    Event later = e;
    later.ts_ms += testing::kDayMs;
    Status s = p->Observe(testing::ViewOf(later));
    EXPECT_TRUE(s.ok()) << s.message();
  }
  EXPECT_EQ(p->counters().observe_calls.load(), HarnessEvents().size());
  EXPECT_EQ(p->counters().observe_errors.load(), 0u);
  const auto& c = HarnessCandidates();
  ExpectWellFormed(ScoreAll(*p, c), c.size(), 128);
}

TEST_P(PluginContract, TrainIsRepeatable) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  if (!p->can_train()) {
    Status s = p->Train();
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.message(), HasSubstr("does not implement train"));
    return;
  }
  auto first = ScoreAll(*p, HarnessCandidates());
  ASSERT_TRUE(p->Train().ok());
  auto second = ScoreAll(*p, HarnessCandidates());
  EXPECT_EQ(first.scores, second.scores);
  EXPECT_EQ(first.reasons, second.reasons);
}

TEST_P(PluginContract, SaveLoadRoundTrip) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  if (!p->can_save() || !p->can_load()) {
    // Without both halves there is no round trip: the missing one says so.
    Status s = !p->can_save() ? p->Save(data_dir_.file("x.model")) : p->LoadModel("x.model");
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.message(), HasSubstr("does not implement"));
    return;
  }
  const std::string model = data_dir_.file(GetParam() + ".model");
  Status s = p->Save(model);
  ASSERT_TRUE(s.ok()) << s.message();

  auto q = Load();
  ASSERT_NE(q, nullptr);
  s = q->LoadModel(model);
  ASSERT_TRUE(s.ok()) << s.message();
  auto a = ScoreAll(*p, HarnessCandidates());
  auto b = ScoreAll(*q, HarnessCandidates());
  EXPECT_EQ(a.scores, b.scores);
  EXPECT_EQ(a.reasons, b.reasons);

  // Bad files fail cleanly, and leave the loaded model in place.
  testing::WriteFile(data_dir_.file("garbage"),
                     "\x7f"
                     "ELF not a model\n");
  EXPECT_FALSE(q->LoadModel(data_dir_.file("garbage")).ok());
  EXPECT_FALSE(q->LoadModel(data_dir_.file("missing")).ok());
  EXPECT_EQ(ScoreAll(*q, HarnessCandidates()).scores, a.scores);
}

// The shipped plugins with per-customer state learn beside scoring
// (TAILOR_PLUGIN_CONCURRENT_OBSERVE): scores stay well-formed while other
// threads observe many customers' events, a time jump (content's rebase)
// included. Run under the sanitizers, this finds the data races that matter.
TEST_P(PluginContract, ObserveBesideScoreWhenDeclared) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const std::string name = GetParam();
  const bool per_customer = name == "cf" || name == "content" || name == "intent";
  EXPECT_EQ(p->observes_concurrently(), per_customer)
      << name << ": per-customer state learns beside scoring; popularity's one ranking does not";
  if (!p->observes_concurrently()) return;
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (const Event& e : HarnessEvents()) {
          Event later = e;
          // The customers being scored, and new ones.
          if (round % 2) later.customer_id += "-" + std::to_string(t * 7 + round % 7);
          // Round 25 jumps 100 half-lives ahead: content moves its reference.
          later.ts_ms += (round >= 25 ? 1000 : 1) * testing::kDayMs + round;
          if (later.type == "chat") later.text = "my card was charged twice";
          if (!p->Observe(testing::ViewOf(later)).ok()) ++bad;
        }
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      const auto& c = HarnessCandidates();
      std::vector<float> scores(c.size());
      std::vector<char> reasons(c.size() * 128);
      for (int i = 0; !stop.load(); ++i) {
        const std::string who = "c" + std::to_string(i % 5);
        tailor_request_view req = testing::MakeRequest();
        req.customer_id = who.c_str();
        req.known_customer = 1;
        if (!p->Score(req, c.data(), c.size(), scores.data(), reasons.data(), 128).ok()) ++bad;
        for (float s : scores)
          if (!(s == TAILOR_SCORE_ABSTAIN || (s >= 0 && s <= 1))) ++bad;
      }
    });
  }
  threads[0].join();
  threads[1].join();
  stop = true;
  threads[2].join();
  threads[3].join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(p->counters().observe_errors.load(), 0u);
  ExpectWellFormed(ScoreAll(*p, HarnessCandidates()), HarnessCandidates().size(), 128);
}

TEST_P(PluginContract, ConcurrentScoreCalls) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const auto expected = ScoreAll(*p, HarnessCandidates());
  ASSERT_TRUE(expected.status.ok());
  constexpr int kThreads = 4, kCalls = 200;
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        auto r = ScoreAll(*p, HarnessCandidates());
        if (!r.status.ok() || r.scores != expected.scores || r.reasons != expected.reasons)
          ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(p->counters().score_calls.load(), 1u + kThreads * kCalls);
}

// A plugin offering similarities: symmetric, in [0, 1], nothing for ids it
// does not know or empty ones, the same answer from concurrent calls.
TEST_P(PluginContract, SimilaritiesAreSymmetricAndConcurrent) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const char* ids[] = {"i0", "i1", "i2", "i3", "unknown_item", ""};
  constexpr size_t n = 6;
  std::vector<float> sim(n * n);
  if (!p->can_similarity()) {
    EXPECT_FALSE(p->Similarity(ids, n, sim.data()).ok());
    EXPECT_EQ(p->counters().similarity_calls.load(), 0u);
    return;
  }
  Status st = p->Similarity(ids, n, sim.data());
  ASSERT_TRUE(st.ok()) << st.message();
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      EXPECT_EQ(sim[i * n + j], sim[j * n + i]) << i << "," << j;
      EXPECT_GE(sim[i * n + j], 0.0f);
      EXPECT_LE(sim[i * n + j], 1.0f);
      if (i >= 4 || j >= 4) {
        EXPECT_EQ(sim[i * n + j], 0.0f) << i << "," << j;
      }
    }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      std::vector<float> mine(n * n);
      for (int k = 0; k < 100; ++k)
        if (!p->Similarity(ids, n, mine.data()).ok() || mine != sim) ++mismatches;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Builtin, PluginContract, ::testing::ValuesIn(BuiltinPlugins()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });
// An empty plugin directory is reported by the test below, not by GoogleTest.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PluginContract);

TEST(PluginContractHarness, FindsTheBuiltinPlugins) {
  const auto names = BuiltinPlugins();
  EXPECT_NE(std::find(names.begin(), names.end(), "popularity"), names.end())
      << "no tailor_popularity.so in " << TAILOR_PLUGIN_DIR;
}

}  // namespace
}  // namespace tailor
