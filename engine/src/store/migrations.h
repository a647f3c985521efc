// Versioned schema migrations. Each migration runs once, in order, inside its
// own transaction; the applied versions are recorded in schema_migrations.
#pragma once

#include <string>
#include <vector>

struct sqlite3;

namespace tailor {

struct Migration {
  int version;       // strictly increasing, starting at 1
  const char* name;  // short description, recorded with the version
  const char* sql;   // one or more statements
};

// The schema Tailor ships, oldest first.
const std::vector<Migration>& BuiltinMigrations();

// Brings db up to the last migration in the list. Refuses a database whose
// version is newer than the list knows. On failure the failing migration is
// rolled back, earlier ones stay applied, and *err says which one failed.
bool Migrate(sqlite3* db, const std::vector<Migration>& migrations, std::string* err);

// Highest applied version, 0 for a fresh database, -1 on error.
int SchemaVersion(sqlite3* db);

}  // namespace tailor
