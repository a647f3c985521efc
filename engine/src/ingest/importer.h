// `tailor import`: loads customers, items, offers or events from CSV (RFC 4180,
// header row required) or JSONL (one JSON object per line) into a Store in one
// bulk transaction. The columns are documented in docs/import.md.
//
// A bad row (wrong field count, missing required field, bad number, timestamp
// or JSON, unknown event type) is skipped and reported as "FILE:LINE: message";
// the rest of the file is still imported. Only a fatal error (unreadable file,
// missing required column, store failure) rolls the whole import back.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tailor {
class Store;
}

namespace tailor::ingest {

enum class ImportKind { kCustomers, kItems, kOffers, kEvents };
enum class ImportFormat { kAuto, kCsv, kJsonl };

// "customers", "items", "offers", "events" (singular accepted too).
std::optional<ImportKind> ParseImportKind(std::string_view name);
// "csv", "jsonl" ("ndjson" and "json" are taken as JSONL), "auto".
std::optional<ImportFormat> ParseImportFormat(std::string_view name);
const char* ImportKindName(ImportKind kind);

// The event types `tailor import events` accepts.
const std::vector<std::string>& KnownEventTypes();

struct ImportOptions {
  ImportKind kind = ImportKind::kEvents;
  std::string path;
  ImportFormat format = ImportFormat::kAuto;  // kAuto: from the extension (.jsonl/.ndjson: JSONL)
  size_t max_errors = 20;                     // error messages kept in the summary; all are counted
};

struct ImportProgress {
  int64_t rows = 0;  // data rows read so far
  int64_t bytes = 0;
  int64_t total_bytes = 0;  // size of the file, 0 when unknown
};

struct ImportSummary {
  ImportFormat format = ImportFormat::kCsv;  // the format actually used
  int64_t read = 0;                          // data rows seen (header not counted)
  int64_t imported = 0;
  int64_t skipped = 0;
  int64_t customers_created = 0;    // bare customer rows added for events of unknown customers
  std::vector<std::string> errors;  // "FILE:LINE: message", the first max_errors of them
  double seconds = 0;
};

using ImportProgressFn = std::function<void(const ImportProgress&)>;

// Imports options.path into store. Returns an error (and writes nothing) on a
// fatal problem; skipped rows alone are not an error: see summary->skipped.
// progress, when set, is called every few thousand rows and once at the end.
Status Import(Store& store, const ImportOptions& options, ImportSummary* summary,
              const ImportProgressFn& progress = {});

}  // namespace tailor::ingest
