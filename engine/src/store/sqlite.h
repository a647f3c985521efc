// Small SQLite helpers shared by the store and the journey runtime (the two
// parts that keep tables in the store file): a prepared-statement wrapper,
// Exec, and opening a connection.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tailor::sqlite {

// RAII prepared statement with positional binders. Text is bound transient
// so callers may pass temporaries. A statement that failed to prepare is not
// ok(); Step and Run on it fail instead of crashing.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) st_ = nullptr;
  }
  // Uses a statement prepared and owned elsewhere (a cache); it is reset for
  // its next use at the end, not finalized. A null one fails like a bad
  // prepare.
  struct Borrowed {};
  Stmt(sqlite3* db, sqlite3_stmt* st, Borrowed) : db_(db), st_(st), borrowed_(true) {}
  ~Stmt() {
    if (borrowed_)
      Reset();
    else
      sqlite3_finalize(st_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return st_ != nullptr; }
  const char* error() const { return sqlite3_errmsg(db_); }
  void Reset() {
    if (!st_) return;
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  Stmt& Text(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Empty strings become NULL (absent item, offer, ...).
  Stmt& TextOrNull(int i, const std::string& s) {
    if (s.empty()) {
      sqlite3_bind_null(st_, i);
      return *this;
    }
    return Text(i, s);
  }
  Stmt& Int(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  // 0 becomes NULL (a time not set).
  Stmt& IntOrNull(int i, int64_t v) {
    if (v == 0) {
      sqlite3_bind_null(st_, i);
      return *this;
    }
    return Int(i, v);
  }
  Stmt& Real(int i, double v) {
    sqlite3_bind_double(st_, i, v);
    return *this;
  }
  // Bytes bound transient; an empty blob becomes NULL.
  Stmt& Blob(int i, const void* data, size_t size) {
    if (size == 0) {
      sqlite3_bind_null(st_, i);
      return *this;
    }
    sqlite3_bind_blob64(st_, i, data, size, SQLITE_TRANSIENT);
    return *this;
  }
  int Step() { return st_ ? sqlite3_step(st_) : SQLITE_ERROR; }
  // Runs a statement that returns no rows; resets it for reuse.
  Status Run() {
    if (!st_) return Status::Error(error());
    int rc = sqlite3_step(st_);
    Status s = rc == SQLITE_DONE ? Status::Ok() : Status::Error(error());
    Reset();
    return s;
  }
  std::string Col(int i) const {
    const unsigned char* t = sqlite3_column_text(st_, i);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<size_t>(sqlite3_column_bytes(st_, i)))
             : std::string();
  }
  // Valid until the next Step or Reset; NULL reads as empty.
  std::string_view ColView(int i) const {
    const unsigned char* t = sqlite3_column_text(st_, i);
    return t ? std::string_view(reinterpret_cast<const char*>(t),
                                static_cast<size_t>(sqlite3_column_bytes(st_, i)))
             : std::string_view();
  }
  int64_t ColInt(int i) const { return sqlite3_column_int64(st_, i); }
  // Valid until the next Step or Reset; NULL reads as empty.
  std::string_view ColBlob(int i) const {
    const void* b = sqlite3_column_blob(st_, i);
    return b ? std::string_view(static_cast<const char*>(b),
                                static_cast<size_t>(sqlite3_column_bytes(st_, i)))
             : std::string_view();
  }
  double ColReal(int i) const { return sqlite3_column_double(st_, i); }
  bool ColNull(int i) const { return sqlite3_column_type(st_, i) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  bool borrowed_ = false;
};

inline Status Exec(sqlite3* db, const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    Status s = Status::Error(msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return s;
  }
  return Status::Ok();
}

// Opens path (creating it only when create is set) for use by one thread at
// a time, with a busy timeout. Null and *err (when err is given) on failure.
inline sqlite3* Open(const std::string& path, bool read_only, bool create, int busy_ms,
                     std::string* err) {
  sqlite3* db = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (create && !read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;  // each connection is used by one thread at a time
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    if (err) *err = "cannot open store '" + path + "': " + (db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, busy_ms);
  return db;
}

}  // namespace tailor::sqlite
