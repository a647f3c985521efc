// Journeys: YAML validation with file:line:col, triggers, stage restrictions,
// contact caps, outbound steps after a simulated delay and across a restart.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "config/config.h"
#include "journeys/journeys.h"
#include "journeys/runtime.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

using testing::TempDir;

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kT0 = 1'790'000'000'000;  // 2026-09-21, an arbitrary "now"

const std::set<std::string> kOffers = {"o_phone_upgrade", "o_accessory_addon", "o_loyalty_app",
                                       "o_audio_week"};

const char* kShop = R"yaml(name: shop
stages:
  - name: awareness
    offers: [o_loyalty_app]
    categories: [phones]
  - name: consideration
    channels: [web, email]
    caps:
      - {channel: email, max: 2, per: 7d}
  - name: purchase
    steps:
      - {name: accessory_email, delay: 2d, channel: email, offer: o_accessory_addon}
  - name: quiet
    steps:
      - {name: winback, delay: 0d, channel: email, offer: o_audio_week, requires_stage: true}
entry:
  - event: view
    stage: awareness
transitions:
  - {from: awareness, to: consideration, event: click, category: phones}
  - {to: purchase, event: purchase, min_value: 100}
  - {from: purchase, to: quiet, inactive: 30d}
  - {exit: true, event: return}
)yaml";

std::vector<std::string> Errors(const std::string& text) {
  std::vector<std::string> errors;
  auto j = Journeys::FromSources({{"journeys/bad.yaml", text}}, kOffers, &errors);
  EXPECT_EQ(j, nullptr);
  return errors;
}

bool HasError(const std::vector<std::string>& errors, const std::string& text) {
  for (const auto& e : errors)
    if (e == text) return true;
  ADD_FAILURE() << "missing error: " << text << "\ngot:\n"
                << [&] {
                     std::string s;
                     for (const auto& e : errors) s += "  " + e + "\n";
                     return s;
                   }();
  return false;
}

TEST(JourneyConfig, UnknownKeyListsTheValidOnes) {
  auto errors = Errors(
      "name: x\nstages:\n  - name: a\n    offerz: [o_loyalty_app]\n"
      "entry:\n  - event: view\n");
  HasError(errors,
           "journeys/bad.yaml:4:5: stages[0].offerz: unknown key (valid: name, description, "
           "offers, categories, channels, caps, steps)");
}

TEST(JourneyConfig, UnknownOfferListsTheKnownOnes) {
  auto errors = Errors(
      "name: x\nstages:\n  - name: a\n    offers: [o_loyalty_app, o_nope]\nentry:\n"
      "  - event: view\n");
  HasError(errors,
           "journeys/bad.yaml:4:29: stages[0].offers: unknown offer 'o_nope' (known: "
           "o_accessory_addon, o_audio_week, o_loyalty_app, o_phone_upgrade)");
}

TEST(JourneyConfig, BadDelayStageAndEventAreAllReported) {
  auto errors = Errors(R"yaml(name: x
stages:
  - name: a
    steps:
      - {name: s, delay: soon, channel: email, offer: o_loyalty_app}
entry:
  - {event: vist, stage: b}
transitions:
  - {to: a, inactive: 1d, event: view}
)yaml");
  HasError(errors,
           "journeys/bad.yaml:5:26: stages[0].steps[0].delay: expected a duration like 30m, 12h, "
           "2d or 1w, got 'soon'");
  HasError(errors,
           "journeys/bad.yaml:7:13: entry[0].event: unknown event type 'vist' (valid: view, "
           "click, add_to_cart, purchase, return, chat, search, impression, offer_click, "
           "convert, dismiss)");
  HasError(errors, "journeys/bad.yaml:7:26: entry[0].stage: unknown stage 'b' (stages: a)");
  HasError(errors,
           "journeys/bad.yaml:9:5: transitions[0].event: set exactly one of event: <type> or "
           "inactive: <duration>");
}

TEST(JourneyConfig, MissingDirectoryAndDuplicateNames) {
  std::vector<std::string> errors;
  EXPECT_EQ(Journeys::Load("/nonexistent/journeys", kOffers, &errors), nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/nonexistent/journeys:1:1: cannot read journeys directory"),
            std::string::npos);
  errors.clear();
  EXPECT_EQ(Journeys::FromSources({{"a.yaml", kShop}, {"b.yaml", kShop}}, kOffers, &errors),
            nullptr);
  HasError(errors, "b.yaml:1:7: name: journey 'shop' is already defined in a.yaml");
}

TEST(JourneyConfig, ShippedJourneysLoadAgainstShippedOffers) {
  std::vector<std::string> errors;
  std::vector<Offer> offers;
  ASSERT_TRUE(LoadOffers(std::string(TAILOR_SOURCE_DIR) + "/config/offers.yaml", &offers, &errors))
      << errors[0];
  std::set<std::string> ids;
  for (const auto& o : offers) ids.insert(o.id);
  auto j = Journeys::Load(std::string(TAILOR_SOURCE_DIR) + "/config/journeys", ids, &errors);
  ASSERT_NE(j, nullptr) << errors[0];
  ASSERT_NE(j->Find("welcome"), nullptr);
  ASSERT_NE(j->Find("post_purchase"), nullptr);
  EXPECT_EQ(j->Find("post_purchase")->stages[0].steps[0].delay_ms, 2 * kDay);
}

TEST(JourneyConfig, Durations) {
  EXPECT_EQ(ParseJourneyDuration("30s"), 30'000);
  EXPECT_EQ(ParseJourneyDuration("2d"), 2 * kDay);
  EXPECT_EQ(ParseJourneyDuration("1w"), 7 * kDay);
  EXPECT_EQ(ParseJourneyDuration("d"), std::nullopt);
  EXPECT_EQ(ParseJourneyDuration("2 d"), std::nullopt);
  EXPECT_EQ(ParseJourneyDuration("-1d"), std::nullopt);
}

class JourneyRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> errors;
    journeys_ = Journeys::FromSources({{"journeys/shop.yaml", kShop}}, kOffers, &errors);
    ASSERT_NE(journeys_, nullptr) << errors[0];
    std::string err;
    Store::Options o;
    o.path = dir_.file("t.db");
    o.synchronous_full = false;  // keeps the tests fast
    store_ = Store::Open(o, &err);
    ASSERT_NE(store_, nullptr) << err;
    Restart();
  }
  void Restart() {
    runtime_.reset();
    runtime_ = JourneyRuntime::Create(*store_);
    ASSERT_NE(runtime_, nullptr);
  }
  // Stores the event durably first, as the engine does, then hands it over.
  void Send(const std::string& customer, const std::string& type, int64_t ts,
            const std::string& category = {}, const std::string& channel = {}, double value = 0) {
    Event e;
    e.customer_id = customer;
    e.type = type;
    e.ts_ms = ts;
    e.channel = channel;
    e.value = value;
    ASSERT_TRUE(store_->AppendEvent(e).get().ok());
    Status s = runtime_->OnEvent(*journeys_, e, category);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  JourneyRuntime::Verdict Check(const std::string& customer, const std::string& channel,
                                const std::string& offer, const std::string& category,
                                int64_t now) {
    return runtime_->Check(*journeys_, customer, channel, offer, category, now);
  }
  std::string StageOf(const std::string& customer) {
    auto stages = runtime_->StagesOf(*journeys_, customer);
    return stages.empty() ? "" : stages[0].first + "/" + stages[0].second;
  }

  TempDir dir_;
  std::shared_ptr<const Journeys> journeys_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<JourneyRuntime> runtime_;
};

TEST_F(JourneyRuntimeTest, TriggersEnterAdvanceAndExit) {
  EXPECT_TRUE(Check("c1", "web", "o_phone_upgrade", "phones", kT0).journey.empty());
  Send("c1", "click", kT0, "phones");  // not an entry trigger
  EXPECT_EQ(StageOf("c1"), "");
  Send("c1", "view", kT0 + 1);
  EXPECT_EQ(StageOf("c1"), "shop/awareness");
  Send("c1", "click", kT0 + 2, "laptops");  // wrong category: stays
  EXPECT_EQ(StageOf("c1"), "shop/awareness");
  Send("c1", "click", kT0 + 3, "phones");
  EXPECT_EQ(StageOf("c1"), "shop/consideration");
  Send("c1", "purchase", kT0 + 4, "phones", "web", 50);  // below min_value
  EXPECT_EQ(StageOf("c1"), "shop/consideration");
  Send("c1", "purchase", kT0 + 5, "phones", "web", 150);
  EXPECT_EQ(StageOf("c1"), "shop/purchase");
  // State is written through: a new runtime on the same file sees it.
  Restart();
  EXPECT_EQ(StageOf("c1"), "shop/purchase");
  Send("c1", "return", kT0 + 6);
  EXPECT_EQ(StageOf("c1"), "");
  Send("c1", "view", kT0 + 7);  // reentry is off
  EXPECT_EQ(StageOf("c1"), "");
}

TEST_F(JourneyRuntimeTest, ABatchQueuesItsWritesAndWaitsForAllAtOnce) {
  std::vector<Event> events;
  for (const char* who : {"b1", "b2", "b3"}) {
    for (const char* type : {"view", "click"}) {
      Event e;
      e.customer_id = who;
      e.type = type;
      e.ts_ms = kT0 + static_cast<int64_t>(events.size());
      e.properties_json = R"({"category":"phones"})";
      ASSERT_TRUE(store_->AppendEvent(e).get().ok());
      events.push_back(e);
    }
  }
  {
    JourneyRuntime::Batch batch;
    // Each event sees the state the one before it left, though nothing is
    // written yet: the click moves the customer the view brought in.
    for (const Event& e : events)
      ASSERT_TRUE(runtime_->OnEvent(*journeys_, e, {}, {}, &batch).ok());
    EXPECT_EQ(StageOf("b2"), "shop/consideration");
    ASSERT_TRUE(batch.Wait().ok());
  }
  Restart();  // durable once Wait returned
  for (const char* who : {"b1", "b2", "b3"}) EXPECT_EQ(StageOf(who), "shop/consideration") << who;
}

TEST_F(JourneyRuntimeTest, StageRestrictsOffersCategoriesAndChannels) {
  Send("c1", "view", kT0);
  auto v = Check("c1", "web", "o_loyalty_app", "", kT0);
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.journey, "shop");
  EXPECT_EQ(v.stage, "awareness");
  EXPECT_TRUE(Check("c1", "web", "o_phone_upgrade", "phones", kT0).allowed);  // by category
  v = Check("c1", "web", "o_audio_week", "audio", kT0);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "journey shop, stage awareness: offer o_audio_week not allowed here");
  v = Check("c1", "web", "", "audio", kT0);  // an item candidate
  EXPECT_EQ(v.reason, "journey shop, stage awareness: category audio not allowed here");

  Send("c1", "click", kT0 + 1, "phones");
  v = Check("c1", "app", "o_audio_week", "audio", kT0 + 2);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason, "journey shop, stage consideration: channel app not allowed here");
  EXPECT_TRUE(Check("c1", "web", "o_audio_week", "audio", kT0 + 2).allowed);
  EXPECT_TRUE(Check("c2", "app", "o_audio_week", "audio", kT0 + 2).allowed);  // in no journey
}

// Item placements are judged too. A stage's `offers` names offers, so it
// neither admits nor refuses an item; its categories, channels and contact
// caps apply to items as to offers.
TEST_F(JourneyRuntimeTest, ItemsAreHeldToCategoriesChannelsAndCapsButNotOfferLists) {
  std::vector<std::string> errors;
  journeys_ = Journeys::FromSources({{"journeys/items.yaml", R"yaml(name: items
stages:
  - name: intro
    offers: [o_loyalty_app]
    caps:
      - {channel: web, max: 1, per: 1d}
  - name: audio_only
    categories: [audio]
    channels: [web]
entry:
  - event: view
transitions:
  - {from: intro, to: audio_only, event: click}
)yaml"}},
                                    kOffers, &errors);
  ASSERT_NE(journeys_, nullptr) << errors[0];
  Send("c1", "view", kT0);
  // Only offers are held to the offer list: every item passes.
  EXPECT_FALSE(Check("c1", "web", "o_audio_week", "audio", kT0).allowed);
  auto v = Check("c1", "web", "", "audio", kT0);
  EXPECT_TRUE(v.allowed) << v.reason;
  EXPECT_EQ(v.stage, "intro");
  EXPECT_TRUE(Check("c1", "web", "", "", kT0).allowed);  // an item without a category
  // The web cap counts item impressions and then refuses items too.
  Send("c1", "impression", kT0 + 10, "", "web");
  v = Check("c1", "web", "", "audio", kT0 + 20);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason,
            "journey items, stage intro: contact cap reached: at most 1 web contacts per 1d (1 "
            "so far)");
  // A stage with categories holds items to them, and its channels apply.
  Send("c1", "click", kT0 + 30);
  EXPECT_TRUE(Check("c1", "web", "", "audio", kT0 + 40).allowed);
  v = Check("c1", "web", "", "phones", kT0 + 40);
  EXPECT_EQ(v.reason, "journey items, stage audio_only: category phones not allowed here");
  v = Check("c1", "app", "", "audio", kT0 + 40);
  EXPECT_EQ(v.reason, "journey items, stage audio_only: channel app not allowed here");
}

TEST_F(JourneyRuntimeTest, ContactCapsCountImpressionsPerChannelAndWindow) {
  Send("c1", "view", kT0);
  Send("c1", "click", kT0 + 1, "phones");
  Send("c1", "impression", kT0 + 10, "", "email");
  Send("c1", "impression", kT0 + 10, "", "email");  // same instant: one contact
  Send("c1", "impression", kT0 + 20, "", "web");    // other channel
  EXPECT_TRUE(Check("c1", "email", "o_audio_week", "audio", kT0 + 30).allowed);
  Send("c1", "impression", kT0 + kDay, "", "email");
  auto v = Check("c1", "email", "o_audio_week", "audio", kT0 + kDay + 1);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.reason,
            "journey shop, stage consideration: contact cap reached: at most 2 email contacts "
            "per 7d (2 so far)");
  EXPECT_TRUE(Check("c1", "web", "o_audio_week", "audio", kT0 + kDay + 1).allowed);
  // Contacts are read back from the events table after a restart.
  Restart();
  EXPECT_FALSE(Check("c1", "email", "o_audio_week", "audio", kT0 + kDay + 1).allowed);
  // Seven days after the first one, the window has room again.
  EXPECT_TRUE(Check("c1", "email", "o_audio_week", "audio", kT0 + 7 * kDay + 10).allowed);
}

TEST_F(JourneyRuntimeTest, OutboundStepIsDueOnlyAfterItsDelayAndOnlyOnce) {
  Send("c1", "view", kT0);
  Send("c1", "purchase", kT0 + 1000, "phones", "web", 500);
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + kDay, 100).empty());
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 1000 + 2 * kDay - 1, 100).empty());
  auto due = runtime_->TakeDue(*journeys_, kT0 + 1000 + 2 * kDay, 100);
  ASSERT_EQ(due.size(), 1u);
  auto msg = nlohmann::json::parse(due[0]);
  EXPECT_EQ(msg["v"], 1);
  EXPECT_EQ(msg["type"], "outbound");
  EXPECT_EQ(msg["customer"], "c1");
  EXPECT_EQ(msg["journey"], "shop");
  EXPECT_EQ(msg["stage"], "purchase");
  EXPECT_EQ(msg["step"], "accessory_email");
  EXPECT_EQ(msg["channel"], "email");
  EXPECT_EQ(msg["offer"], "o_accessory_addon");
  EXPECT_EQ(msg["due_ms"], kT0 + 1000 + 2 * kDay);
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 10 * kDay, 100).empty());
}

TEST_F(JourneyRuntimeTest, PendingStepsSurviveARestartAndAreTakenOnce) {
  for (int i = 0; i < 3; ++i) {
    std::string c = "c" + std::to_string(i);
    Send(c, "view", kT0);
    Send(c, "purchase", kT0 + i, "phones", "web", 500);
  }
  Restart();  // as if tailord stopped and started again
  auto due = runtime_->TakeDue(*journeys_, kT0 + 3 * kDay, 2);  // max honoured
  EXPECT_EQ(due.size(), 2u);
  Restart();
  auto rest = runtime_->TakeDue(*journeys_, kT0 + 3 * kDay, 100);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(rest[0])["customer"], "c2");
  Restart();
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 30 * kDay, 100).empty());
}

TEST_F(JourneyRuntimeTest, StepsAreCancelledWhenTheCustomerLeftOrRefusedTheChannel) {
  Send("c1", "view", kT0);
  Send("c1", "purchase", kT0, "phones", "web", 500);
  Send("c1", "return", kT0 + kDay);  // left the journey before the step was due
  ASSERT_TRUE(store_->UpsertCustomer(Customer{"c2", "{}", R"({"email":false})", 1, 1}).ok());
  Send("c2", "view", kT0);
  Send("c2", "purchase", kT0, "phones", "web", 500);
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 3 * kDay, 100).empty());
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 30 * kDay, 100).empty());
}

TEST_F(JourneyRuntimeTest, InactivityMovesTheCustomerAndSchedulesItsSteps) {
  Send("c1", "view", kT0);
  Send("c1", "purchase", kT0, "phones", "web", 500);
  ASSERT_EQ(runtime_->TakeDue(*journeys_, kT0 + 2 * kDay, 100).size(), 1u);  // accessory
  Send("c1", "view", kT0 + 20 * kDay);  // active again: the 30 days restart from here
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 31 * kDay, 100).empty());
  EXPECT_EQ(StageOf("c1"), "shop/purchase");
  Restart();  // the re-armed timer is in the store too
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 50 * kDay - 1, 100).empty());
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 50 * kDay, 100).empty());  // moves
  EXPECT_EQ(StageOf("c1"), "shop/quiet");
  auto due = runtime_->TakeDue(*journeys_, kT0 + 50 * kDay, 100);  // winback, delay 0
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(due[0])["step"], "winback");
}

TEST_F(JourneyRuntimeTest, OutboundStepsWaitForACap) {
  std::vector<std::string> errors;
  journeys_ = Journeys::FromSources({{"capped.yaml", R"yaml(name: capped
stages:
  - name: only
    caps: [{channel: email, max: 1, per: 7d}]
    steps:
      - {name: a, delay: 1d, channel: email, offer: o_loyalty_app}
      - {name: b, delay: 1d, channel: email, offer: o_audio_week}
entry: [{event: view}]
)yaml"}},
                                    kOffers, &errors);
  ASSERT_NE(journeys_, nullptr) << errors[0];
  Send("c1", "view", kT0);
  auto first = runtime_->TakeDue(*journeys_, kT0 + kDay, 100);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(first[0])["step"], "a");
  EXPECT_TRUE(runtime_->TakeDue(*journeys_, kT0 + 2 * kDay, 100).empty());  // moved to +8d
  auto second = runtime_->TakeDue(*journeys_, kT0 + 8 * kDay, 100);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(second[0])["step"], "b");
}

TEST_F(JourneyRuntimeTest, ConcurrentChecksDuringEvents) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  std::atomic<int> checks{0};
  for (int w = 0; w < 3; ++w) {
    workers.emplace_back([&, w] {
      while (!stop.load()) {
        std::string c = "c" + std::to_string((checks.fetch_add(1) + w) % 20);
        runtime_->Check(*journeys_, c, "web", "o_audio_week", "audio", kT0 + kDay);
        runtime_->StagesOf(*journeys_, c);
      }
    });
  }
  for (int i = 0; i < 20; ++i) Send("c" + std::to_string(i), "view", kT0 + i);
  stop = true;
  for (auto& t : workers) t.join();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(StageOf("c" + std::to_string(i)), "shop/awareness");
  EXPECT_GT(checks.load(), 0);
}

}  // namespace
}  // namespace tailor
