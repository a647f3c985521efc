#include "store/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "common/thread_priority.h"
#include "common/time.h"
#include "store/migrations.h"
#include "store/sqlite.h"

namespace tailor {
namespace {

using sqlite::Exec;
using sqlite::Stmt;

sqlite3* OpenConnection(const std::string& path, bool read_only, bool sync_full, std::string* err) {
  sqlite3* db = sqlite::Open(path, read_only, /*create=*/true, 10000, err);
  if (!db) return nullptr;
  std::string pragmas = "PRAGMA foreign_keys=ON;";
  if (!read_only) {
    // Deleted rows (erasure, retention) are overwritten, not just unlinked.
    pragmas += "PRAGMA secure_delete=ON;";
    pragmas += "PRAGMA journal_mode=WAL;";
    pragmas += sync_full ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;";
  }
  if (Status s = Exec(db, pragmas.c_str()); !s.ok()) {
    if (err) *err = "store '" + path + "' is not usable: " + s.message();
    sqlite3_close(db);
    return nullptr;
  }
  return db;
}

const char* const kInsertEvent =
    "INSERT INTO events(customer_id, type, item_id, offer_id, decision_id, channel, text, "
    "ts_ms, value, quantity, properties) VALUES (?,?,?,?,?,?,?,?,?,?,?)";
const char* const kInsertBareCustomer =
    "INSERT OR IGNORE INTO customers(id, created_ms, updated_ms) VALUES (?, ?, ?)";
const char* const kUpsertCustomer =
    "INSERT INTO customers(id, attributes, consent, created_ms, updated_ms) VALUES (?,?,?,?,?) "
    "ON CONFLICT(id) DO UPDATE SET attributes=excluded.attributes, consent=excluded.consent, "
    "updated_ms=excluded.updated_ms";
const char* const kUpsertItem =
    "INSERT INTO items(id, title, description, category, brand, price, attributes) "
    "VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET title=excluded.title, "
    "description=excluded.description, category=excluded.category, brand=excluded.brand, "
    "price=excluded.price, attributes=excluded.attributes";
const char* const kUpsertOffer =
    "INSERT INTO offers(id, definition) VALUES (?, ?) "
    "ON CONFLICT(id) DO UPDATE SET definition=excluded.definition";
const char* const kInsertDecision =
    "INSERT INTO decisions(id, customer_id, channel, placement, ts_ms, request, "
    "response, trace, experiment, arm, mode) VALUES (?,?,?,?,?,?,?,?,?,?,?)";
const char* const kInsertShadowPick =
    "INSERT OR REPLACE INTO shadow_picks(decision_id, position, offer_id, item_id, propensity, "
    "p_click, p_convert, value) VALUES (?,?,?,?,?,?,?,?)";
const char* const kUpsertTruth =
    "INSERT OR REPLACE INTO demo_truth(customer_id, trait, value) VALUES (?,?,?)";

void BindEvent(Stmt& st, const Event& e) {
  st.Text(1, e.customer_id)
      .Text(2, e.type)
      .TextOrNull(3, e.item_id)
      .TextOrNull(4, e.offer_id)
      .TextOrNull(5, e.decision_id)
      .TextOrNull(6, e.channel)
      .TextOrNull(7, e.text)
      .Int(8, e.ts_ms)
      .Real(9, e.value)
      .Real(10, e.quantity)
      .Text(11, e.properties_json.empty() ? std::string("{}") : e.properties_json);
}

void BindCustomer(Stmt& st, const Customer& c) {
  int64_t now = now_ms();
  st.Text(1, c.id)
      .Text(2, c.attributes_json.empty() ? std::string("{}") : c.attributes_json)
      .Text(3, c.consent_json.empty() ? std::string("{}") : c.consent_json)
      .Int(4, c.created_ms ? c.created_ms : now)
      .Int(5, c.updated_ms ? c.updated_ms : now);
}

void BindItem(Stmt& st, const Item& it) {
  st.Text(1, it.id)
      .Text(2, it.title)
      .Text(3, it.description)
      .Text(4, it.category)
      .Text(5, it.brand)
      .Real(6, it.price)
      .Text(7, it.attributes_json.empty() ? std::string("{}") : it.attributes_json);
}

Event ReadEvent(const Stmt& st, int first) {
  Event e;
  e.customer_id = st.Col(first + 0);
  e.type = st.Col(first + 1);
  e.item_id = st.Col(first + 2);
  e.offer_id = st.Col(first + 3);
  e.decision_id = st.Col(first + 4);
  e.channel = st.Col(first + 5);
  e.text = st.Col(first + 6);
  e.ts_ms = st.ColInt(first + 7);
  e.value = st.ColReal(first + 8);
  e.quantity = st.ColReal(first + 9);
  e.properties_json = st.Col(first + 10);
  e.seq = st.ColInt(first + 11);
  return e;
}

const char* const kEventColumns =
    "customer_id, type, item_id, offer_id, decision_id, channel, text, ts_ms, value, quantity, "
    "properties, seq";

const char* const kInsertImpression =
    "INSERT OR IGNORE INTO impressions(decision_id, position, customer_id, placement, channel, "
    "offer_id, item_id, category, propensity, explore, p_click, segment, features, ts_ms, shown, "
    "experiment, arm, discount) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
const char* const kMarkShown =
    "UPDATE impressions SET shown=1, ts_ms=? WHERE decision_id=? AND position=? AND shown=0";
const char* const kInsertOutcome =
    "INSERT INTO outcomes(decision_id, position, customer_id, offer_id, item_id, event_type, "
    "kind, value, ts_ms, event_seq, by_decision_id, first_of_kind) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
const char* const kImpressionColumns =
    "decision_id, position, customer_id, placement, channel, offer_id, item_id, category, "
    "propensity, explore, p_click, segment, features, ts_ms, shown, experiment, arm, discount";

void BindImpression(Stmt& st, const Impression& m) {
  st.Text(1, m.decision_id)
      .Int(2, m.position)
      .Text(3, m.customer_id)
      .Text(4, m.placement)
      .Text(5, m.channel)
      .Text(6, m.offer_id)
      .Text(7, m.item_id)
      .Text(8, m.category)
      .Real(9, m.propensity)
      .Int(10, m.explore ? 1 : 0)
      .Real(11, m.p_click)
      .Text(12, m.segment)
      .Blob(13, m.features.data(), m.features.size() * sizeof(float))
      .Int(14, m.ts_ms)
      .Int(15, m.shown ? 1 : 0)
      .Text(16, m.experiment)
      .Text(17, m.arm)
      .Real(18, m.discount);
}

// Reads the kImpressionColumns starting at column first.
Impression ReadImpression(const Stmt& st, int first) {
  Impression m;
  m.decision_id = st.Col(first + 0);
  m.position = static_cast<int>(st.ColInt(first + 1));
  m.customer_id = st.Col(first + 2);
  m.placement = st.Col(first + 3);
  m.channel = st.Col(first + 4);
  m.offer_id = st.Col(first + 5);
  m.item_id = st.Col(first + 6);
  m.category = st.Col(first + 7);
  m.propensity = st.ColReal(first + 8);
  m.explore = st.ColInt(first + 9) != 0;
  m.p_click = st.ColReal(first + 10);
  m.segment = st.Col(first + 11);
  std::string_view blob = st.ColBlob(first + 12);
  m.features.resize(blob.size() / sizeof(float));
  if (!m.features.empty()) std::memcpy(m.features.data(), blob.data(), m.features.size() * 4);
  m.ts_ms = st.ColInt(first + 13);
  m.shown = st.ColInt(first + 14) != 0;
  m.experiment = st.Col(first + 15);
  m.arm = st.Col(first + 16);
  m.discount = st.ColReal(first + 17);
  return m;
}

// Outcome columns, then the impression's (NULL when it is not stored: the
// outcome's own decision, position, customer, offer and item stand in).
const char* const kOutcomeSelect =
    "SELECT o.decision_id, o.position, o.customer_id, o.offer_id, o.item_id, o.event_type, "
    "o.kind, o.value, o.ts_ms, o.event_seq, o.by_decision_id, o.first_of_kind, i.decision_id, "
    "i.position, i.customer_id, i.placement, i.channel, i.offer_id, i.item_id, i.category, "
    "i.propensity, i.explore, i.p_click, i.segment, i.features, i.ts_ms, i.shown, i.experiment, "
    "i.arm, i.discount "
    "FROM outcomes o LEFT JOIN impressions i ON i.decision_id = o.decision_id AND "
    "i.position = o.position ";

Outcome ReadOutcome(const Stmt& st) {
  Outcome o;
  if (!st.ColNull(12)) {
    o.impression = ReadImpression(st, 12);
  } else {
    o.impression.decision_id = st.Col(0);
    o.impression.position = static_cast<int>(st.ColInt(1));
    o.impression.customer_id = st.Col(2);
    o.impression.offer_id = st.Col(3);
    o.impression.item_id = st.Col(4);
  }
  o.event_type = st.Col(5);
  o.kind = ParseOutcomeKind(st.ColView(6));
  o.value = st.ColReal(7);
  o.ts_ms = st.ColInt(8);
  o.event_seq = st.ColInt(9);
  o.by_decision_id = st.ColInt(10) != 0;
  o.first_of_kind = st.ColInt(11) != 0;
  return o;
}

struct WriteOp {
  enum class Kind {
    kEvent,
    kDecision,
    kImpressions,
    kShown,
    kOutcome,
    kJourney,
    kFlush,
    kErase,
    kRetention
  };
  Kind kind = Kind::kFlush;
  Event event;
  DecisionRecord decision;
  std::vector<Impression> impressions;  // kImpressions; kShown: the one marked
  Outcome outcome;
  std::vector<JourneyWrite> journey;  // kJourney
  int64_t* seq_out = nullptr;         // kEvent: where the caller wants the seq
  bool urgent = true;  // kEvent, kDecision: a client waits on it (AppendEvent, LogDecisionDurably)
  std::promise<Status> done;     // set for kEvent, kJourney, kFlush, kErase and kRetention
  ErasedRows* erased = nullptr;  // kErase: the counts (the caller keeps it)
};

}  // namespace

// The writer's journey statements: one caller's changes, all or nothing,
// without failing the rest of the batch.
class JourneyWriter {
 public:
  explicit JourneyWriter(sqlite3* db)
      : db_(db),
        upsert_(db,
                "INSERT INTO journey_state(customer_id, journey, stage, entered_ms, data) "
                "VALUES (?,?,?,?,?) ON CONFLICT(customer_id, journey) DO UPDATE SET "
                "stage=excluded.stage, entered_ms=excluded.entered_ms, data=excluded.data"),
        insert_(db,
                "INSERT INTO journey_steps(customer_id, journey, step, due_ms, payload) "
                "VALUES (?,?,?,?,?)"),
        finish_(db,
                "UPDATE journey_steps SET sent_ms=?, payload=?, message=?, attempts=?, next_ms=? "
                "WHERE id=?"),
        move_(db, "UPDATE journey_steps SET due_ms=? WHERE id=?"),
        attempted_(
            db, "UPDATE journey_steps SET attempts=?, next_ms=? WHERE id=? AND acked_ms IS NULL"),
        acked_(db,
               "UPDATE journey_steps SET acked_ms=?, next_ms=NULL WHERE id=? AND message IS NOT "
               "NULL AND acked_ms IS NULL") {}

  Status Apply(const std::vector<JourneyWrite>& writes) {
    if (Status s = Exec(db_, "SAVEPOINT journey"); !s.ok()) return s;
    for (const JourneyWrite& w : writes) {
      if (Status s = Run(w); !s.ok()) {
        Exec(db_, "ROLLBACK TO journey");
        Exec(db_, "RELEASE journey");
        return s;
      }
    }
    return Exec(db_, "RELEASE journey");
  }

 private:
  Status Run(const JourneyWrite& w) {
    switch (w.kind) {
      case JourneyWrite::Kind::kUpsertState:
        upsert_.Text(1, w.customer).Text(2, w.journey).Text(3, w.name).Int(4, w.time);
        return upsert_.Text(5, w.json).Run();
      case JourneyWrite::Kind::kInsertStep:
        insert_.Text(1, w.customer).Text(2, w.journey).Text(3, w.name).Int(4, w.time);
        return insert_.Text(5, w.json).Run();
      case JourneyWrite::Kind::kFinishStep:
        finish_.Int(1, w.time).Text(2, w.json).TextOrNull(3, w.message);
        finish_.Int(4, w.message.empty() ? 0 : 1).IntOrNull(5, w.next_ms);
        return finish_.Int(6, w.id).Run();
      case JourneyWrite::Kind::kMoveStep:
        return move_.Int(1, w.time).Int(2, w.id).Run();
      case JourneyWrite::Kind::kAttempted:
        attempted_.Int(1, w.attempts).IntOrNull(2, w.next_ms);
        return attempted_.Int(3, w.id).Run();
      case JourneyWrite::Kind::kAcked:
        return acked_.Int(1, w.time).Int(2, w.id).Run();
    }
    return Status::Error("unknown journey write");
  }

  sqlite3* db_;
  Stmt upsert_, insert_, finish_, move_, attempted_, acked_;
};

// How long the writer holds logs nobody waits on, for company.
constexpr auto kLogLinger = std::chrono::milliseconds(2);

struct Store::Impl {
  Options options;
  int schema_version = 0;

  // Writer thread state. The writer owns writer_db exclusively.
  sqlite3* writer_db = nullptr;
  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<WriteOp> queue;
  size_t in_batch = 0;     // ops taken off the queue but not yet committed
  size_t waited_on = 0;    // queued urgent events and flushes: a caller waits on each
  size_t max_queued = 0;   // high-water mark of queue.size()
  std::string last_error;  // guarded by queue_mu, like the two below
  int64_t last_error_ms = 0;
  bool failing = false;              // the last batch did not write everything
  RetentionCounts retained;          // guarded by queue_mu
  std::condition_variable space_cv;  // logs wait here while the queue is full
  bool stopping = false;
  std::thread writer;

  // Synchronous writes (tools, admin) share one connection under a mutex.
  std::mutex sync_mu;
  sqlite3* sync_db = nullptr;

  // Pool of read connections; a connection is used by one thread at a time.
  std::mutex pool_mu;
  std::vector<sqlite3*> pool;
  // Statements of the hot reads, prepared once per pooled connection:
  // preparing three per profile load was a third of loading a profile.
  std::mutex cache_mu;
  std::map<std::pair<sqlite3*, const char*>, sqlite3_stmt*> cached;

  ~Impl() {
    for (sqlite3* db : pool) {
      while (sqlite3_stmt* st = sqlite3_next_stmt(db, nullptr)) sqlite3_finalize(st);
      sqlite3_close(db);
    }
    sqlite3_close(sync_db);
    sqlite3_close(writer_db);
  }

  // A read connection checked out of the pool for one scope.
  class Reader {
   public:
    explicit Reader(Impl* impl) : impl_(impl) {
      {
        std::lock_guard lock(impl->pool_mu);
        if (!impl->pool.empty()) {
          db_ = impl->pool.back();
          impl->pool.pop_back();
        }
      }
      if (!db_) db_ = OpenConnection(impl->options.path, true, false, nullptr);
    }
    ~Reader() {
      if (!db_) return;
      std::lock_guard lock(impl_->pool_mu);
      impl_->pool.push_back(db_);
    }
    sqlite3* db() const { return db_; }
    // sql must be a string with static storage: its address is the key.
    Stmt Cached(const char* sql) {
      sqlite3_stmt* st = nullptr;
      std::lock_guard lock(impl_->cache_mu);
      auto [it, fresh] = impl_->cached.try_emplace({db_, sql}, nullptr);
      if (fresh && sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &it->second,
                                      nullptr) != SQLITE_OK) {
        sqlite3_finalize(it->second);
        impl_->cached.erase(it);
        return Stmt(db_, st, Stmt::Borrowed{});
      }
      return Stmt(db_, it->second, Stmt::Borrowed{});
    }

   private:
    Impl* impl_;
    sqlite3* db_ = nullptr;
  };

  // A cached query (sql with static storage) with two integer parameters on
  // a pooled reader; fn(st) for each row.
  template <typename Fn>
  Status ForRows(const char* sql, int64_t p1, int64_t p2, const Fn& fn) {
    Reader r(this);
    if (!r.db()) return Status::Error("no read connection to the store");
    Stmt st = r.Cached(sql);
    if (!st.ok()) return Status::Error(st.error());
    st.Int(1, p1).Int(2, p2);
    while (st.Step() == SQLITE_ROW) fn(st);
    return Status::Ok();
  }

  void WriterLoop() {
    // Nothing waits on the writer on a decision's path (decisions are logged
    // behind it), while an event's acknowledgement may: below the workers.
    LowerThisThreadsPriority(10, "store");
    Stmt insert_event(writer_db, kInsertEvent);
    Stmt insert_customer(writer_db, kInsertBareCustomer);
    Stmt insert_decision(writer_db, kInsertDecision);
    Stmt insert_shadow_pick(writer_db, kInsertShadowPick);
    Stmt insert_impression(writer_db, kInsertImpression);
    Stmt mark_shown(writer_db, kMarkShown);
    Stmt insert_outcome(writer_db, kInsertOutcome);
    JourneyWriter journey_writes(writer_db);
    std::vector<WriteOp> batch;
    std::vector<Status> results;
    auto next_retention = std::chrono::steady_clock::now();
    for (;;) {
      {
        std::unique_lock lock(queue_mu);
        if (options.retention.any()) {
          // Retention runs when the writer has nothing else to do.
          if (!queue_cv.wait_until(lock, next_retention,
                                   [&] { return stopping || !queue.empty(); })) {
            lock.unlock();
            const bool more = RetentionPass(/*whole=*/false);
            next_retention = std::chrono::steady_clock::now() +
                             (more ? std::chrono::seconds(1)
                                   : std::chrono::milliseconds(options.retention.every_ms));
            continue;
          }
        } else {
          queue_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        }
        if (queue.empty() && stopping) return;
        // Logs nobody waits on (decisions, impressions, outcomes) wait a
        // moment for company: one commit, and one fsync, for many
        // decisions. An event or a flush ends the wait at once.
        queue_cv.wait_for(lock, kLogLinger, [&] {
          return stopping || waited_on > 0 || queue.size() >= options.max_batch;
        });
        size_t n = std::min(queue.size(), options.max_batch);
        for (size_t i = 0; i < n; ++i) {
          waited_on -= IsWaitedOn(queue.front());
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        space_cv.notify_all();
        in_batch = batch.size();
      }
      results.assign(batch.size(), Status::Ok());
      bool checkpoint = false, retention_now = false;
      Status tx = Exec(writer_db, "BEGIN IMMEDIATE");
      for (size_t i = 0; tx.ok() && i < batch.size(); ++i) {
        WriteOp& op = batch[i];
        if (op.kind == WriteOp::Kind::kEvent) {
          insert_customer.Text(1, op.event.customer_id)
              .Int(2, op.event.ts_ms)
              .Int(3, op.event.ts_ms);
          results[i] = insert_customer.Run();
          if (results[i].ok()) {
            BindEvent(insert_event, op.event);
            results[i] = insert_event.Run();
            if (results[i].ok() && op.seq_out) *op.seq_out = sqlite3_last_insert_rowid(writer_db);
          }
        } else if (op.kind == WriteOp::Kind::kImpressions || op.kind == WriteOp::Kind::kShown ||
                   op.kind == WriteOp::Kind::kOutcome) {
          WriteFeedback(op, insert_impression, mark_shown, insert_outcome);
        } else if (op.kind == WriteOp::Kind::kJourney) {
          results[i] = journey_writes.Apply(op.journey);
        } else if (op.kind == WriteOp::Kind::kRetention) {
          retention_now = true;  // after this batch's commit: it runs its own
        } else if (op.kind == WriteOp::Kind::kErase) {
          results[i] = EraseRows(op.event.customer_id, op.erased);
          checkpoint = true;
        } else if (op.kind == WriteOp::Kind::kDecision) {
          const DecisionRecord& d = op.decision;
          insert_decision.Text(1, d.id)
              .TextOrNull(2, d.customer_id)
              .Text(3, d.channel)
              .Text(4, d.placement)
              .Int(5, d.ts_ms)
              .Text(6, d.request_json)
              .Text(7, d.response_json)
              .Text(9, d.experiment)
              .Text(10, d.arm)
              .Text(11, d.mode.empty() ? std::string("live") : d.mode);
          // JSON as text; the engine's binary record (decision/trace.h) as a blob.
          if (d.trace_json.empty() || d.trace_json[0] == '{')
            insert_decision.Text(8, d.trace_json.empty() ? std::string("{}") : d.trace_json);
          else
            insert_decision.Blob(8, d.trace_json.data(), d.trace_json.size());
          if (Status s = insert_decision.Run(); !s.ok()) {
            log::Error("store", "decision " + d.id + " not logged: " + s.message());
            if (op.urgent) results[i] = s;  // a client waits on it
          }
          for (const ShadowPick& p : d.shadow_picks) {
            insert_shadow_pick.Text(1, d.id)
                .Int(2, p.position)
                .Text(3, p.offer_id)
                .Text(4, p.item_id)
                .Real(5, p.propensity)
                .Real(6, p.p_click)
                .Real(7, p.p_convert)
                .Real(8, p.value);
            if (Status s = insert_shadow_pick.Run(); !s.ok()) {
              log::Error("store", "shadow picks of " + d.id + " not logged: " + s.message());
              break;
            }
          }
        }
      }
      if (tx.ok()) tx = Exec(writer_db, "COMMIT");
      if (!tx.ok()) {
        Exec(writer_db, "ROLLBACK");
        log::Error("store", "write batch failed: " + tx.message());
      }
      // Erasure: the WAL still holds the rows as first written; copy the
      // zeroed pages into the database and empty it.
      if (tx.ok() && checkpoint) tx = Exec(writer_db, "PRAGMA wal_checkpoint(TRUNCATE)");
      if (retention_now) RetentionPass(/*whole=*/true);
      Status first_failure = tx;
      for (const Status& r : results)
        if (first_failure.ok() && !r.ok()) first_failure = r;
      {
        // Before any caller hears back, so `health` agrees with what it heard.
        std::lock_guard lock(queue_mu);
        failing = !first_failure.ok();
        if (failing) {
          last_error = first_failure.message();
          last_error_ms = now_ms();
        }
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        WriteOp& op = batch[i];
        if ((op.kind == WriteOp::Kind::kDecision && !op.urgent) ||
            op.kind == WriteOp::Kind::kImpressions || op.kind == WriteOp::Kind::kShown ||
            op.kind == WriteOp::Kind::kOutcome)
          continue;
        op.done.set_value(tx.ok() ? results[i] : tx);
      }
      batch.clear();
      {
        std::lock_guard lock(queue_mu);
        in_batch = 0;
      }
    }
  }

  // One retention step per rule (each in its own short transaction, at most
  // kRetentionChunk rows), or with whole, one more step each until none is
  // left. Returns whether some rule had more to do.
  static constexpr int64_t kRetentionChunk = 5000;
  bool RetentionPass(bool whole) {
    const Retention& r = options.retention;
    // Each rule: its period, its chunk (?1 = the cutoff), what it counts.
    // Shadow picks go with their decisions, before them, uncounted.
    struct Rule {
      int64_t days;
      const char* sql;
      int64_t RetentionCounts::*count;
    };
    const Rule rules[] = {
        {r.decisions_days,
         "DELETE FROM shadow_picks WHERE decision_id IN (SELECT id FROM decisions WHERE "
         "ts_ms < ?1 LIMIT 5000)",
         nullptr},
        {r.decisions_days,
         "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE ts_ms < ?1 LIMIT 5000)",
         &RetentionCounts::decisions},
        {r.decisions_days,
         "DELETE FROM impressions WHERE (decision_id, position) IN (SELECT decision_id, "
         "position FROM impressions WHERE ts_ms < ?1 LIMIT 5000)",
         &RetentionCounts::impressions},
        {r.decisions_days,
         "DELETE FROM outcomes WHERE seq IN (SELECT seq FROM outcomes WHERE ts_ms < ?1 LIMIT 5000)",
         &RetentionCounts::outcomes},
        // Through the partial index of decisions still holding a trace.
        {r.traces_days,
         "UPDATE decisions SET trace='{}' WHERE id IN (SELECT id FROM decisions WHERE "
         "trace != '{}' AND ts_ms < ?1 LIMIT 5000)",
         &RetentionCounts::traces},
        {r.events_days,
         "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE ts_ms < ?1 LIMIT 5000)",
         &RetentionCounts::events},
        // Through the partial index of chat lines still holding their text.
        {r.chat_text_days,
         "UPDATE events SET text=NULL WHERE seq IN (SELECT seq FROM events WHERE "
         "type='chat' AND text IS NOT NULL AND ts_ms < ?1 LIMIT 5000)",
         &RetentionCounts::chat_texts},
    };
    const int64_t now = now_ms();
    RetentionCounts n;
    bool more = false;
    for (const Rule& rule : rules) {
      if (!rule.days) continue;
      // A chunk per transaction until one changes fewer rows than a chunk
      // (or once, unless whole).
      for (;;) {
        if (!Exec(writer_db, "BEGIN IMMEDIATE").ok()) break;
        Stmt st(writer_db, rule.sql);
        st.Int(1, now - rule.days * 86'400'000);
        Status s = st.Run();
        const int64_t changed = s.ok() ? sqlite3_changes(writer_db) : 0;
        if (s.ok()) s = Exec(writer_db, "COMMIT");
        if (!s.ok()) {
          Exec(writer_db, "ROLLBACK");
          log::Error("store", std::string("retention failed: ") + s.message());
          break;
        }
        if (rule.count) n.*rule.count += changed;
        if (changed < kRetentionChunk) break;
        if (!whole) {
          more = true;
          break;
        }
      }
    }
    std::lock_guard lock(queue_mu);
    RetentionCounts& t = retained;
    t.events += n.events, t.decisions += n.decisions, t.impressions += n.impressions;
    t.outcomes += n.outcomes, t.traces += n.traces, t.chat_texts += n.chat_texts;
    t.last_run_ms = now;
    return more;
  }

  // Every row about the customer, in every table (inside the batch's
  // transaction).
  Status EraseRows(const std::string& customer, ErasedRows* counts) {
    struct Table {
      const char* sql;
      int64_t ErasedRows::*count;
    };
    static const Table kTables[] = {
        {"DELETE FROM shadow_picks WHERE decision_id IN "
         "(SELECT id FROM decisions WHERE customer_id=?1)",
         nullptr},  // counted with their decisions
        {"DELETE FROM outcomes WHERE customer_id=?1", &ErasedRows::outcomes},
        {"DELETE FROM impressions WHERE customer_id=?1", &ErasedRows::impressions},
        {"DELETE FROM decisions WHERE customer_id=?1", &ErasedRows::decisions},
        {"DELETE FROM events WHERE customer_id=?1", &ErasedRows::events},
        {"DELETE FROM journey_steps WHERE customer_id=?1", &ErasedRows::journey_rows},
        {"DELETE FROM journey_state WHERE customer_id=?1", &ErasedRows::journey_rows},
        {"DELETE FROM demo_truth WHERE customer_id=?1", &ErasedRows::customer},
        {"DELETE FROM customers WHERE id=?1", &ErasedRows::customer},
    };
    ErasedRows n;
    // All or nothing, without failing the rest of the batch.
    if (Status s = Exec(writer_db, "SAVEPOINT erase"); !s.ok()) return s;
    for (const Table& t : kTables) {
      Stmt st(writer_db, t.sql);
      st.Text(1, customer);
      if (Status s = st.Run(); !s.ok()) {
        Exec(writer_db, "ROLLBACK TO erase");
        Exec(writer_db, "RELEASE erase");
        return s;
      }
      if (t.count) n.*t.count += sqlite3_changes(writer_db);
    }
    if (counts) *counts = n;
    return Exec(writer_db, "RELEASE erase");
  }

  // The fire-and-forget feedback writes: a failure is logged, never returned.
  static void WriteFeedback(const WriteOp& op, Stmt& insert_impression, Stmt& mark_shown,
                            Stmt& insert_outcome) {
    Status s = Status::Ok();
    std::string what;
    if (op.kind == WriteOp::Kind::kImpressions) {
      for (const Impression& m : op.impressions) {
        BindImpression(insert_impression, m);
        if (s = insert_impression.Run(); !s.ok()) {
          what = "impressions of " + m.decision_id;
          break;
        }
      }
    } else if (op.kind == WriteOp::Kind::kShown) {
      const Impression& m = op.impressions.front();
      mark_shown.Int(1, m.ts_ms).Text(2, m.decision_id).Int(3, m.position);
      s = mark_shown.Run();
      what = "impression " + m.decision_id;
    } else {
      const Outcome& o = op.outcome;
      insert_outcome.Text(1, o.impression.decision_id)
          .Int(2, o.impression.position)
          .Text(3, o.impression.customer_id)
          .Text(4, o.impression.offer_id)
          .Text(5, o.impression.item_id)
          .Text(6, o.event_type)
          .Text(7, OutcomeKindName(o.kind))
          .Real(8, o.value)
          .Int(9, o.ts_ms)
          .Int(10, o.event_seq)
          .Int(11, o.by_decision_id ? 1 : 0)
          .Int(12, o.first_of_kind ? 1 : 0);
      s = insert_outcome.Run();
      what = "outcome of " + o.impression.decision_id;
    }
    if (!s.ok()) log::Error("store", what + " not logged: " + s.message());
  }

  static bool IsWaitedOn(const WriteOp& op) {
    return ((op.kind == WriteOp::Kind::kEvent || op.kind == WriteOp::Kind::kDecision) &&
            op.urgent) ||
           op.kind == WriteOp::Kind::kJourney || op.kind == WriteOp::Kind::kFlush ||
           op.kind == WriteOp::Kind::kErase || op.kind == WriteOp::Kind::kRetention;
  }

  void Enqueue(WriteOp op) {
    bool wake;
    {
      std::unique_lock lock(queue_mu);
      const bool waited = IsWaitedOn(op);
      // Events are bounded by their callers (the ingest lane's queue) and
      // a waiter must never wait behind logs; logs wait for room.
      if (!waited && queue.size() >= options.max_queued_logs) {
        queue_cv.notify_one();
        space_cv.wait(lock, [&] { return queue.size() < options.max_queued_logs || stopping; });
      }
      waited_on += waited;
      // Wake the writer only when it has something to do now: a log while
      // it lingers joins the batch without a context switch.
      wake = waited || queue.empty() || queue.size() + 1 >= options.max_batch;
      queue.push_back(std::move(op));
      max_queued = std::max(max_queued, queue.size());
    }
    if (wake) queue_cv.notify_one();
  }

  // Queues an op a caller waits on; without a writer it fails at once with
  // no_writer.
  std::future<Status> Submit(WriteOp op, const char* no_writer = "the store is read-only") {
    std::future<Status> f = op.done.get_future();
    if (!writer.joinable()) {
      op.done.set_value(Status::Error(no_writer));
      return f;
    }
    Enqueue(std::move(op));
    return f;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  if (impl_->writer.joinable()) {
    {
      std::lock_guard lock(impl_->queue_mu);
      impl_->stopping = true;
    }
    impl_->queue_cv.notify_all();
    impl_->space_cv.notify_all();
    impl_->writer.join();
  }
}

std::unique_ptr<Store> Store::Open(const Options& options, std::string* err) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.path.empty()) {
    if (err) *err = "store path is empty";
    return nullptr;
  }
  if (options.read_only) {
    sqlite3* db = OpenConnection(options.path, true, false, err);
    if (!db) return nullptr;
    impl->schema_version = SchemaVersion(db);
    impl->pool.push_back(db);
    if (impl->schema_version <= 0) {
      if (err) *err = "'" + options.path + "' is not a Tailor store";
      return nullptr;
    }
    return std::unique_ptr<Store>(new Store(std::move(impl)));
  }
  impl->sync_db = OpenConnection(options.path, false, options.synchronous_full, err);
  if (!impl->sync_db) return nullptr;
  std::string merr;
  if (!Migrate(impl->sync_db, BuiltinMigrations(), &merr)) {
    if (err) *err = "store '" + options.path + "': " + merr;
    return nullptr;
  }
  impl->schema_version = SchemaVersion(impl->sync_db);
  if (options.start_writer) {
    impl->writer_db = OpenConnection(options.path, false, options.synchronous_full, err);
    if (!impl->writer_db) return nullptr;
    // Every event lands in a per-customer index at a random place: with the
    // default 2 MB page cache most inserts re-read their index pages.
    Exec(impl->writer_db, "PRAGMA cache_size=-65536");
    impl->writer = std::thread([p = impl.get()] { p->WriterLoop(); });
  }
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

const std::string& Store::path() const { return impl_->options.path; }
int Store::schema_version() const { return impl_->schema_version; }

std::future<Status> Store::AppendEvent(Event event, int64_t* seq_out, bool urgent) {
  WriteOp op;
  op.kind = WriteOp::Kind::kEvent;
  op.urgent = urgent;
  op.event = std::move(event);
  op.seq_out = seq_out;
  return impl_->Submit(std::move(op), "store has no writer (opened read-only or for bulk load)");
}

void Store::LogDecision(DecisionRecord decision) {
  if (!impl_->writer.joinable()) return;
  WriteOp op;
  op.kind = WriteOp::Kind::kDecision;
  op.urgent = false;
  op.decision = std::move(decision);
  impl_->Enqueue(std::move(op));
}

std::future<Status> Store::LogDecisionDurably(DecisionRecord decision) {
  WriteOp op;
  op.kind = WriteOp::Kind::kDecision;
  op.decision = std::move(decision);
  return impl_->Submit(std::move(op));
}

void Store::LogImpressions(std::vector<Impression> impressions) {
  if (!impl_->writer.joinable() || impressions.empty()) return;
  WriteOp op;
  op.kind = WriteOp::Kind::kImpressions;
  op.impressions = std::move(impressions);
  impl_->Enqueue(std::move(op));
}

void Store::MarkShown(const std::string& decision_id, int position, int64_t ts_ms) {
  if (!impl_->writer.joinable()) return;
  WriteOp op;
  op.kind = WriteOp::Kind::kShown;
  Impression& m = op.impressions.emplace_back();
  m.decision_id = decision_id;
  m.position = position;
  m.ts_ms = ts_ms;
  impl_->Enqueue(std::move(op));
}

void Store::LogOutcome(Outcome outcome) {
  if (!impl_->writer.joinable()) return;
  WriteOp op;
  op.kind = WriteOp::Kind::kOutcome;
  op.outcome = std::move(outcome);
  impl_->Enqueue(std::move(op));
}

std::future<Status> Store::EraseCustomer(const std::string& customer_id, ErasedRows* erased) {
  WriteOp op;
  op.kind = WriteOp::Kind::kErase;
  op.event.customer_id = customer_id;
  op.erased = erased;
  return impl_->Submit(std::move(op));
}

std::future<Status> Store::WriteJourney(std::vector<JourneyWrite> writes) {
  WriteOp op;
  op.kind = WriteOp::Kind::kJourney;
  op.journey = std::move(writes);
  return impl_->Submit(std::move(op));
}

std::future<Status> Store::EnforceRetention() {
  WriteOp op;
  op.kind = WriteOp::Kind::kRetention;
  return impl_->Submit(std::move(op));
}

RetentionCounts Store::Retained() const {
  std::lock_guard lock(impl_->queue_mu);
  return impl_->retained;
}

void Store::Flush() {
  if (!impl_->writer.joinable()) return;
  WriteOp op;
  op.kind = WriteOp::Kind::kFlush;
  std::future<Status> f = op.done.get_future();
  impl_->Enqueue(std::move(op));
  f.wait();
}

bool Store::writable() const { return impl_->writer.joinable(); }

size_t Store::MaxQueuedWrites() const {
  std::lock_guard lock(impl_->queue_mu);
  return impl_->max_queued;
}

Store::WriterState Store::Writer() const {
  std::lock_guard lock(impl_->queue_mu);
  WriterState w;
  w.pending = impl_->queue.size() + impl_->in_batch;
  w.capacity = impl_->options.max_queued_logs;
  w.last_error = impl_->last_error;
  w.last_error_ms = impl_->last_error_ms;
  w.failing = impl_->failing;
  return w;
}

size_t Store::PendingWrites() const {
  std::lock_guard lock(impl_->queue_mu);
  return impl_->queue.size() + impl_->in_batch;
}

namespace {
Status NeedsWritable(sqlite3* db) {
  return db ? Status::Ok() : Status::Error("store is opened read-only");
}
}  // namespace

Status Store::UpsertCustomer(const Customer& c) {
  std::lock_guard lock(impl_->sync_mu);
  if (Status s = NeedsWritable(impl_->sync_db); !s.ok()) return s;
  Stmt st(impl_->sync_db, kUpsertCustomer);
  BindCustomer(st, c);
  return st.Run();
}

Status Store::UpsertItem(const Item& item) {
  std::lock_guard lock(impl_->sync_mu);
  if (Status s = NeedsWritable(impl_->sync_db); !s.ok()) return s;
  Stmt st(impl_->sync_db, kUpsertItem);
  BindItem(st, item);
  return st.Run();
}

Status Store::UpsertOffer(const OfferRecord& offer) {
  std::lock_guard lock(impl_->sync_mu);
  if (Status s = NeedsWritable(impl_->sync_db); !s.ok()) return s;
  Stmt st(impl_->sync_db, kUpsertOffer);
  st.Text(1, offer.id).Text(2, offer.definition_json);
  return st.Run();
}

Status Store::RegisterModel(const ModelRecord& m, int64_t* id_out) {
  std::lock_guard lock(impl_->sync_mu);
  sqlite3* db = impl_->sync_db;
  if (Status s = NeedsWritable(db); !s.ok()) return s;
  if (Status s = Exec(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  Status s = Status::Ok();
  if (m.active) {
    Stmt off(db, "UPDATE models SET active=0 WHERE plugin=?");
    off.Text(1, m.plugin);
    s = off.Run();
  }
  if (s.ok()) {
    Stmt ins(db,
             "INSERT INTO models(plugin, path, created_ms, metrics, active) VALUES (?,?,?,?,?)");
    ins.Text(1, m.plugin)
        .Text(2, m.path)
        .Int(3, m.created_ms ? m.created_ms : now_ms())
        .Text(4, m.metrics_json.empty() ? std::string("{}") : m.metrics_json)
        .Int(5, m.active ? 1 : 0);
    s = ins.Run();
  }
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Exec(db, "ROLLBACK");
    return s;
  }
  if (id_out) *id_out = sqlite3_last_insert_rowid(db);
  return s;
}

Status Store::RetireInactiveModels(const std::string& plugin, const std::string& keep_path,
                                   std::vector<std::string>* paths) {
  std::lock_guard lock(impl_->sync_mu);
  sqlite3* db = impl_->sync_db;
  if (Status s = NeedsWritable(db); !s.ok()) return s;
  if (Status s = Exec(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  std::vector<std::string> found;
  Stmt sel(db, "SELECT path FROM models WHERE plugin=? AND active=0 AND path<>?");
  sel.Text(1, plugin).Text(2, keep_path);
  int rc;
  while ((rc = sel.Step()) == SQLITE_ROW) found.push_back(sel.Col(0));
  Status s = rc == SQLITE_DONE ? Status::Ok() : Status::Error(sqlite3_errmsg(db));
  if (s.ok()) {
    Stmt del(db, "DELETE FROM models WHERE plugin=? AND active=0 AND path<>?");
    del.Text(1, plugin).Text(2, keep_path);
    s = del.Run();
  }
  if (s.ok()) s = Exec(db, "COMMIT");
  if (!s.ok()) {
    Exec(db, "ROLLBACK");
    return s;
  }
  paths->insert(paths->end(), found.begin(), found.end());
  return s;
}

// --- Bulk -------------------------------------------------------------------

struct Store::Bulk::Impl {
  sqlite3* db = nullptr;  // owned
  bool committed = false;
  std::unique_ptr<Stmt> customer, item, offer, event, truth;
  ~Impl() {
    customer.reset();
    item.reset();
    offer.reset();
    event.reset();
    truth.reset();
    if (db && !committed) Exec(db, "ROLLBACK");
    sqlite3_close(db);
  }
};

Store::Bulk::Bulk(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Bulk::~Bulk() = default;

Status Store::Bulk::Customer(const tailor::Customer& c) {
  BindCustomer(*impl_->customer, c);
  return impl_->customer->Run();
}
Status Store::Bulk::Item(const tailor::Item& item) {
  BindItem(*impl_->item, item);
  return impl_->item->Run();
}
Status Store::Bulk::Offer(const OfferRecord& offer) {
  impl_->offer->Text(1, offer.id).Text(2, offer.definition_json);
  return impl_->offer->Run();
}
Status Store::Bulk::Event(const tailor::Event& e) {
  BindEvent(*impl_->event, e);
  return impl_->event->Run();
}
Status Store::Bulk::Truth(const std::string& customer_id, const std::string& trait, double value) {
  impl_->truth->Text(1, customer_id).Text(2, trait).Real(3, value);
  return impl_->truth->Run();
}
Status Store::Bulk::Commit() {
  if (impl_->committed) return Status::Error("bulk already committed");
  Status s = Exec(impl_->db, "COMMIT");
  if (s.ok()) impl_->committed = true;
  return s;
}

std::unique_ptr<Store::Bulk> Store::BeginBulk(std::string* err) {
  if (impl_->options.read_only) {
    if (err) *err = "store is opened read-only";
    return nullptr;
  }
  auto bi = std::make_unique<Bulk::Impl>();
  // A bulk load trades per-commit fsync for speed: one commit at the end.
  bi->db = OpenConnection(impl_->options.path, false, false, err);
  if (!bi->db) return nullptr;
  if (Status s = Exec(bi->db, "BEGIN IMMEDIATE"); !s.ok()) {
    if (err) *err = s.message();
    return nullptr;
  }
  bi->customer = std::make_unique<Stmt>(bi->db, kUpsertCustomer);
  bi->item = std::make_unique<Stmt>(bi->db, kUpsertItem);
  bi->offer = std::make_unique<Stmt>(bi->db, kUpsertOffer);
  bi->event = std::make_unique<Stmt>(bi->db, kInsertEvent);
  bi->truth = std::make_unique<Stmt>(bi->db, kUpsertTruth);
  return std::unique_ptr<Bulk>(new Bulk(std::move(bi)));
}

// --- Reads ------------------------------------------------------------------

std::optional<Customer> Store::GetCustomer(const std::string& id) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return std::nullopt;
  Stmt st(r.db(),
          "SELECT id, attributes, consent, created_ms, updated_ms FROM customers WHERE id=?");
  st.Text(1, id);
  if (st.Step() != SQLITE_ROW) return std::nullopt;
  return Customer{st.Col(0), st.Col(1), st.Col(2), st.ColInt(3), st.ColInt(4)};
}

Profile Store::LoadProfile(const std::string& customer_id, size_t recent_limit,
                           int64_t history_days) {
  Profile p;
  Impl::Reader r(impl_.get());
  if (!r.db()) return p;
  {
    Stmt st = r.Cached(
        "SELECT id, attributes, consent, created_ms, updated_ms FROM customers WHERE id=?");
    st.Text(1, customer_id);
    if (st.Step() == SQLITE_ROW) {
      p.known = true;
      p.customer = Customer{st.Col(0), st.Col(1), st.Col(2), st.ColInt(3), st.ColInt(4)};
    } else {
      p.customer.id = customer_id;
    }
  }
  // One pass over the customer's events, newest first, in the covering index
  // events_history: all-time counts by type, first and last seen, and the
  // history of the history_days before the earlier of now and the newest
  // event (anchored at the newest too, so that a replay or a test whose
  // clock is behind the wall clock still sees its whole window).
  {
    Stmt st = r.Cached(
        "SELECT type, offer_id, item_id, ts_ms FROM events WHERE customer_id=? "
        "ORDER BY ts_ms DESC");
    st.Text(1, customer_id);
    EventHistory::Builder b;
    int64_t horizon = INT64_MIN;
    int64_t* count = nullptr;  // of the previous row's type: runs of one type are common
    std::string type;
    while (st.Step() == SQLITE_ROW) {
      const int64_t ts = st.ColInt(3);
      if (p.counts.empty()) {  // the newest event
        p.known = true;
        p.last_seen_ms = ts;
        horizon = std::min(now_ms(), ts) - history_days * 86'400'000;
      }
      p.first_seen_ms = ts;
      if (!count || st.ColView(0) != type) {
        type.assign(st.ColView(0));
        count = &p.counts[type];
      }
      ++*count;
      if (ts >= horizon) b.Add(st.ColView(0), st.ColView(1), st.ColView(2), ts);
    }
    if (!p.counts.empty()) p.history = b.Build(horizon);
  }
  if (recent_limit > 0 && !p.counts.empty()) {
    static const std::string sql =
        std::string("SELECT ") + kEventColumns +
        " FROM events WHERE customer_id=? ORDER BY ts_ms DESC, seq DESC LIMIT ?";
    Stmt st = r.Cached(sql.c_str());
    st.Text(1, customer_id).Int(2, static_cast<int64_t>(recent_limit));
    while (st.Step() == SQLITE_ROW) p.recent.push_back(ReadEvent(st, 0));
    std::reverse(p.recent.begin(), p.recent.end());
  }
  return p;
}

std::optional<DecisionRecord> Store::GetDecision(const std::string& id) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return std::nullopt;
  Stmt st(
      r.db(),
      "SELECT id, customer_id, channel, placement, ts_ms, request, response, trace, experiment, "
      "arm, mode FROM decisions WHERE id=?");
  st.Text(1, id);
  if (st.Step() != SQLITE_ROW) return std::nullopt;
  return DecisionRecord{st.Col(0), st.Col(1), st.Col(2), st.Col(3), st.ColInt(4), st.Col(5),
                        st.Col(6), st.Col(7), st.Col(8), st.Col(9), st.Col(10)};
}

std::vector<Item> Store::LoadItems() {
  std::vector<Item> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  Stmt st(r.db(),
          "SELECT id, title, description, category, brand, price, attributes FROM items "
          "ORDER BY id");
  while (st.Step() == SQLITE_ROW)
    out.push_back(
        Item{st.Col(0), st.Col(1), st.Col(2), st.Col(3), st.Col(4), st.ColReal(5), st.Col(6)});
  return out;
}

std::vector<OfferRecord> Store::LoadOffers() {
  std::vector<OfferRecord> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  Stmt st(r.db(), "SELECT id, definition FROM offers ORDER BY id");
  while (st.Step() == SQLITE_ROW) out.push_back(OfferRecord{st.Col(0), st.Col(1)});
  return out;
}

std::vector<ModelRecord> Store::ActiveModels() {
  std::vector<ModelRecord> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  Stmt st(r.db(),
          "SELECT id, plugin, path, created_ms, metrics FROM models WHERE active=1 ORDER BY id");
  while (st.Step() == SQLITE_ROW)
    out.push_back(ModelRecord{st.ColInt(0), st.Col(1), st.Col(2), st.ColInt(3), st.Col(4), true});
  return out;
}

std::map<std::string, double> Store::Truth(const std::string& customer_id) {
  std::map<std::string, double> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  Stmt st(r.db(), "SELECT trait, value FROM demo_truth WHERE customer_id=?");
  st.Text(1, customer_id);
  while (st.Step() == SQLITE_ROW) out[st.Col(0)] = st.ColReal(1);
  return out;
}

int64_t Store::ForEachEvent(int64_t since_ms, const std::function<bool(const Event&)>& fn,
                            bool learnable_only) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  // Learnable: the customer has not said personalization or profiling false
  // (model/consent.h; unreadable consent counts as not said).
  std::string sql =
      std::string("SELECT ") + kEventColumns + " FROM events WHERE ts_ms >= ? " +
      (learnable_only ? "AND customer_id NOT IN (SELECT id FROM customers WHERE "
                        "json_valid(consent) AND (json_extract(consent, '$.personalization') "
                        "IS 0 OR json_extract(consent, '$.profiling') IS 0)) "
                      : "") +
      "ORDER BY seq";
  Stmt st(r.db(), sql.c_str());
  if (!st.ok()) return -1;
  st.Int(1, since_ms);
  int64_t n = 0;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++n;
    if (!fn(ReadEvent(st, 0))) break;
  }
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

Status Store::LoadJourneyCustomer(const std::string& customer_id, int64_t contacts_since_ms,
                                  JourneyCustomerRows* out) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return Status::Error("no read connection to the store");
  // One read transaction: the three reads see the same moment.
  if (Status s = Exec(r.db(), "BEGIN"); !s.ok()) return s;
  auto read = [&]() -> Status {
    Stmt states =
        r.Cached("SELECT journey, stage, entered_ms, data FROM journey_state WHERE customer_id=?");
    if (!states.ok()) return Status::Error(states.error());
    states.Text(1, customer_id);
    while (states.Step() == SQLITE_ROW)
      out->states.push_back({states.Col(0), states.Col(1), states.ColInt(2), states.Col(3)});
    Stmt contacts = r.Cached(
        "SELECT channel, ts_ms FROM events WHERE customer_id=? AND ts_ms>? AND "
        "type='impression' AND channel IS NOT NULL AND channel<>''");
    if (!contacts.ok()) return Status::Error(contacts.error());
    contacts.Text(1, customer_id).Int(2, contacts_since_ms);
    while (contacts.Step() == SQLITE_ROW)
      out->contacts.emplace_back(contacts.Col(0), contacts.ColInt(1));
    Stmt active = r.Cached(
        "SELECT min(ts_ms), max(ts_ms) FROM events WHERE customer_id=? AND type<>'impression'");
    if (!active.ok()) return Status::Error(active.error());
    active.Text(1, customer_id);
    if (active.Step() == SQLITE_ROW && !active.ColNull(0)) {
      out->first_active_ms = active.ColInt(0);
      out->last_active_ms = active.ColInt(1);
    }
    return Status::Ok();
  };
  Status s = read();
  Exec(r.db(), "COMMIT");
  return s;
}

Status Store::DueJourneySteps(int64_t now_ms, size_t max, std::vector<JourneyStepRow>* out) {
  return impl_->ForRows(
      "SELECT id, customer_id, journey, step, due_ms, payload FROM journey_steps "
      "WHERE sent_ms IS NULL AND due_ms<=? ORDER BY due_ms, id LIMIT ?",
      now_ms, static_cast<int64_t>(max), [&](const Stmt& st) {
        out->push_back({st.ColInt(0), st.Col(1), st.Col(2), st.Col(3), st.ColInt(4), st.Col(5)});
      });
}

Status Store::OutboxDue(int64_t now_ms, size_t max, std::vector<OutboxRow>* out) {
  return impl_->ForRows(
      "SELECT id, message, attempts FROM journey_steps WHERE next_ms IS NOT NULL AND next_ms<=? "
      "ORDER BY next_ms, id LIMIT ?",
      now_ms, static_cast<int64_t>(max), [&](const Stmt& st) {
        out->push_back({st.ColInt(0), st.Col(1), st.ColInt(2)});
      });
}

Status Store::OutboxPending(int64_t after_id, size_t max, std::vector<OutboxRow>* out) {
  return impl_->ForRows(
      "SELECT id, message, attempts FROM journey_steps WHERE message IS NOT NULL AND "
      "acked_ms IS NULL AND id>? ORDER BY id LIMIT ?",
      after_id, static_cast<int64_t>(max), [&](const Stmt& st) {
        out->push_back({st.ColInt(0), st.Col(1), st.ColInt(2)});
      });
}

OutboxCounts Store::Outbox() {
  OutboxCounts c;
  Impl::Reader r(impl_.get());
  if (!r.db()) return c;
  Stmt st = r.Cached(
      "SELECT count(*), coalesce(sum(next_ms IS NULL), 0) FROM journey_steps "
      "WHERE message IS NOT NULL AND acked_ms IS NULL");
  if (st.Step() == SQLITE_ROW) {
    c.unacked = st.ColInt(0);
    c.given_up = st.ColInt(1);
  }
  return c;
}

std::vector<Impression> Store::ImpressionsOf(const std::string& decision_id) {
  std::vector<Impression> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  static const std::string sql = std::string("SELECT ") + kImpressionColumns +
                                 " FROM impressions WHERE decision_id=? ORDER BY position";
  Stmt st = r.Cached(sql.c_str());
  st.Text(1, decision_id);
  while (st.Step() == SQLITE_ROW) out.push_back(ReadImpression(st, 0));
  return out;
}

std::vector<Impression> Store::RecentImpressions(const std::string& customer_id, int64_t since_ms,
                                                 size_t limit) {
  std::vector<Impression> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  static const std::string sql = std::string("SELECT ") + kImpressionColumns +
                                 " FROM impressions WHERE customer_id=? AND ts_ms>=? AND shown=1 "
                                 "ORDER BY ts_ms DESC, decision_id DESC, position LIMIT ?";
  Stmt st = r.Cached(sql.c_str());
  st.Text(1, customer_id).Int(2, since_ms).Int(3, static_cast<int64_t>(limit));
  while (st.Step() == SQLITE_ROW) out.push_back(ReadImpression(st, 0));
  return out;
}

int64_t Store::ForEachImpression(int64_t since_ms,
                                 const std::function<bool(const Impression&)>& fn) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  std::string sql = std::string("SELECT ") + kImpressionColumns +
                    " FROM impressions WHERE ts_ms >= ? ORDER BY ts_ms, decision_id, position";
  Stmt st(r.db(), sql.c_str());
  if (!st.ok()) return -1;
  st.Int(1, since_ms);
  int64_t n = 0;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++n;
    if (!fn(ReadImpression(st, 0))) break;
  }
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

int64_t Store::ForEachOutcome(int64_t since_ms, const std::function<bool(const Outcome&)>& fn) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  std::string sql = std::string(kOutcomeSelect) + "WHERE o.ts_ms >= ? ORDER BY o.seq";
  Stmt st(r.db(), sql.c_str());
  if (!st.ok()) return -1;
  st.Int(1, since_ms);
  int64_t n = 0;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++n;
    if (!fn(ReadOutcome(st))) break;
  }
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

std::vector<Outcome> Store::OutcomesOf(const std::string& decision_id) {
  std::vector<Outcome> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  static const std::string sql =
      std::string(kOutcomeSelect) + "WHERE o.decision_id=? ORDER BY o.seq";
  Stmt st = r.Cached(sql.c_str());
  st.Text(1, decision_id);
  while (st.Step() == SQLITE_ROW) out.push_back(ReadOutcome(st));
  return out;
}

std::vector<ShadowPick> Store::ShadowPicksOf(const std::string& decision_id) {
  std::vector<ShadowPick> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  Stmt st(r.db(),
          "SELECT position, offer_id, item_id, propensity, p_click, p_convert, value "
          "FROM shadow_picks WHERE decision_id = ? ORDER BY position");
  st.Text(1, decision_id);
  while (st.Step() == SQLITE_ROW)
    out.push_back(ShadowPick{static_cast<int>(st.ColInt(0)), st.Col(1), st.Col(2), st.ColReal(3),
                             st.ColReal(4), st.ColReal(5), st.ColReal(6)});
  return out;
}

int64_t Store::ForEachShadowDecision(int64_t since_ms, int64_t until_ms,
                                     const std::function<bool(const ShadowDecisionRow&)>& fn) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  // One row per decision; each subquery reads by the decision id's index.
  Stmt st(r.db(),
          "SELECT d.id, d.placement, d.ts_ms, "
          " (SELECT coalesce(nullif(i.offer_id, ''), i.item_id) FROM impressions i "
          "   WHERE i.decision_id = d.id AND i.position = 1), "
          " (SELECT count(*) FROM impressions i WHERE i.decision_id = d.id), "
          " (SELECT coalesce(nullif(p.offer_id, ''), p.item_id) FROM shadow_picks p "
          "   WHERE p.decision_id = d.id AND p.position = 1), "
          " (SELECT count(*) FROM shadow_picks p WHERE p.decision_id = d.id), "
          " (SELECT coalesce(sum(p_click), 0) FROM shadow_picks p WHERE p.decision_id = d.id), "
          " (SELECT coalesce(sum(p_click * p_convert), 0) FROM shadow_picks p "
          "   WHERE p.decision_id = d.id), "
          " (SELECT coalesce(sum(p_click * p_convert * value), 0) FROM shadow_picks p "
          "   WHERE p.decision_id = d.id), "
          " (SELECT count(*) FROM outcomes o WHERE o.decision_id = d.id AND o.kind = 'click' "
          "   AND o.first_of_kind = 1), "
          " (SELECT count(*) FROM outcomes o WHERE o.decision_id = d.id "
          "   AND o.kind = 'conversion' AND o.first_of_kind = 1), "
          " (SELECT coalesce(sum(o.value), 0) FROM outcomes o WHERE o.decision_id = d.id "
          "   AND o.kind = 'conversion'), "
          " (SELECT coalesce(sum(i.p_click), 0) FROM impressions i WHERE i.decision_id = d.id), "
          " (SELECT count(*) FROM outcomes o WHERE o.decision_id = d.id AND o.kind = 'click' "
          "   AND o.first_of_kind = 1 AND o.position = 1) "
          "FROM decisions d WHERE d.mode = 'shadow' AND d.ts_ms >= ? AND d.ts_ms < ? "
          "ORDER BY d.ts_ms, d.id");
  st.Int(1, since_ms).Int(2, until_ms > 0 ? until_ms : INT64_MAX);
  int64_t n = 0;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++n;
    ShadowDecisionRow row;
    row.decision_id = st.Col(0);
    row.placement = st.Col(1);
    row.ts_ms = st.ColInt(2);
    row.served_top = st.Col(3);
    row.served = st.ColInt(4);
    row.tailor_top = st.Col(5);
    row.picks = st.ColInt(6);
    row.tailor_clicks = st.ColReal(7);
    row.tailor_conversions = st.ColReal(8);
    row.tailor_value = st.ColReal(9);
    row.clicks = st.ColInt(10);
    row.conversions = st.ColInt(11);
    row.revenue = st.ColReal(12);
    row.served_p_click = st.ColReal(13);
    row.top_clicks = st.ColInt(14);
    if (!fn(row)) return n;
  }
  return rc == SQLITE_DONE ? n : -1;
}

int64_t Store::ForEachDecision(int64_t since_ms, int64_t until_ms, const std::string& placement,
                               const std::function<bool(const DecisionRecord&)>& fn) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  Stmt st(r.db(),
          "SELECT id, customer_id, channel, placement, ts_ms, request, response, trace, "
          "experiment, arm, mode FROM decisions WHERE ts_ms >= ? AND ts_ms < ? AND "
          "(? = '' OR placement = ?) ORDER BY ts_ms, id");
  st.Int(1, since_ms)
      .Int(2, until_ms > 0 ? until_ms : std::numeric_limits<int64_t>::max())
      .Text(3, placement)
      .Text(4, placement);
  int64_t n = 0;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++n;
    DecisionRecord d{st.Col(0), st.Col(1), st.Col(2), st.Col(3), st.ColInt(4), st.Col(5),
                     st.Col(6), st.Col(7), st.Col(8), st.Col(9), st.Col(10)};
    if (!fn(d)) return n;
  }
  return rc == SQLITE_DONE ? n : -1;
}

Status Store::BackupTo(const std::string& dest) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return Status::Error("store: no read connection for the backup");
  sqlite3* out = nullptr;
  if (sqlite3_open_v2(dest.c_str(), &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = out ? sqlite3_errmsg(out) : "out of memory";
    sqlite3_close(out);
    return Status::Error("store: cannot create " + dest + ": " + msg);
  }
  sqlite3_backup* b = sqlite3_backup_init(out, "main", r.db(), "main");
  int rc = b ? sqlite3_backup_step(b, -1) : SQLITE_ERROR;
  if (b) sqlite3_backup_finish(b);
  std::string msg = sqlite3_errmsg(out);
  sqlite3_close(out);
  if (rc != SQLITE_DONE) return Status::Error("store: backup to " + dest + " failed: " + msg);
  return Status::Ok();
}

Status Store::RewindTo(int64_t ts_ms) {
  std::lock_guard lock(impl_->sync_mu);
  sqlite3* db = impl_->sync_db;
  if (Status s = NeedsWritable(db); !s.ok()) return s;
  if (Status s = Exec(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  static const char* const kDeletes[] = {
      "DELETE FROM events WHERE ts_ms >= ?", "DELETE FROM decisions WHERE ts_ms >= ?",
      "DELETE FROM impressions WHERE ts_ms >= ?", "DELETE FROM outcomes WHERE ts_ms >= ?",
      "DELETE FROM journey_state WHERE entered_ms >= ?"};
  Status s = Status::Ok();
  for (const char* sql : kDeletes) {
    Stmt st(db, sql);
    st.Int(1, ts_ms);
    s = st.Run();
    if (!s.ok()) break;
  }
  if (!s.ok()) {
    Exec(db, "ROLLBACK");
    return s;
  }
  return Exec(db, "COMMIT");
}

// --- Report reads -----------------------------------------------------------

namespace {

// The window's WHERE clause over decisions d; binds ?1..?4 (see BindWindow).
#define TAILOR_KPI_WINDOW                                         \
  " d.ts_ms >= ?1 AND d.ts_ms < ?2 AND (?3 = '' OR d.mode = ?3) " \
  " AND (?4 = '' OR d.experiment = ?4) "

void BindWindow(Stmt& st, const KpiWindow& w) {
  st.Int(1, w.since_ms).Int(2, w.until_ms).Text(3, w.mode).Text(4, w.experiment);
}

}  // namespace

int64_t Store::CountDecisions(const KpiWindow& w) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  Stmt st(r.db(), "SELECT count(*) FROM decisions d WHERE" TAILOR_KPI_WINDOW);
  BindWindow(st, w);
  return st.Step() == SQLITE_ROW ? st.ColInt(0) : -1;
}

int64_t Store::ForEachCustomerDayKpi(const KpiWindow& w,
                                     const std::function<bool(const CustomerDayKpi&)>& fn) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  // An impression counts as clicked (converted) once however many clicks
  // (conversions) it drew; revenue sums every conversion's value.
  Stmt st(r.db(),
          "SELECT coalesce(d.customer_id, ''), d.experiment, d.arm, coalesce(d.placement, ''), "
          "d.ts_ms / 86400000 AS day, count(*), "
          "coalesce(sum((SELECT count(*) FROM impressions i WHERE i.decision_id = d.id AND "
          "i.shown = 1)), 0), "
          "coalesce(sum((SELECT count(DISTINCT o.position) FROM outcomes o WHERE o.decision_id = "
          "d.id AND o.kind = 'click')), 0), "
          "coalesce(sum((SELECT count(DISTINCT o.position) FROM outcomes o WHERE o.decision_id = "
          "d.id AND o.kind = 'conversion')), 0), "
          "coalesce(sum((SELECT sum(o.value) FROM outcomes o WHERE o.decision_id = d.id AND "
          "o.kind = 'conversion')), 0) "
          "FROM decisions d WHERE" TAILOR_KPI_WINDOW
          "GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5");
  if (!st.ok()) return -1;
  BindWindow(st, w);
  int64_t n = 0;
  int rc;
  CustomerDayKpi row;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++n;
    row.customer_id.assign(st.ColView(0));
    row.experiment.assign(st.ColView(1));
    row.arm.assign(st.ColView(2));
    row.placement.assign(st.ColView(3));
    row.day = st.ColInt(4);
    row.decisions = st.ColInt(5);
    row.impressions = st.ColInt(6);
    row.clicks = st.ColInt(7);
    row.conversions = st.ColInt(8);
    row.revenue = st.ColReal(9);
    if (!fn(row)) break;
  }
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

std::vector<OfferKpi> Store::OfferKpis(const KpiWindow& w) {
  std::vector<OfferKpi> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  Stmt st(r.db(),
          "SELECT i.offer_id, count(*), "
          "sum(EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = i.decision_id AND "
          "o.position = i.position AND o.kind = 'click')), "
          "sum(EXISTS (SELECT 1 FROM outcomes o WHERE o.decision_id = i.decision_id AND "
          "o.position = i.position AND o.kind = 'conversion')), "
          "coalesce(sum((SELECT sum(o.value) FROM outcomes o WHERE o.decision_id = i.decision_id "
          "AND o.position = i.position AND o.kind = 'conversion')), 0) "
          "FROM decisions d JOIN impressions i ON i.decision_id = d.id "
          "WHERE i.shown = 1 AND i.offer_id <> '' AND" TAILOR_KPI_WINDOW
          "GROUP BY i.offer_id ORDER BY i.offer_id");
  BindWindow(st, w);
  while (st.Step() == SQLITE_ROW)
    out.push_back(OfferKpi{st.Col(0), st.ColInt(1), st.ColInt(2), st.ColInt(3), st.ColReal(4)});
  return out;
}

int64_t Store::ForEachDecisionTrace(const KpiWindow& w,
                                    const std::function<bool(const DecisionTraceRow&)>& fn) {
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  Stmt st(r.db(),
          "SELECT d.id, d.experiment, d.arm, coalesce(d.placement, ''), d.ts_ms, d.trace "
          "FROM decisions d WHERE" TAILOR_KPI_WINDOW "ORDER BY d.ts_ms");
  if (!st.ok()) return -1;
  BindWindow(st, w);
  int64_t n = 0;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++n;
    DecisionTraceRow row{st.ColView(0), st.ColView(1), st.ColView(2),
                         st.ColView(3), st.ColInt(4),  st.ColView(5)};
    if (!fn(row)) break;
  }
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? n : -1;
}

#undef TAILOR_KPI_WINDOW

std::vector<Store::CustomerExposure> Store::ExposureByCustomer(int64_t since_ms, int64_t until_ms) {
  std::vector<CustomerExposure> out;
  Impl::Reader r(impl_.get());
  if (!r.db()) return out;
  // One row per customer decided in the window; impressions and conversions
  // belong to the window's decisions.
  Stmt st(r.db(),
          "WITH d AS (SELECT id, customer_id FROM decisions WHERE ts_ms >= ?1 AND ts_ms < ?2 "
          "AND customer_id IS NOT NULL AND customer_id <> ''), "
          "dn AS (SELECT customer_id, count(*) AS n FROM d GROUP BY customer_id), "
          "i AS (SELECT i.customer_id, count(*) AS n, sum(i.discount > 0) AS nd, "
          "sum(CASE WHEN i.discount > 0 THEN i.discount ELSE 0 END) AS sd "
          "FROM impressions i JOIN d ON d.id = i.decision_id "
          "WHERE i.shown = 1 AND i.offer_id <> '' GROUP BY i.customer_id), "
          "o AS (SELECT o.customer_id, count(DISTINCT o.decision_id || '/' || o.position) AS n "
          "FROM outcomes o JOIN d ON d.id = o.decision_id "
          "WHERE o.kind = 'conversion' AND o.offer_id <> '' GROUP BY o.customer_id) "
          "SELECT dn.customer_id, coalesce(c.attributes, '{}'), dn.n, coalesce(i.n, 0), "
          "coalesce(i.nd, 0), coalesce(i.sd, 0), coalesce(o.n, 0) FROM dn "
          "LEFT JOIN customers c ON c.id = dn.customer_id "
          "LEFT JOIN i ON i.customer_id = dn.customer_id "
          "LEFT JOIN o ON o.customer_id = dn.customer_id ORDER BY dn.customer_id");
  if (!st.ok()) return out;
  st.Int(1, since_ms).Int(2, until_ms);
  while (st.Step() == SQLITE_ROW) {
    CustomerExposure e;
    e.customer_id = st.Col(0);
    e.attributes_json = st.Col(1);
    e.decisions = st.ColInt(2);
    e.impressions = st.ColInt(3);
    e.discounted = st.ColInt(4);
    e.discount_sum = st.ColReal(5);
    e.conversions = st.ColInt(6);
    out.push_back(std::move(e));
  }
  return out;
}

int64_t Store::Count(const std::string& table) {
  static const char* const kTables[] = {"customers",   "items",    "offers",        "events",
                                        "decisions",   "models",   "journey_state", "demo_truth",
                                        "impressions", "outcomes", "shadow_picks"};
  bool allowed = false;
  for (const char* t : kTables) allowed = allowed || table == t;
  if (!allowed) return -1;
  Impl::Reader r(impl_.get());
  if (!r.db()) return -1;
  std::string sql = "SELECT count(*) FROM " + table;
  Stmt st(r.db(), sql.c_str());
  return st.Step() == SQLITE_ROW ? st.ColInt(0) : -1;
}

}  // namespace tailor
