#include "store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include "common/time.h"
#include "store/migrations.h"
#include "support/temp_dir.h"

namespace tailor {
namespace {

using testing::TempDir;

std::unique_ptr<Store> OpenStore(const std::string& path, bool writer = true) {
  std::string err;
  Store::Options o;
  o.path = path;
  o.start_writer = writer;
  auto s = Store::Open(o, &err);
  EXPECT_NE(s, nullptr) << err;
  return s;
}

Event MakeEvent(const std::string& customer, const std::string& type, const std::string& item,
                int64_t ts) {
  Event e;
  e.customer_id = customer;
  e.type = type;
  e.item_id = item;
  e.ts_ms = ts;
  return e;
}

// Runs sql on its own connection to the store at path, as a hostile or
// careless tool would; "" on success, else SQLite's message.
std::string RawExec(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return "cannot open " + path;
  }
  char* msg = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
  std::string out = rc == SQLITE_OK ? "" : msg ? msg : "error " + std::to_string(rc);
  sqlite3_free(msg);
  sqlite3_close(db);
  return out;
}

TEST(Migrations, FreshStoreIsAtNewestVersion) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  EXPECT_EQ(s->schema_version(), BuiltinMigrations().back().version);
  EXPECT_EQ(s->Count("events"), 0);
}

TEST(Migrations, ReopeningDoesNotReapply) {
  TempDir dir;
  OpenStore(dir.file("t.db"))->UpsertCustomer(Customer{"c1", "{}", "{}", 1, 1});
  auto s = OpenStore(dir.file("t.db"));
  EXPECT_EQ(s->Count("customers"), 1);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("t.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM schema_migrations", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), static_cast<int>(BuiltinMigrations().size()));
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(Migrations, FailingMigrationRollsBackAndNamesItself) {
  TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("m.db").c_str(), &db), SQLITE_OK);
  std::vector<Migration> ms = {{1, "good", "CREATE TABLE a(x);"},
                               {2, "bad", "CREATE TABLE b(y); CREATE TABLE a(z);"}};
  std::string err;
  EXPECT_FALSE(Migrate(db, ms, &err));
  EXPECT_NE(err.find("migration 2 (bad)"), std::string::npos) << err;
  EXPECT_EQ(SchemaVersion(db), 1);
  // Table b from the failed migration must not exist.
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name='b'", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST(Migrations, RefusesStoreFromNewerBuild) {
  TempDir dir;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("m.db").c_str(), &db), SQLITE_OK);
  std::vector<Migration> ms = {{1, "one", "CREATE TABLE a(x);"}, {2, "two", "CREATE TABLE b(x);"}};
  std::string err;
  ASSERT_TRUE(Migrate(db, ms, &err)) << err;
  ms.pop_back();
  EXPECT_FALSE(Migrate(db, ms, &err));
  EXPECT_NE(err.find("newer"), std::string::npos) << err;
  sqlite3_close(db);
}

TEST(Store, AcknowledgedEventIsDurableAndCreatesCustomer) {
  TempDir dir;
  {
    auto s = OpenStore(dir.file("t.db"));
    Status st = s->AppendEvent(MakeEvent("c42", "click", "i9", 1000)).get();
    ASSERT_TRUE(st.ok()) << st.message();
  }
  auto s = OpenStore(dir.file("t.db"));
  EXPECT_EQ(s->Count("events"), 1);
  EXPECT_TRUE(s->GetCustomer("c42").has_value());
  Profile p = s->LoadProfile("c42", 10);
  EXPECT_TRUE(p.known);
  EXPECT_EQ(p.counts["click"], 1);
  ASSERT_EQ(p.recent.size(), 1u);
  EXPECT_EQ(p.recent[0].item_id, "i9");
}

TEST(Store, EventsAreAppendOnly) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  ASSERT_TRUE(s->AppendEvent(MakeEvent("c1", "view", "i1", 5)).get().ok());
  const std::string err = RawExec(dir.file("t.db"), "UPDATE events SET type='purchase'");
  EXPECT_NE(err.find("append-only"), std::string::npos) << err;
}

TEST(Store, ConcurrentWritersAreBatchedAndAllLand) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  constexpr int kThreads = 8, kEach = 100;
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<std::future<Status>> fs;
      for (int i = 0; i < kEach; ++i)
        fs.push_back(s->AppendEvent(MakeEvent("c" + std::to_string(t), "view", "i1", i)));
      for (auto& f : fs)
        if (!f.get().ok()) ++failures;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(s->Count("events"), kThreads * kEach);
  EXPECT_EQ(s->Count("customers"), kThreads);
}

TEST(Store, DecisionsAreLoggedAndReadBack) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  DecisionRecord d{"d-1", "c1", "web", "home", 77, "{\"a\":1}", "{\"offers\":[]}"};
  s->LogDecision(d);
  s->Flush();
  auto got = s->GetDecision("d-1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->placement, "home");
  EXPECT_EQ(got->response_json, "{\"offers\":[]}");
  EXPECT_FALSE(s->GetDecision("nope").has_value());
}

TEST(Store, DecisionLogIsAppendOnly) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  s->LogDecision({"d-1", "c1", "web", "home", 77, "{}", "{\"offers\":[1]}"});
  s->LogDecision({"d-1", "c2", "web", "home", 78, "{}", "{\"offers\":[2]}"});  // same id
  s->Flush();
  auto got = s->GetDecision("d-1");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->customer_id, "c1") << "a repeated id overwrote the audit record";
  EXPECT_EQ(got->response_json, "{\"offers\":[1]}");
  const std::string err = RawExec(dir.file("t.db"), "UPDATE decisions SET response='{}'");
  EXPECT_NE(err.find("append-only"), std::string::npos) << err;
}

TEST(Store, ModelsTrainOnlyOnCustomersWhoAllowIt) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  for (const auto& [id, consent] : std::vector<std::pair<std::string, std::string>>{
           {"yes", "{}"},
           {"noperso", R"({"personalization":false})"},
           {"noprof", R"({"profiling":false,"email":true})"},
           {"garbled", "not json"},
           {"stated", R"({"personalization":true,"profiling":true})"}}) {
    Customer c;
    c.id = id;
    c.consent_json = consent;
    ASSERT_TRUE(s->UpsertCustomer(c).ok());
    ASSERT_TRUE(s->AppendEvent(MakeEvent(id, "view", "i1", 5)).get().ok());
  }
  ASSERT_TRUE(s->AppendEvent(MakeEvent("new", "view", "i1", 6)).get().ok());
  std::set<std::string> all, learnable;
  s->ForEachEvent(0, [&](const Event& e) { return all.insert(e.customer_id), true; });
  s->ForEachEvent(
      0, [&](const Event& e) { return learnable.insert(e.customer_id), true; }, true);
  EXPECT_EQ(all.size(), 6u);
  EXPECT_EQ(learnable, (std::set<std::string>{"yes", "garbled", "stated", "new"}));
}

TEST(Store, WriterReportsFailuresUntilAWriteSucceeds) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  EXPECT_FALSE(s->Writer().failing);
  ASSERT_EQ(RawExec(dir.file("t.db"),
                    "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN "
                    "NEW.customer_id='bad' BEGIN SELECT RAISE(ABORT, 'refused'); END"),
            "");
  EXPECT_FALSE(s->AppendEvent(MakeEvent("bad", "view", "i1", 5)).get().ok());
  Store::WriterState w = s->Writer();
  EXPECT_TRUE(w.failing);
  EXPECT_NE(w.last_error.find("refused"), std::string::npos) << w.last_error;
  ASSERT_TRUE(s->AppendEvent(MakeEvent("good", "view", "i1", 6)).get().ok());
  EXPECT_FALSE(s->Writer().failing) << "a later good batch clears it";
}

TEST(Store, RetentionRemovesWhatIsOlderThanEachPeriod) {
  TempDir dir;
  std::string err;
  Store::Options o;
  o.path = dir.file("t.db");
  o.retention = {/*events*/ 30, /*decisions*/ 10, /*traces*/ 5, /*chat_text*/ 2};
  auto s = Store::Open(o, &err);
  ASSERT_NE(s, nullptr) << err;
  const int64_t day = 86'400'000, now = now_ms();
  ASSERT_TRUE(s->AppendEvent(MakeEvent("c1", "view", "i1", now - 40 * day)).get().ok());
  ASSERT_TRUE(s->AppendEvent(MakeEvent("c1", "view", "i2", now - 20 * day)).get().ok());
  for (int64_t age : {3, 1}) {
    Event chat = MakeEvent("c1", "chat", "", now - age * day);
    chat.text = "chat " + std::to_string(age);
    ASSERT_TRUE(s->AppendEvent(chat).get().ok());
  }
  for (int64_t age : {15, 7, 1}) {
    DecisionRecord d{"d" + std::to_string(age), "c1", "web", "home", now - age * day, "{}", "{}"};
    d.trace_json = "{\"kept\":true}";
    s->LogDecision(d);
    Impression m;
    m.decision_id = d.id;
    m.customer_id = "c1";
    m.position = 1;
    m.ts_ms = d.ts_ms;
    s->LogImpressions({m});
  }
  s->Flush();
  ASSERT_TRUE(s->EnforceRetention().get().ok());

  std::vector<Event> left;
  s->ForEachEvent(0, [&](const Event& e) { return left.push_back(e), true; });
  ASSERT_EQ(left.size(), 3u) << "the 40-day-old event stays";
  EXPECT_EQ(left[0].item_id, "i2");
  EXPECT_EQ(left[1].type, "chat");
  EXPECT_EQ(left[1].text, "") << "a 3-day-old chat lost its text";
  EXPECT_EQ(left[2].text, "chat 1");
  EXPECT_FALSE(s->GetDecision("d15").has_value());
  EXPECT_TRUE(s->ImpressionsOf("d15").empty());
  ASSERT_TRUE(s->GetDecision("d7").has_value());
  EXPECT_EQ(s->GetDecision("d7")->trace_json, "{}");
  EXPECT_EQ(s->GetDecision("d1")->trace_json, "{\"kept\":true}");
  EXPECT_EQ(s->ImpressionsOf("d7").size(), 1u);
  RetentionCounts n = s->Retained();
  EXPECT_EQ(n.events, 1);
  EXPECT_EQ(n.decisions, 1);
  EXPECT_EQ(n.impressions, 1);
  EXPECT_EQ(n.traces, 1);
  EXPECT_EQ(n.chat_texts, 1);
  EXPECT_GT(n.last_run_ms, 0);
}

TEST(Store, JourneyRowsGoThroughTheWriterAndReadBackInOneSnapshot) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  ASSERT_TRUE(s->AppendEvent(MakeEvent("c1", "view", "i1", 1000)).get().ok());
  Event shown = MakeEvent("c1", "impression", "", 1500);
  shown.channel = "email";
  ASSERT_TRUE(s->AppendEvent(shown).get().ok());
  ASSERT_TRUE(s->AppendEvent(MakeEvent("c1", "purchase", "i1", 2000)).get().ok());
  using W = JourneyWrite;
  ASSERT_TRUE(s->WriteJourney({W{W::Kind::kUpsertState, "c1", "welcome", "new", 1000, "{}"},
                               W{W::Kind::kInsertStep, "c1", "welcome", "hello", 5000, "{}"},
                               W{W::Kind::kInsertStep, "c1", "welcome", "later", 9000, "{}"}})
                  .get()
                  .ok());
  // Upserted, not added: one row per customer and journey.
  ASSERT_TRUE(
      s->WriteJourney({W{W::Kind::kUpsertState, "c1", "welcome", "bought", 2000, "{\"n\":2}"}})
          .get()
          .ok());

  JourneyCustomerRows rows;
  ASSERT_TRUE(s->LoadJourneyCustomer("c1", 0, &rows).ok());
  ASSERT_EQ(rows.states.size(), 1u);
  EXPECT_EQ(rows.states[0].stage, "bought");
  EXPECT_EQ(rows.states[0].data_json, "{\"n\":2}");
  ASSERT_EQ(rows.contacts.size(), 1u);
  EXPECT_EQ(rows.contacts[0], std::make_pair(std::string("email"), int64_t{1500}));
  EXPECT_EQ(rows.first_active_ms, 1000);  // impressions are not activity
  EXPECT_EQ(rows.last_active_ms, 2000);
  JourneyCustomerRows later;
  ASSERT_TRUE(s->LoadJourneyCustomer("c1", 1500, &later).ok());
  EXPECT_TRUE(later.contacts.empty());  // the horizon is exclusive

  std::vector<JourneyStepRow> due;
  ASSERT_TRUE(s->DueJourneySteps(6000, 10, &due).ok());
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].step, "hello");
  // Taken steps are no longer due; moved ones are due at their new time.
  ASSERT_TRUE(
      s->WriteJourney({W{W::Kind::kFinishStep, "", "", "", 6000, "{\"sent\":1}", due[0].id}})
          .get()
          .ok());
  std::vector<JourneyStepRow> all;
  ASSERT_TRUE(s->DueJourneySteps(10000, 10, &all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].step, "later");
  ASSERT_TRUE(
      s->WriteJourney({W{W::Kind::kMoveStep, "", "", "", 20000, "", all[0].id}}).get().ok());
  std::vector<JourneyStepRow> none;
  ASSERT_TRUE(s->DueJourneySteps(10000, 10, &none).ok());
  EXPECT_TRUE(none.empty());
}

TEST(Store, AFailedJourneyWriteLeavesNothingAndTheBatchGoesOn) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  using W = JourneyWrite;
  // A trigger refuses the second write, as a full disk might.
  ASSERT_EQ(RawExec(dir.file("t.db"),
                    "CREATE TRIGGER refuse BEFORE INSERT ON journey_steps WHEN NEW.step='bad' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"),
            "");
  auto failed = s->WriteJourney({W{W::Kind::kUpsertState, "c1", "j", "s", 1, "{}"},
                                 W{W::Kind::kInsertStep, "c1", "j", "bad", 2, "{}"}});
  auto event = s->AppendEvent(MakeEvent("c2", "view", "i1", 3));
  EXPECT_FALSE(failed.get().ok());
  EXPECT_TRUE(event.get().ok());  // in the same batch or not, the event landed
  JourneyCustomerRows rows;
  ASSERT_TRUE(s->LoadJourneyCustomer("c1", 0, &rows).ok());
  EXPECT_TRUE(rows.states.empty());  // all or nothing
  EXPECT_EQ(s->Count("events"), 1);
}

TEST(Store, JourneyWritesFailOnAReadOnlyStore) {
  TempDir dir;
  OpenStore(dir.file("t.db")).reset();
  std::string err;
  Store::Options o;
  o.path = dir.file("t.db");
  o.read_only = true;
  auto s = Store::Open(o, &err);
  ASSERT_NE(s, nullptr) << err;
  EXPECT_FALSE(s->WriteJourney({JourneyWrite{}}).get().ok());
}

TEST(Store, QueuedLogsAreBoundedAndAllLand) {
  TempDir dir;
  std::string err;
  Store::Options o;
  o.path = dir.file("t.db");
  o.max_queued_logs = 8;
  auto s = Store::Open(o, &err);
  ASSERT_NE(s, nullptr) << err;
  // Logging is far faster than committing: without the bound the queue
  // would hold nearly all of them.
  constexpr int kDecisions = 1000;
  for (int i = 0; i < kDecisions; ++i)
    s->LogDecision({"d-" + std::to_string(i), "c1", "web", "home", i, "{}", "{\"offers\":[]}"});
  s->Flush();
  EXPECT_LE(s->MaxQueuedWrites(), 8u + 1);  // and the flush, which never waits behind logs
  EXPECT_EQ(s->Count("decisions"), kDecisions);
}

TEST(Store, ProfileRecentIsNewestLastAndBounded) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  for (int i = 0; i < 10; ++i)
    s->AppendEvent(MakeEvent("c1", i % 2 ? "click" : "view", "i" + std::to_string(i), 100 + i));
  s->Flush();
  Profile p = s->LoadProfile("c1", 3);
  ASSERT_EQ(p.recent.size(), 3u);
  EXPECT_EQ(p.recent.back().item_id, "i9");
  EXPECT_EQ(p.recent.front().item_id, "i7");
  EXPECT_EQ(p.counts["view"], 5);
  EXPECT_EQ(p.first_seen_ms, 100);
  EXPECT_EQ(p.last_seen_ms, 109);
  EXPECT_FALSE(s->LoadProfile("stranger", 3).known);
}

// Profile loads reuse their prepared statements per read connection: loads
// of different customers, interleaved, from several threads, with writes in
// between, each see exactly their own customer, up to date.
TEST(Store, ProfileLoadsReusingStatementsSeeTheirOwnCustomer) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  constexpr int kCustomers = 6, kThreads = 4, kRounds = 50;
  for (int c = 0; c < kCustomers; ++c)
    for (int i = 0; i <= c; ++i)
      s->AppendEvent(MakeEvent("c" + std::to_string(c), "view", "i" + std::to_string(c), 10 + i));
  s->Flush();
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        const int c = (t + r) % kCustomers;
        Profile p = s->LoadProfile("c" + std::to_string(c), 2);
        const bool right = p.known && p.counts["view"] == c + 1 && !p.recent.empty() &&
                           p.recent.back().item_id == "i" + std::to_string(c) &&
                           p.recent.size() == std::min<size_t>(2, c + 1) &&
                           p.last_seen_ms == 10 + c;
        if (!right) ++wrong;
        if (s->LoadProfile("nobody" + std::to_string(r), 2).known) ++wrong;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // A write after the statements were prepared is seen by the next load.
  s->AppendEvent(MakeEvent("c0", "click", "i9", 99));
  s->Flush();
  Profile p = s->LoadProfile("c0", 2);
  EXPECT_EQ(p.counts["click"], 1);
  EXPECT_EQ(p.recent.back().item_id, "i9");
  EXPECT_EQ(p.last_seen_ms, 99);
}

TEST(Store, ModelRegistryKeepsOneActivePerPlugin) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"));
  ModelRecord m{0, "popularity", "/tmp/a", 1, "{}", true};
  ASSERT_TRUE(s->RegisterModel(m, nullptr).ok());
  m.path = "/tmp/b";
  ASSERT_TRUE(s->RegisterModel(m, nullptr).ok());
  auto active = s->ActiveModels();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].path, "/tmp/b");
}

TEST(Store, BulkRollsBackWithoutCommit) {
  TempDir dir;
  auto s = OpenStore(dir.file("t.db"), false);
  {
    std::string err;
    auto bulk = s->BeginBulk(&err);
    ASSERT_NE(bulk, nullptr) << err;
    ASSERT_TRUE(bulk->Item(Item{"i1", "t", "d", "phones", "Apple", 10, "{}"}).ok());
  }
  EXPECT_EQ(s->Count("items"), 0);
  std::string err;
  auto bulk = s->BeginBulk(&err);
  ASSERT_TRUE(bulk->Item(Item{"i1", "t", "d", "phones", "Apple", 10, "{}"}).ok());
  ASSERT_TRUE(bulk->Commit().ok());
  EXPECT_EQ(s->Count("items"), 1);
}

TEST(Store, RejectsAFileThatIsNotADatabase) {
  TempDir dir;
  testing::WriteFile(dir.file("junk.db"), std::string(4096, 'x'));
  std::string err;
  Store::Options o;
  o.path = dir.file("junk.db");
  EXPECT_EQ(Store::Open(o, &err), nullptr);
  EXPECT_FALSE(err.empty());
}

}  // namespace
}  // namespace tailor
