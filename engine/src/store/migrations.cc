#include "store/migrations.h"

#include <sqlite3.h>

namespace tailor {

const std::vector<Migration>& BuiltinMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "initial schema", R"sql(
CREATE TABLE customers (
  id TEXT PRIMARY KEY,
  attributes TEXT NOT NULL DEFAULT '{}',
  consent TEXT NOT NULL DEFAULT '{}',
  created_ms INTEGER NOT NULL DEFAULT 0,
  updated_ms INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE items (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  category TEXT NOT NULL DEFAULT '',
  brand TEXT NOT NULL DEFAULT '',
  price REAL NOT NULL DEFAULT 0,
  attributes TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE TABLE offers (
  id TEXT PRIMARY KEY,
  definition TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_id TEXT NOT NULL,
  type TEXT NOT NULL,
  item_id TEXT,
  offer_id TEXT,
  decision_id TEXT,
  channel TEXT,
  text TEXT,
  ts_ms INTEGER NOT NULL,
  value REAL NOT NULL DEFAULT 0,
  quantity REAL NOT NULL DEFAULT 0,
  properties TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_customer ON events(customer_id, ts_ms);
CREATE INDEX events_by_ts ON events(ts_ms);
-- The event log is append-only: history is never rewritten.
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE decisions (
  id TEXT PRIMARY KEY,
  customer_id TEXT,
  channel TEXT,
  placement TEXT,
  ts_ms INTEGER NOT NULL,
  request TEXT NOT NULL,
  response TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX decisions_by_customer ON decisions(customer_id, ts_ms);
CREATE TABLE journey_state (
  customer_id TEXT NOT NULL,
  journey TEXT NOT NULL,
  stage TEXT NOT NULL,
  entered_ms INTEGER NOT NULL,
  data TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (customer_id, journey)
) WITHOUT ROWID;
CREATE TABLE models (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  plugin TEXT NOT NULL,
  path TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  metrics TEXT NOT NULL DEFAULT '{}',
  active INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX models_by_plugin ON models(plugin, active);
)sql"},
      {2, "demo ground truth", R"sql(
-- Hidden traits of generated demo customers; models never read this table,
-- evaluations compare against it.
CREATE TABLE demo_truth (
  customer_id TEXT NOT NULL,
  trait TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (customer_id, trait)
) WITHOUT ROWID;
)sql"},
      {3, "decision traces and journey steps", R"sql(
-- Why each candidate was shown or suppressed, for `explain`.
ALTER TABLE decisions ADD COLUMN trace TEXT NOT NULL DEFAULT '{}';
-- Outbound journey steps waiting for their time; sent_ms stays NULL until the
-- step is published, so pending steps survive a restart.
CREATE TABLE journey_steps (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_id TEXT NOT NULL,
  journey TEXT NOT NULL,
  step TEXT NOT NULL,
  due_ms INTEGER NOT NULL,
  payload TEXT NOT NULL DEFAULT '{}',
  sent_ms INTEGER
);
CREATE INDEX journey_steps_pending ON journey_steps(sent_ms, due_ms);
)sql"},
      {4, "history index", R"sql(
-- A profile load reads every event of the customer's last history_days for
-- the rules' history.*: this index covers that scan and the per-type counts
-- without reading table rows. It has events_by_customer as its prefix.
CREATE INDEX events_history ON events(customer_id, ts_ms, type, offer_id, item_id);
DROP INDEX events_by_customer;
)sql"},
      {5, "impressions and outcomes", R"sql(
-- The feedback contract (feedback/attribution.h): every candidate a decision
-- returned, at its position, with what the policy knew when it chose it.
-- shown stays 0 for a placement with `impressions: explicit` until the app's
-- `impression` event names the decision; features are float32 values, little
-- endian, as the response model saw them.
CREATE TABLE impressions (
  decision_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  customer_id TEXT NOT NULL,
  placement TEXT NOT NULL DEFAULT '',
  channel TEXT NOT NULL DEFAULT '',
  offer_id TEXT NOT NULL DEFAULT '',
  item_id TEXT NOT NULL DEFAULT '',
  category TEXT NOT NULL DEFAULT '',
  propensity REAL NOT NULL DEFAULT 1,
  explore INTEGER NOT NULL DEFAULT 0,
  p_click REAL NOT NULL DEFAULT 0,
  segment TEXT NOT NULL DEFAULT '',
  features BLOB,
  ts_ms INTEGER NOT NULL,
  shown INTEGER NOT NULL DEFAULT 1,
  PRIMARY KEY (decision_id, position)
) WITHOUT ROWID;
CREATE INDEX impressions_by_customer ON impressions(customer_id, ts_ms);
CREATE INDEX impressions_by_ts ON impressions(ts_ms);
-- Responses joined to the impression they answer; kind is click, conversion
-- or dismiss, event_type the event's own type.
CREATE TABLE outcomes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  decision_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  customer_id TEXT NOT NULL,
  offer_id TEXT NOT NULL DEFAULT '',
  item_id TEXT NOT NULL DEFAULT '',
  event_type TEXT NOT NULL,
  kind TEXT NOT NULL,
  value REAL NOT NULL DEFAULT 0,
  ts_ms INTEGER NOT NULL,
  event_seq INTEGER NOT NULL DEFAULT 0,
  by_decision_id INTEGER NOT NULL DEFAULT 0,
  first_of_kind INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX outcomes_by_decision ON outcomes(decision_id, position);
CREATE INDEX outcomes_by_ts ON outcomes(ts_ms);
)sql"},
      {6, "experiment arms, shadow mode and discounts", R"sql(
-- Every decision names the experiment and arm that served it ('' outside any
-- experiment; arm 'holdout' for the global holdout) and its mode: 'live', or
-- 'shadow' when the application served its own choice and Tailor only logged
-- what it would have chosen. Impressions repeat the arm so a report groups
-- them without a join, and carry the discount the offer was shown with.
ALTER TABLE decisions ADD COLUMN experiment TEXT NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN arm TEXT NOT NULL DEFAULT '';
ALTER TABLE decisions ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';
CREATE INDEX decisions_by_ts ON decisions(ts_ms);
ALTER TABLE impressions ADD COLUMN experiment TEXT NOT NULL DEFAULT '';
ALTER TABLE impressions ADD COLUMN arm TEXT NOT NULL DEFAULT '';
ALTER TABLE impressions ADD COLUMN discount REAL NOT NULL DEFAULT 0;
)sql"},
      {7, "shadow picks", R"sql(
-- Shadow mode: what Tailor would have shown at each position of a decision
-- whose served choice was the application's, with the policy's propensity,
-- P(click), P(convert | click) and the offer's value, so a report can
-- estimate what Tailor would have achieved (experiments/shadow_estimate.h).
CREATE TABLE shadow_picks (
  decision_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  offer_id TEXT NOT NULL DEFAULT '',
  item_id TEXT NOT NULL DEFAULT '',
  propensity REAL NOT NULL DEFAULT 1,
  p_click REAL NOT NULL DEFAULT 0,
  p_convert REAL NOT NULL DEFAULT 0,
  value REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (decision_id, position)
) WITHOUT ROWID;
CREATE INDEX decisions_by_mode ON decisions(mode, ts_ms);
)sql"},
      {8, "append-only decision log; retention may drop traces and chat text", R"sql(
-- The decision log is an audit record: a repeated id is refused, never
-- overwritten, and a stored decision is never changed, but for retention
-- dropping its trace (erasure and retention delete whole rows). Likewise an
-- event is never changed but for retention dropping a chat line's text.
CREATE TRIGGER decisions_append_only BEFORE UPDATE OF id, customer_id, channel, placement,
  ts_ms, request, response, experiment, arm, mode ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
DROP TRIGGER events_append_only;
CREATE TRIGGER events_append_only BEFORE UPDATE OF seq, customer_id, type, item_id, offer_id,
  decision_id, channel, ts_ms, value, quantity, properties ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
-- What retention still has to redact, and only that: the indexes shrink as
-- it works, so a pass never rescans what it already did.
CREATE INDEX events_chat_text ON events(ts_ms) WHERE type = 'chat' AND text IS NOT NULL;
CREATE INDEX decisions_with_trace ON decisions(ts_ms) WHERE trace != '{}';
)sql"},
      {9, "outbound outbox: messages kept until a consumer acknowledges them", R"sql(
-- A taken journey step that went out keeps its message until a consumer
-- sends outbound.ack; until then it is published again at next_ms (with
-- backoff), and outbound.pending returns it. next_ms is NULL once acknowledged
-- or given up after the last attempt.
ALTER TABLE journey_steps ADD COLUMN message TEXT;
ALTER TABLE journey_steps ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE journey_steps ADD COLUMN next_ms INTEGER;
ALTER TABLE journey_steps ADD COLUMN acked_ms INTEGER;
CREATE INDEX journey_steps_redeliver ON journey_steps(next_ms) WHERE next_ms IS NOT NULL;
CREATE INDEX journey_steps_unacked ON journey_steps(id)
  WHERE message IS NOT NULL AND acked_ms IS NULL;
)sql"},
  };
  return kMigrations;
}

namespace {

bool Exec(sqlite3* db, const char* sql, std::string* err) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    if (err) *err = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return false;
  }
  return true;
}

}  // namespace

int SchemaVersion(sqlite3* db) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT count(*) FROM sqlite_master WHERE type='table' AND "
                         "name='schema_migrations'",
                         -1, &st, nullptr) != SQLITE_OK)
    return -1;
  bool has_table = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
  sqlite3_finalize(st);
  if (!has_table) return 0;
  if (sqlite3_prepare_v2(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", -1, &st,
                         nullptr) != SQLITE_OK)
    return -1;
  int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
  sqlite3_finalize(st);
  return v;
}

bool Migrate(sqlite3* db, const std::vector<Migration>& migrations, std::string* err) {
  if (!Exec(db,
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_ms INTEGER NOT NULL)",
            err))
    return false;
  int current = SchemaVersion(db);
  if (current < 0) {
    if (err) *err = sqlite3_errmsg(db);
    return false;
  }
  int newest = migrations.empty() ? 0 : migrations.back().version;
  if (current > newest) {
    if (err)
      *err = "store schema version " + std::to_string(current) +
             " is newer than this build understands (" + std::to_string(newest) +
             "); upgrade Tailor";
    return false;
  }
  for (const Migration& m : migrations) {
    if (m.version <= current) continue;
    std::string step_err;
    if (!Exec(db, "BEGIN IMMEDIATE", &step_err) || !Exec(db, m.sql, &step_err)) {
      Exec(db, "ROLLBACK", nullptr);
      if (err)
        *err = "migration " + std::to_string(m.version) + " (" + m.name + ") failed: " + step_err;
      return false;
    }
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db,
                       "INSERT INTO schema_migrations(version, name, applied_ms) VALUES "
                       "(?, ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
                       -1, &st, nullptr);
    sqlite3_bind_int(st, 1, m.version);
    sqlite3_bind_text(st, 2, m.name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE || !Exec(db, "COMMIT", &step_err)) {
      Exec(db, "ROLLBACK", nullptr);
      if (err)
        *err = "migration " + std::to_string(m.version) + " (" + m.name +
               ") could not be recorded: " + sqlite3_errmsg(db);
      return false;
    }
  }
  return true;
}

}  // namespace tailor
