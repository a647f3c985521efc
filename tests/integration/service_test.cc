// Integration tests: a real tailord process on a temp SQLite store, real
// ZeroMQ sockets on OS-picked ports, the real popularity plugin .so.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <chrono>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <thread>
#include <zmq_addon.hpp>

#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

json Decide(const std::string& id, const std::string& customer, int limit = 3,
            const std::string& placement = "home") {
  json j = {{"v", 1},           {"type", "decide"},       {"id", id},
            {"channel", "web"}, {"placement", placement}, {"limit", limit}};
  if (!customer.empty()) j["customer"] = customer;
  return j;
}

json EventMsg(const std::string& id, const std::string& customer, const std::string& type,
              const std::string& item) {
  return {{"v", 1},        {"type", "event"}, {"id", id}, {"customer", customer},
          {"event", type}, {"item", item}};
}

int64_t CountRows(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
  int64_t n = -1;
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

// Holds the store's SQLite write lock (BEGIN IMMEDIATE on a connection of
// the test's own) until Release or destruction: tailord can commit nothing.
class StoreWriteLock {
 public:
  explicit StoreWriteLock(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) == SQLITE_OK)
      held_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~StoreWriteLock() { Release(); }
  bool held() const { return held_; }
  bool Release() {
    bool ok = !held_ || sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK;
    held_ = false;
    sqlite3_close(db_);
    db_ = nullptr;
    return ok;
  }

 private:
  sqlite3* db_ = nullptr;
  bool held_ = false;
};

// A DEALER on the request socket for pipelined events: no send or receive
// limit (ZeroMQ would drop replies past one), a 10 s receive timeout.
zmq::socket_t EventDealer(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::rcvtimeo, 10000);
  s.set(zmq::sockopt::sndhwm, 0);
  s.set(zmq::sockopt::rcvhwm, 0);
  s.connect(endpoint);
  return s;
}

class Service : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = dir_.file("tailor.db");
    MakeSmallWorld(store_);
  }
  std::unique_ptr<Tailord> Start(std::vector<std::string> extra = {}, std::string config = "") {
    return std::make_unique<Tailord>(Tailord::Options{config, store_, extra});
  }
  // A config with popularity and the gated_train fixture in the background
  // (its train and load wait for the file `gate`) on a home placement with
  // two offers; returns the config's path.
  std::string GatedTrainConfig(const std::string& gate) {
    const std::string config = dir_.file("tailor.yaml");
    WriteFile(config, std::string("plugins:\n") + ShippedPluginYaml("popularity") +
                          FixturePluginYaml("gated_train",
                                            "    train_in_background: true\n"
                                            "    config: {gate: \"" +
                                                gate + "\"}\n") +
                          "placements:\n  home: {kind: offers}\noffers: offers.yaml\n");
    WriteFile(dir_.file("offers.yaml"), R"(offers:
  - {id: o1, promotes: {category: phones}, value: 10}
  - {id: o2, promotes: {category: laptops}, value: 20}
)");
    return config;
  }
  // Waits until health says plugin is ok; returns its last status.
  static std::string AwaitPluginOk(Client& c, const std::string& plugin) {
    std::string status;
    for (int i = 0; i < 600 && status != "ok"; ++i) {
      status =
          c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}})["health"]["plugins"][plugin].value(
              "status", "");
      if (status != "ok") std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return status;
  }
  TempDir dir_;
  std::string store_;
};

TEST_F(Service, DecideReturnsRankedOffersWithEveryFactor) {
  auto d = Start();
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  json r = c.Call(Decide("r1", "c3", 3));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["v"], 1);
  EXPECT_EQ(r["id"], "r1");
  EXPECT_TRUE(r["personalised"].get<bool>());
  ASSERT_EQ(r["offers"].size(), 3u);
  double last = 1e9;
  for (const json& o : r["offers"]) {
    const json& why = o["why"];
    // Each factor is checked against config in PriorityIsTheProductOfFactorsFromConfig.
    for (const char* factor : {"propensity", "context", "value", "levers", "priority"})
      EXPECT_TRUE(why[factor].is_number()) << factor << " missing: " << why.dump();
    EXPECT_NEAR(o["score"].get<double>(), why["priority"].get<double>(), 1e-12);
    EXPECT_LE(o["score"].get<double>(), last);
    last = o["score"];
    ASSERT_TRUE(why["plugins"].contains("popularity")) << why.dump();
    EXPECT_DOUBLE_EQ(why["plugins"]["popularity"]["weight"].get<double>(), 0.1);  // tailor.yaml
    EXPECT_TRUE(o.contains("offer"));
  }
  // The decision is in the audit log of the real SQLite file.
  EXPECT_EQ(d->Terminate(), 0);
  EXPECT_EQ(CountRows(store_, "SELECT count(*) FROM decisions WHERE id='" +
                                  r["decision"].get<std::string>() + "'"),
            1);
}

// priority = P x C x V x L with every factor known from the test's own
// config, not read back from the reply: P from two fixture plugins of known
// scores and weights (one out of range, so the host's clamping shows), C from
// the placement and offer channel weights, V from the offers' values and the
// placement's value exponent, L from a rule with a known lever.
TEST_F(Service, PriorityIsTheProductOfFactorsFromConfig) {
  WriteFile(dir_.file("offers.yaml"), R"(offers:
  - {id: o_a, name: A, promotes: {category: phones}, value: 100, channel_weights: {web: 1.5}}
  - {id: o_b, name: B, promotes: {category: laptops}, value: 50}
  - {id: o_c, name: C, promotes: {category: audio}, value: 25}
)");
  std::filesystem::create_directories(dir_.file("rules"));
  WriteFile(dir_.file("rules/boost.lua"),
            "rule { name = 'boost', score = function(offer) if offer.id == 'o_b' then return 2, "
            "'campaign' end end }\n");
  const std::string config = dir_.file("tailor.yaml");
  WriteFile(config, "plugins:\n" + FixturePluginYaml("good", "    weight: 2\n") +
                        FixturePluginYaml("out_of_range", "    weight: 1\n") + R"(placements:
  home: {kind: offers, weight: 1.2, value_exponent: 0.5}
rules: rules
offers: offers.yaml
)");
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  json r = c.Call(Decide("p", "c3", 3));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  // good scores 0.5 everywhere; out_of_range returns 3.5, -1 and 0.25 for the
  // candidates in catalog order, which the host clamps to 1, 0 and 0.25.
  struct Expected {
    const char* id;
    double out_of_range, P, C, V, L;
  };
  const Expected expected[] = {
      {"o_a", 1.0, (2 * 0.5 + 1.0) / 3, 1.2 * 1.5, 1.0, 1.0},           // priority 1.2
      {"o_b", 0.0, (2 * 0.5 + 0.0) / 3, 1.2, std::sqrt(0.5), 2.0},      // 0.5657
      {"o_c", 0.25, (2 * 0.5 + 0.25) / 3, 1.2, std::sqrt(0.25), 1.0}};  // 0.25
  ASSERT_EQ(r["offers"].size(), 3u) << r.dump();
  for (size_t k = 0; k < 3; ++k) {
    const Expected& e = expected[k];
    const json& o = r["offers"][k];
    SCOPED_TRACE(e.id);
    ASSERT_EQ(o["offer"], e.id) << r.dump();
    const json& why = o["why"];
    EXPECT_DOUBLE_EQ(why["plugins"]["out_of_range"]["score"].get<double>(), e.out_of_range);
    EXPECT_NEAR(why["propensity"].get<double>(), e.P, 1e-6);
    EXPECT_NEAR(why["context"].get<double>(), e.C, 1e-12);
    EXPECT_NEAR(why["value"].get<double>(), e.V, 1e-12);
    EXPECT_NEAR(why["levers"].get<double>(), e.L, 1e-12);
    EXPECT_NEAR(o["score"].get<double>(), e.P * e.C * e.V * e.L, 1e-6);
  }
}

TEST_F(Service, ItemPlacementRecommendsTheMostPopularItemFirst) {
  auto d = Start();
  Client c(d->requests());
  // A newcomer gets the most popular item first...
  json r = c.Call(Decide("r", "newcomer", 5, "recs"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  ASSERT_EQ(r["offers"].size(), 5u);
  EXPECT_EQ(r["offers"][0]["item"], "i1");
  EXPECT_EQ(r["candidates"], 30);
  // ...but c2, who just bought it, does not (rules/10_no_repeat_purchase.lua).
  json mine = c.Call(Decide("m", "c2", 5, "recs"));
  ASSERT_EQ(mine["offers"].size(), 5u);
  for (const json& o : mine["offers"]) EXPECT_NE(o["item"], "i1");
}

TEST_F(Service, UnknownAndOptedOutCustomersGetNonPersonalisedAnswers) {
  auto d = Start();
  Client c(d->requests());
  json stranger = c.Call(Decide("a", "nobody-knows-me"));
  ASSERT_FALSE(stranger.contains("error")) << stranger.dump();
  EXPECT_FALSE(stranger["personalised"].get<bool>());
  EXPECT_EQ(stranger["offers"].size(), 3u);
  json opted_out = c.Call(Decide("b", "c20"));
  EXPECT_FALSE(opted_out["personalised"].get<bool>());
  json anonymous = c.Call(Decide("c", ""));
  EXPECT_FALSE(anonymous["personalised"].get<bool>());
  EXPECT_EQ(anonymous["offers"].size(), 3u);
}

TEST_F(Service, EventThenProfileShowsIt) {
  auto d = Start();
  Client c(d->requests());
  json ack = c.Call(EventMsg("e1", "c42", "click", "i9"));
  EXPECT_EQ(ack["ok"], true) << ack.dump();
  EXPECT_EQ(ack["id"], "e1");
  json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c42"}});
  ASSERT_TRUE(p.contains("profile")) << p.dump();
  EXPECT_TRUE(p["profile"]["known"].get<bool>());
  EXPECT_EQ(p["profile"]["counts"]["click"], 1);
  ASSERT_EQ(p["profile"]["recent"].size(), 1u);
  EXPECT_EQ(p["profile"]["recent"][0]["item"], "i9");
}

TEST_F(Service, EventsPersistAcrossRestart) {
  {
    auto d = Start();
    Client c(d->requests());
    for (int i = 0; i < 5; ++i)
      ASSERT_EQ(c.Call(EventMsg("e" + std::to_string(i), "c7", "view", "i3"))["ok"], true);
    // And fire-and-forget events on the PULL socket.
    zmq::context_t ctx(1);
    zmq::socket_t push(ctx, zmq::socket_type::push);
    push.connect(d->events());
    for (int i = 0; i < 7; ++i) {
      std::string body = EventMsg("", "c7", "add_to_cart", "i4").dump();
      push.send(zmq::buffer(body), zmq::send_flags::none);
    }
    // An events batch is accepted on the PULL socket too.
    json batch = {{"v", 1}, {"type", "events"}, {"events", json::array()}};
    for (int i = 0; i < 3; ++i) {
      json e = EventMsg("", "c7", "add_to_cart", "i4");
      for (const char* k : {"v", "type", "id"}) e.erase(k);
      batch["events"].push_back(e);
    }
    push.send(zmq::buffer(batch.dump()), zmq::send_flags::none);
    // Wait until the pushed events are visible, then stop cleanly.
    for (int tries = 0; tries < 200; ++tries) {
      json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c7"}});
      if (p["profile"]["counts"].value("add_to_cart", 0) == 10) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(d->Terminate(), 0);
  }
  auto d = Start();
  Client c(d->requests());
  json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c7"}});
  EXPECT_EQ(p["profile"]["counts"]["view"], 5);
  EXPECT_EQ(p["profile"]["counts"]["add_to_cart"], 10);
  EXPECT_EQ(p["profile"]["counts"]["purchase"], 5);  // from the world
}

TEST_F(Service, StatsTimeEveryStageOfEveryDecision) {
  auto d = Start();
  Client c(d->requests());
  constexpr int kDecides = 5;
  for (int i = 0; i < kDecides; ++i) {
    json r = c.Call(Decide("r" + std::to_string(i), "c1"));
    ASSERT_FALSE(r.contains("error")) << r.dump();
  }
  json lat = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"]["latency_us"];
  const json& stages = lat["stages"];
  const std::vector<std::string> names = {"profile", "candidates", "score",  "respond",
                                          "judge",   "arbitrate",  "finish", "record"};
  ASSERT_EQ(stages.size(), names.size()) << stages.dump();
  double sum_of_means = 0;
  for (const std::string& n : names) {
    ASSERT_TRUE(stages.contains(n)) << n;
    EXPECT_EQ(stages[n]["count"], kDecides) << n;
    sum_of_means += stages[n]["mean"].get<double>();
  }
  // The stages are parts of a decision: together no longer than the whole.
  EXPECT_EQ(lat["decide"]["count"], kDecides);
  EXPECT_LE(sum_of_means, lat["decide"]["mean"].get<double>() + 1.0);
  EXPECT_GT(stages["score"]["mean"].get<double>() + stages["judge"]["mean"].get<double>(), 0);
}

TEST_F(Service, DecisionsDoNotWaitForEventsBeingStored) {
  // One worker, and the store's write lock held by this test: the
  // acknowledged event below cannot be committed, yet decisions keep being
  // answered; once the lock is released, the event is acknowledged.
  auto d = Start({"--workers", "1"});
  StoreWriteLock lock(store_);
  ASSERT_TRUE(lock.held());
  zmq::context_t ctx(1);
  zmq::socket_t events = EventDealer(ctx, d->requests());
  std::string body = EventMsg("held", "c1", "view", "i3").dump();
  events.send(zmq::buffer(body), zmq::send_flags::none);
  Client c(d->requests());
  for (int i = 0; i < 3; ++i) {
    json r = c.Call(Decide("d" + std::to_string(i), "c2"));
    EXPECT_FALSE(r.contains("error")) << r.dump();
  }
  // Not acknowledged while it cannot be stored.
  zmq::pollitem_t items[] = {{events.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::poll(items, 1, std::chrono::milliseconds(0));
  EXPECT_EQ(items[0].revents & ZMQ_POLLIN, 0);
  ASSERT_TRUE(lock.Release());
  zmq::message_t reply;
  ASSERT_TRUE(events.recv(reply));
  json ack = json::parse(reply.to_string());
  EXPECT_EQ(ack["id"], "held");
  EXPECT_EQ(ack["ok"], true) << ack.dump();
  EXPECT_EQ(d->Terminate(), 0);
}

TEST_F(Service, AFullIngestLaneAnswersUnavailableAndLosesNothingAcknowledged) {
  // The store's write lock held by this test: nothing can be committed, the
  // ingest lane fills, and events beyond its bound are refused at once with
  // `unavailable`. Released, every acknowledged event is stored.
  auto d = Start({"--workers", "1"});
  StoreWriteLock lock(store_);
  ASSERT_TRUE(lock.held());
  zmq::context_t ctx(1);
  zmq::socket_t events = EventDealer(ctx, d->requests());
  constexpr int kSent = 400;
  for (int i = 0; i < kSent; ++i) {
    std::string body = EventMsg("e" + std::to_string(i), "lane", "view", "i3").dump();
    events.send(zmq::buffer(body), zmq::send_flags::none);
  }
  // The refusals come back while the lock is still held.
  int unavailable = 0;
  zmq::message_t reply;
  for (;;) {
    zmq::pollitem_t items[] = {{events.handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 1, std::chrono::milliseconds(unavailable == 0 ? 5000 : 500));
    if (!(items[0].revents & ZMQ_POLLIN)) break;
    ASSERT_TRUE(events.recv(reply));
    json r = json::parse(reply.to_string());
    ASSERT_TRUE(r.contains("error")) << r.dump();  // nothing is stored yet
    EXPECT_EQ(r["error"]["code"], "unavailable");
    ++unavailable;
  }
  EXPECT_GT(unavailable, 0);
  EXPECT_LT(unavailable, kSent);
  ASSERT_TRUE(lock.Release());
  int ok = 0;
  for (int i = unavailable; i < kSent; ++i) {
    ASSERT_TRUE(events.recv(reply)) << "reply " << i << " missing";
    json r = json::parse(reply.to_string());
    EXPECT_EQ(r.value("ok", false), true) << r.dump();
    ok += r.value("ok", false);
  }
  EXPECT_EQ(d->Terminate(), 0);
  EXPECT_EQ(CountRows(store_,
                      "SELECT COUNT(*) FROM events WHERE customer_id='lane' AND "
                      "type='view'"),
            ok);
}

TEST_F(Service, EventBatchIsAcknowledgedOnceStoredAndSurvivesRestart) {
  int before = 0;
  {
    auto d = Start();
    Client c(d->requests());
    json p0 = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c8"}});
    before = p0["profile"]["counts"].value("view", 0);
    json events = json::array();
    for (int i = 0; i < 300; ++i)
      events.push_back({{"customer", "c8"}, {"event", "view"}, {"item", "i" + std::to_string(i)}});
    json ack = c.Call({{"v", 1}, {"type", "events"}, {"id", "b1"}, {"events", events}});
    EXPECT_EQ(ack["ok"], true) << ack.dump();
    EXPECT_EQ(ack["stored"], 300);
    // One bad event refuses the whole batch, naming it.
    events[7]["event"] = "teleport";
    json bad = c.Call({{"v", 1}, {"type", "events"}, {"id", "b2"}, {"events", events}});
    ASSERT_TRUE(bad.contains("error")) << bad.dump();
    EXPECT_EQ(bad["error"]["field"], "events[7].event");
    EXPECT_EQ(bad["id"], "b2");
    EXPECT_EQ(d->Terminate(), 0);
  }
  auto d = Start();
  Client c(d->requests());
  json p = c.Call({{"v", 1}, {"type", "profile.get"}, {"id", "p"}, {"customer", "c8"}});
  EXPECT_EQ(p["profile"]["counts"]["view"].get<int>(), before + 300) << p["profile"]["counts"];
}

struct BadCase {
  std::string name;
  std::string body;
  std::string code;
  std::string field;
  std::string message_part;
};

TEST_F(Service, EveryBadInputGetsAStructuredErrorNamingTheField) {
  auto d = Start();
  Client c(d->requests());
  std::vector<BadCase> cases = {
      {"malformed json", R"({"v":1,"type":"decide",)", "bad_request", "", "not valid JSON"},
      {"not an object", R"([1,2,3])", "bad_request", "", "JSON object"},
      {"missing v", R"({"type":"health","id":"x"})", "bad_request", "v", "missing"},
      {"wrong version", R"({"v":2,"type":"health","id":"x"})", "unsupported_version", "v", "2"},
      {"unknown type", R"({"v":1,"type":"explode","id":"x"})", "unknown_type", "type", "explode"},
      {"customer wrong type",
       R"({"v":1,"type":"decide","id":"x","customer":42,"channel":"web","placement":"home"})",
       "bad_request", "customer", "must be a string"},
      {"limit wrong type",
       R"({"v":1,"type":"decide","id":"x","channel":"web","placement":"home","limit":"3"})",
       "bad_request", "limit", "integer"},
      {"limit out of range",
       R"({"v":1,"type":"decide","id":"x","channel":"web","placement":"home","limit":0})",
       "bad_request", "limit", "between"},
      {"missing channel", R"({"v":1,"type":"decide","id":"x","placement":"home"})", "bad_request",
       "channel", "missing"},
      {"missing placement", R"({"v":1,"type":"decide","id":"x","channel":"web"})", "bad_request",
       "placement", "missing"},
      {"unknown placement",
       R"({"v":1,"type":"decide","id":"x","channel":"web","placement":"nowhere"})", "bad_request",
       "placement", "known: "},
      {"context not object",
       R"({"v":1,"type":"decide","id":"x","channel":"web","placement":"home","context":[1]})",
       "bad_request", "context", "object"},
      {"typo field",
       R"({"v":1,"type":"decide","id":"x","custmer":"c1","channel":"web","placement":"home"})",
       "bad_request", "custmer", "unknown field"},
      {"event missing customer", R"({"v":1,"type":"event","id":"x","event":"click"})",
       "bad_request", "customer", "missing"},
      {"event unknown kind", R"({"v":1,"type":"event","id":"x","customer":"c1","event":"poke"})",
       "bad_request", "event", "poke"},
      {"event bad ts",
       R"({"v":1,"type":"event","id":"x","customer":"c1","event":"click","ts":"yesterday"})",
       "bad_request", "ts", "ISO 8601"},
      {"profile missing customer", R"({"v":1,"type":"profile.get","id":"x"})", "bad_request",
       "customer", "missing"},
      {"oversized", R"({"v":1,"type":"health","id":"x","pad":")" + std::string(70000, 'a') + "\"}",
       "too_large", "", "limit"},
  };
  for (const BadCase& bc : cases) {
    std::string raw = c.CallRaw(bc.body);
    json r = json::parse(raw, nullptr, false);
    ASSERT_TRUE(r.is_object()) << bc.name << ": " << raw;
    ASSERT_TRUE(r.contains("error")) << bc.name << ": " << raw;
    EXPECT_EQ(r["v"], 1) << bc.name;
    EXPECT_EQ(r["error"]["code"], bc.code) << bc.name << ": " << raw;
    EXPECT_EQ(r["error"]["field"], bc.field) << bc.name << ": " << raw;
    EXPECT_NE(r["error"]["message"].get<std::string>().find(bc.message_part), std::string::npos)
        << bc.name << ": " << raw;
  }
  // The id is echoed whenever it could be read.
  json r = c.Call({{"v", 1}, {"type", "decide"}, {"id", "keep-me"}, {"placement", "home"}});
  EXPECT_EQ(r["id"], "keep-me");
  // The same connection and a fresh one still work, and the errors were counted.
  EXPECT_FALSE(c.Call(Decide("ok", "c1")).contains("error"));
  Client other(d->requests());
  json stats = other.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_GE(stats["stats"]["errors"]["bad_request"].get<int>(), 14);
  EXPECT_EQ(stats["stats"]["errors"]["too_large"], 1);
  EXPECT_EQ(stats["stats"]["errors"]["unknown_type"], 1);
  // Parsed decides only: the unknown placement and the good one.
  EXPECT_EQ(stats["stats"]["requests"]["decide"], 2);
}

TEST_F(Service, EightConcurrentClientsAreAllServed) {
  auto d = Start();
  constexpr int kClients = 8, kEach = 50;
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kClients; ++t) {
    ts.emplace_back([&, t] {
      Client c(d->requests());
      for (int i = 0; i < kEach; ++i) {
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        json r = c.Call(Decide(id, "c" + std::to_string(1 + (t + i) % 19)));
        // Every decide is answered as itself (the shipped frequency cap may
        // leave a customer decided 20 times with fewer than 3 offers).
        if (r.is_object() && r.value("id", "") == id && r.contains("decision") &&
            r["offers"].is_array() && !r.contains("error"))
          ++ok;
        else
          ++bad;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), kClients * kEach);
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(Service, PipelinedDealerRequestsAreAllAnswered) {
  auto d = Start();
  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::rcvtimeo, 10000);
  dealer.connect(d->requests());
  constexpr int kN = 100;
  for (int i = 0; i < kN; ++i) {
    std::string body = Decide("p" + std::to_string(i), "c5").dump();
    dealer.send(zmq::buffer(body), zmq::send_flags::none);
  }
  std::set<std::string> ids;
  for (int i = 0; i < kN; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(dealer.recv(m)) << "reply " << i << " missing";
    json r = json::parse(m.to_string());
    ids.insert(r["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kN));
}

TEST_F(Service, LoneRequestsAreAnsweredInlineAndBurstsByTheWorkers) {
  auto d = Start();
  Client c(d->requests());
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(c.Call(Decide("s" + std::to_string(i), "c2"))["id"], "s" + std::to_string(i));
  json st = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  // One client, one request at a time: the I/O thread answers them itself.
  EXPECT_GE(st["stats"]["counters"].value("service.inline", 0), 10) << st.dump();
  // A reload may load models for seconds: always a worker's job.
  const int to_workers = st["stats"]["counters"].value("service.to_workers", 0);
  ASSERT_TRUE(c.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "r"}}).value("reloaded", false));
  st = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_EQ(st["stats"]["counters"].value("service.to_workers", 0), to_workers + 1) << st.dump();

  // A pipelined burst queues up behind the first: the workers take it.
  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::rcvtimeo, 10000);
  dealer.connect(d->requests());
  for (int i = 0; i < 50; ++i)
    dealer.send(zmq::buffer(Decide("b" + std::to_string(i), "c3").dump()), zmq::send_flags::none);
  for (int i = 0; i < 50; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(dealer.recv(m)) << "reply " << i << " missing";
  }
  st = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_GE(st["stats"]["counters"].value("service.to_workers", 0), 1) << st.dump();
}

TEST_F(Service, HealthIsDegradedWhileAPluginHasFailed) {
  const std::string config =
      SmallConfig(dir_.path(), ShippedPluginYaml("popularity") + FixturePluginYaml("create_fails"));
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  json h = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}})["health"];
  EXPECT_EQ(h["status"], "degraded") << h.dump();
  ASSERT_EQ(h["problems"].size(), 1u) << h.dump();
  EXPECT_NE(h["problems"][0].get<std::string>().find("plugin create_fails failed"),
            std::string::npos)
      << h.dump();
  // Still serving, with the plugins that loaded.
  EXPECT_FALSE(c.Call(Decide("r", "c1")).contains("error"));
}

TEST_F(Service, APluginOverItsTimeBudgetIsDroppedThenDisabledUntilReload) {
  const std::string config = SmallConfig(
      dir_.path(), ShippedPluginYaml("popularity") +
                       FixturePluginYaml("slow", "    budget_us: 2000\n    max_overruns: 3\n"));
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  auto dropped = [&] {
    json r = c.Call(Decide("r", "c1"));
    EXPECT_FALSE(r.contains("error")) << r.dump();
    EXPECT_FALSE(r["offers"].empty()) << "the other plugins still decide";
    return r["offers"][0]["why"]["dropped"].value("slow", std::string());
  };
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(dropped().find("over its time budget"), std::string::npos) << i;
  // Three in a row: disabled, so no decision waits for it any more.
  EXPECT_NE(dropped().find("disabled after 3"), std::string::npos);
  json h = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}})["health"];
  EXPECT_EQ(h["status"], "degraded") << h.dump();
  EXPECT_EQ(h["plugins"]["slow"]["status"], "disabled") << h.dump();
  json st = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"];
  EXPECT_EQ(st["plugins"]["slow"]["score_overruns"], 3) << st.dump();
  EXPECT_EQ(st["plugins"]["slow"]["score_skipped"], 1) << st.dump();
  // A reload gives it another chance.
  ASSERT_FALSE(c.Call({{"v", 1}, {"type", "rules.reload"}, {"id", "r"}}).contains("error"));
  EXPECT_NE(dropped().find("over its time budget"), std::string::npos);
}

TEST_F(Service, ABacklogIsAnsweredOverloadedAtOnceAndTheServiceRecovers) {
  // One worker, 20 ms a decision (the slow fixture, no budget), room for 2.
  const std::string config =
      SmallConfig(dir_.path(), FixturePluginYaml("slow", "    budget_us: 0\n"),
                  "service: {workers: 1, inline_when_idle: false, max_in_flight: 2}\n");
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::rcvtimeo, 15000);
  dealer.connect(d->requests());
  constexpr int kBurst = 20;
  for (int i = 0; i < kBurst; ++i) {
    const std::string body = Decide("b" + std::to_string(i), "c1").dump();
    dealer.send(zmq::buffer(body), zmq::send_flags::none);
  }
  int ok = 0, overloaded = 0;
  for (int i = 0; i < kBurst; ++i) {
    zmq::message_t m;
    ASSERT_TRUE(dealer.recv(m)) << "reply " << i << " missing";
    json r = json::parse(m.to_string());
    if (!r.contains("error"))
      ++ok;
    else if (r["error"]["code"] == "overloaded")
      ++overloaded;
    else
      ADD_FAILURE() << r.dump();
  }
  EXPECT_EQ(ok + overloaded, kBurst);
  EXPECT_GE(ok, 1);
  EXPECT_GE(overloaded, 1) << "20 requests of 20 ms each against room for 2";
  Client c(d->requests());
  EXPECT_FALSE(c.Call(Decide("after", "c1")).contains("error")) << "recovered by itself";
  json st = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}})["stats"];
  EXPECT_EQ(st["errors"].value("overloaded", 0), overloaded) << st.dump();
}

TEST_F(Service, InlineHandlingCanBeTurnedOff) {
  std::string config = dir_.file("tailor.yaml");
  WriteFile(config, std::string(R"(
service: {workers: 1, inline_when_idle: false}
plugins:
)") + ShippedPluginYaml("popularity") +
                        R"(placements:
  home: {kind: offers}
offers: offers.yaml
)");
  WriteFile(dir_.file("offers.yaml"), R"(offers:
  - {id: o1, promotes: {category: phones}, value: 10}
)");
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(c.Call(Decide("r", "c1")).contains("error"));
  json st = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_FALSE(st["stats"]["counters"].contains("service.inline")) << st.dump();
  EXPECT_GE(st["stats"]["counters"].value("service.to_workers", 0), 5) << st.dump();
}

TEST_F(Service, SigtermWithRequestsInFlightLosesNothing) {
  auto d = Start();
  zmq::context_t ctx(1);
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::rcvtimeo, 15000);
  dealer.connect(d->requests());
  constexpr int kDecides = 200, kEvents = 100;
  for (int i = 0; i < kDecides + kEvents; ++i) {
    json msg = i % 3 == 0 && i / 3 < kEvents
                   ? EventMsg("e" + std::to_string(i), "c9", "click", "i2")
                   : Decide("d" + std::to_string(i), "c9");
    std::string body = msg.dump();
    dealer.send(zmq::buffer(body), zmq::send_flags::none);
  }
  // Stop while most of those are still queued or being decided.
  std::thread stopper([&] { EXPECT_EQ(d->Terminate(), 0); });
  int answered = 0, acks = 0;
  for (int i = 0; i < kDecides + kEvents; ++i) {
    zmq::message_t m;
    if (!dealer.recv(m)) break;
    json r = json::parse(m.to_string());
    EXPECT_FALSE(r.contains("error")) << r.dump();
    ++answered;
    if (r.value("ok", false)) ++acks;
  }
  stopper.join();
  EXPECT_EQ(answered, kDecides + kEvents);
  EXPECT_EQ(acks, kEvents);
  // Every acknowledged event is in the file.
  EXPECT_EQ(
      CountRows(store_, "SELECT count(*) FROM events WHERE customer_id='c9' AND type='click'"),
      kEvents);
}

TEST_F(Service, FailingPluginsDropOutAndAreNamedAndCounted) {
  std::string config = dir_.file("tailor.yaml");
  WriteFile(config, std::string(R"(
service: {workers: 2}
plugins:
)") + ShippedPluginYaml("popularity") +
                        FixturePluginYaml("score_error") + R"(  - name: missing
    path: /nonexistent/tailor_missing.so
placements:
  home: {kind: offers}
offers: offers.yaml
)");
  WriteFile(dir_.file("offers.yaml"), R"(offers:
  - {id: o1, promotes: {category: phones}, value: 10}
  - {id: o2, promotes: {category: laptops}, value: 20}
  - {id: o3, promotes: {item: i1}, value: 5}
)");
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  json r = c.Call(Decide("r", "c1"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  ASSERT_FALSE(r["offers"].empty());
  const json& why = r["offers"][0]["why"];
  EXPECT_TRUE(why["plugins"].contains("popularity"));
  EXPECT_FALSE(why["plugins"].contains("score_error"));
  ASSERT_TRUE(why.contains("dropped")) << why.dump();
  EXPECT_NE(why["dropped"]["score_error"].get<std::string>().find("model not ready"),
            std::string::npos)
      << why.dump();
  EXPECT_NE(why["dropped"]["missing"].get<std::string>().find("not loaded"), std::string::npos);
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_EQ(stats["stats"]["plugin_errors"]["score_error"], 1);
  EXPECT_EQ(stats["stats"]["plugins"]["score_error"]["score_errors"], 1);
  json health = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}});
  EXPECT_EQ(health["health"]["plugins"]["missing"]["status"], "failed");
  EXPECT_EQ(health["health"]["plugins"]["popularity"]["status"], "ok");
}

// A plugin with train_in_background: tailord serves while it trains (the
// gated_train fixture trains until the test creates its gate file), the plugin
// abstains and health says "warming"; then its trained instance is swapped in.
TEST_F(Service, BackgroundTrainingNeverBlocksServing) {
  const std::string gate = dir_.file("gate"), config = GatedTrainConfig(gate);
  // Ready as soon as it serves, not once trained (the gate is still shut).
  auto d = std::make_unique<Tailord>(Tailord::Options{config, store_, {}, false});
  ASSERT_TRUE(d->running()) << d->Log();
  Client c(d->requests());
  auto health = [&] { return c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}}); };
  EXPECT_EQ(health()["health"]["plugins"]["gated_train"]["status"], "warming");
  EXPECT_EQ(health()["health"]["plugins"]["popularity"]["status"], "ok");
  json r = c.Call(Decide("r", "c1"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  const json& warm = r["offers"][0]["why"]["plugins"];
  EXPECT_TRUE(warm["gated_train"].value("abstained", false)) << warm.dump();
  EXPECT_TRUE(warm.contains("popularity")) << warm.dump();
  // Open the gate: the trained instance replaces the untrained one.
  WriteFile(gate, "open\n");
  ASSERT_EQ(AwaitPluginOk(c, "gated_train"), "ok") << d->Log();
  json after = c.Call(Decide("r2", "c1"));
  const json& trained = after["offers"][0]["why"]["plugins"]["gated_train"];
  EXPECT_NEAR(trained.value("score", 0.0), 0.9, 1e-6) << after.dump();
  EXPECT_EQ(trained.value("reason", ""), "trained") << after.dump();
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  EXPECT_EQ(stats["stats"]["plugins"]["gated_train"]["score_errors"], 0);  // never called untrained
}

// A registered model may take long to load (a plugin may score every
// customer at load): with train_in_background it loads aside while tailord
// serves, as a training would.
TEST_F(Service, RegisteredModelLoadsInTheBackground) {
  const std::string gate = dir_.file("gate"), config = GatedTrainConfig(gate);
  const std::string model = dir_.file("gated.model");
  WriteFile(model, "gated\n");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(store_.c_str(), &db), SQLITE_OK);
  const std::string sql =
      "INSERT INTO models(plugin, path, created_ms, active) VALUES('gated_train', '" + model +
      "', 1, 1)";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  // Serving while the load waits for the gate.
  auto d = std::make_unique<Tailord>(Tailord::Options{config, store_, {}, false});
  ASSERT_TRUE(d->running()) << d->Log();
  Client c(d->requests());
  EXPECT_EQ(c.Call({{"v", 1},
                    {"type", "health"},
                    {"id", "h"}})["health"]["plugins"]["gated_train"]["status"],
            "warming");
  json r = c.Call(Decide("r", "c1"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_TRUE(r["offers"][0]["why"]["plugins"]["gated_train"].value("abstained", false))
      << r.dump();
  WriteFile(gate, "open\n");
  ASSERT_EQ(AwaitPluginOk(c, "gated_train"), "ok") << d->Log();
  json after = c.Call(Decide("r2", "c1"));
  const json& loaded = after["offers"][0]["why"]["plugins"]["gated_train"];
  EXPECT_EQ(loaded.value("reason", ""), "loaded") << after.dump();  // the model, not a training
  EXPECT_NEAR(loaded.value("score", 0.0), 0.8, 1e-6) << after.dump();
}

// SIGTERM while a model trains in the background: every acknowledged event
// is stored and tailord exits 0 without waiting for the training (the gate
// never opens here).
TEST_F(Service, ShutdownDoesNotWaitForBackgroundTraining) {
  const std::string config = dir_.file("tailor.yaml");
  WriteFile(config, std::string("plugins:\n") + ShippedPluginYaml("popularity") +
                        FixturePluginYaml("gated_train",
                                          "    train_in_background: true\n"
                                          "    config: {gate: \"" +
                                              dir_.file("never") + "\"}\n") +
                        "placements:\n  home: {kind: offers}\noffers: offers.yaml\n");
  WriteFile(dir_.file("offers.yaml"),
            "offers:\n  - {id: o1, promotes: {category: phones}, value: 10}\n");
  Tailord d({config, store_, {}, false});
  ASSERT_TRUE(d.running()) << d.Log();
  {
    Client c(d.requests());
    json ack = c.Call(EventMsg("e", "c7", "click", "i3"));
    ASSERT_EQ(ack.value("ok", false), true) << ack.dump();
  }
  EXPECT_EQ(d.Terminate(), 0) << d.Log();
  EXPECT_NE(d.Log().find("exiting while a model still trains in the background"), std::string::npos)
      << d.Log();
  EXPECT_EQ(
      CountRows(store_, "SELECT count(*) FROM events WHERE customer_id='c7' AND type='click'"), 1);
}

// The `similar` fixture scores item iN as N / 100 and calls items of the
// same tens alike; it throws when asked about i30.
TEST_F(Service, DiversifiedPlacementMakesRoomForUnlikeItems) {
  std::string config = dir_.file("tailor.yaml");
  WriteFile(config, std::string(R"(
plugins:
)") + FixturePluginYaml("similar", "    config: {fail: throw}\n") +
                        R"(placements:
  shelf: {kind: items, diversity: {lambda: 0.5, by: similar}}
  plain: {kind: items}
)");
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  auto items = [](const json& r) {
    std::vector<std::string> out;
    for (const json& o : r["offers"]) out.push_back(o["item"]);
    return out;
  };
  // Laptops are i1, i4, ..., i28. Plain: i28, i25, i22, i19. Diversified
  // (penalty 0.5 x 0.28 for a likeness of 1): i19 before i25 and i22.
  json laptops = {{"category", "laptops"}};
  json req = Decide("p", "", 4, "plain");
  req["context"] = laptops;
  json plain = c.Call(req);
  ASSERT_FALSE(plain.contains("error")) << plain.dump();
  EXPECT_EQ(items(plain), (std::vector<std::string>{"i28", "i25", "i22", "i19"}));
  req = Decide("s", "", 4, "shelf");
  req["context"] = laptops;
  json shelf = c.Call(req);
  ASSERT_FALSE(shelf.contains("error")) << shelf.dump();
  EXPECT_EQ(items(shelf), (std::vector<std::string>{"i28", "i19", "i25", "i22"}));
  EXPECT_FALSE(shelf["offers"][1]["why"].contains("diversity"));
  const json& div = shelf["offers"][2]["why"]["diversity"];
  EXPECT_EQ(div["similar_to"], "i28") << div.dump();
  EXPECT_EQ(div["similarity"], 1.0);
  EXPECT_NEAR(div["penalty"].get<double>(), 0.5 * 0.28, 1e-6);
  // The score shown is still the priority: the ranking says where it went.
  EXPECT_NEAR(shelf["offers"][2]["score"].get<double>(), 0.25, 1e-6);

  // A failing similarity call leaves the list as ranked, says so, counts it.
  json all = c.Call(Decide("a", "", 3, "shelf"));
  ASSERT_FALSE(all.contains("error")) << all.dump();
  EXPECT_EQ(items(all), (std::vector<std::string>{"i30", "i29", "i28"}));
  EXPECT_NE(all["offers"][0]["why"]["dropped"]["similar.similarity"].get<std::string>().find(
                "no similarity for i30"),
            std::string::npos)
      << all.dump();
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "st"}});
  EXPECT_EQ(stats["stats"]["plugin_errors"]["similar"], 1) << stats.dump();
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["similarity_calls"], 2);
  EXPECT_EQ(stats["stats"]["counters"]["diversity.applied"], 1) << stats.dump();
}

// Past 100 candidates (twice the 50 a trace keeps at limit <= 12) plugins
// score all of them without reasons, then explain only the ones the reply
// and trace name, in a second, small call.
TEST_F(Service, LargePlacementAsksForReasonsOnlyForWhatItNames) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(store_.c_str(), &db), SQLITE_OK);
  std::string sql = "BEGIN;";
  for (int i = 31; i <= 200; ++i)
    sql +=
        "INSERT INTO items(id, category, price) VALUES('i" + std::to_string(i) + "', 'extra', 10);";
  sql += "COMMIT;";
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  std::string config = dir_.file("tailor.yaml");
  WriteFile(config, std::string(R"(
plugins:
)") + FixturePluginYaml("similar") +
                        R"(placements:
  shelf: {kind: items}
)");
  auto d = Start({}, config);
  ASSERT_TRUE(d->running());
  Client c(d->requests());
  json r = c.Call(Decide("big", "", 5, "shelf"));
  ASSERT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(r["candidates"], 200);
  ASSERT_EQ(r["offers"].size(), 5u);
  EXPECT_EQ(r["offers"][0]["item"], "i100");  // i100..i200 all score 1 (clamped); ties by id
  for (const json& o : r["offers"]) {
    const std::string item = o["item"];
    EXPECT_EQ(o["why"]["plugins"]["similar"]["reason"], "number " + item.substr(1)) << o.dump();
  }
  // Every entry of the stored trace (the 50 best) has its reason.
  json ex = c.Call({{"v", 1}, {"type", "explain"}, {"id", "x"}, {"decision", r["decision"]}});
  ASSERT_TRUE(ex.contains("explain")) << ex.dump();
  const json& entries = ex["explain"]["trace"]["entries"];
  ASSERT_EQ(entries.size(), 50u);
  for (const json& t : entries) {
    const std::string item = t["item"];
    EXPECT_EQ(t["why"]["plugins"]["similar"]["reason"], "number " + item.substr(1)) << t.dump();
  }
  json stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s1"}});
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["score_calls"], 1) << stats.dump();
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["explain_calls"], 1);

  // When only the reasons fail, the scores still count; the reasons are
  // named as dropped and the failure is counted.
  json req = Decide("mute", "", 5, "shelf");
  req["context"] = {{"mute", true}};
  json mute = c.Call(req);
  ASSERT_FALSE(mute.contains("error")) << mute.dump();
  const json& why = mute["offers"][0]["why"];
  EXPECT_EQ(why["plugins"]["similar"]["score"], 1.0) << why.dump();
  EXPECT_FALSE(why["plugins"]["similar"].contains("reason"));
  EXPECT_NE(why["dropped"]["similar.reasons"].get<std::string>().find("cannot explain"),
            std::string::npos)
      << why.dump();
  stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s2"}});
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["explain_errors"], 1) << stats.dump();
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["score_errors"], 0);
  EXPECT_EQ(stats["stats"]["plugin_errors"]["similar"], 1);

  // A small placement (the 10 laptops) asks for reasons in its one call, so
  // there a failure drops the plugin from the decision.
  req["context"] = {{"mute", true}, {"category", "laptops"}};
  json small = c.Call(req);
  ASSERT_FALSE(small.contains("error")) << small.dump();
  EXPECT_EQ(small["candidates"], 10);
  EXPECT_FALSE(small["offers"][0]["why"]["plugins"].contains("similar")) << small.dump();
  req["context"] = {{"category", "laptops"}};
  small = c.Call(req);
  EXPECT_EQ(small["offers"][0]["why"]["plugins"]["similar"]["reason"], "number 28") << small.dump();
  stats = c.Call({{"v", 1}, {"type", "stats"}, {"id", "s3"}});
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["score_calls"], 4);
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["score_errors"], 1);
  EXPECT_EQ(stats["stats"]["plugins"]["similar"]["explain_calls"], 2);
}

TEST_F(Service, PythonClientGetsOffersWithReasons) {
  auto d = Start();
  std::string out = dir_.file("py.txt");
  std::string cmd = std::string("/usr/bin/python3 ") + TAILOR_SOURCE_DIR +
                    "/tools/client_example.py " + d->requests() + " c3 >" + out + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << ReadFile(out);
  std::string text = ReadFile(out);
  EXPECT_NE(text.find("decision d-"), std::string::npos) << text;
  EXPECT_NE(text.find("popularity:"), std::string::npos) << text;
  // The feedback contract: the click, conversion and dismissal it reports
  // come back from explain joined to the decision.
  EXPECT_NE(text.find("outcomes joined to the decision"), std::string::npos) << text;
  EXPECT_NE(text.find("offer_click"), std::string::npos) << text;
  EXPECT_NE(text.find("convert"), std::string::npos) << text;
  EXPECT_NE(text.find("(joined by decision)"), std::string::npos) << text;
}

TEST_F(Service, BrokenConfigRefusesToStartWithFileLineCol) {
  std::string config = dir_.file("bad.yaml");
  WriteFile(config, "service:\n  workrs: 2\nplacements:\n  home: {kind: shelves}\n");
  std::string cmd =
      TailordBin() + " --config " + config + " --store " + store_ + " 2>" + dir_.file("err.txt");
  int rc = std::system(cmd.c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 2);
  std::string err = ReadFile(dir_.file("err.txt"));
  EXPECT_NE(err.find(config + ":2:3: service.workrs: unknown key"), std::string::npos) << err;
  EXPECT_NE(err.find("placements.home.kind: expected offers or items"), std::string::npos) << err;
}

}  // namespace
}  // namespace tailor::testing
