// `tailor import KIND FILE`: customers, items, offers or events from CSV or JSONL.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "ingest/importer.h"
#include "progress.h"
#include "runtime.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

struct ImportArgs {
  std::string kind, file, store, format = "auto";
  size_t max_errors = 20;
};

void RunImport(const ImportArgs& a) {
  ingest::ImportOptions o;
  auto kind = ingest::ParseImportKind(a.kind);
  if (!kind) Fail("unknown kind '" + a.kind + "' (customers, items, offers, events)");
  auto format = ingest::ParseImportFormat(a.format);
  if (!format) Fail("unknown --format '" + a.format + "' (csv, jsonl, auto)");
  o.kind = *kind;
  o.format = *format;
  o.path = a.file;
  o.max_errors = a.max_errors;
  // Checked before the store is opened so that a typo does not create an empty store.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(a.file, ec)) Fail("cannot open " + a.file + ": not a file");
  std::string err;
  Store::Options so;
  so.path = a.store;
  so.start_writer = false;
  auto store = Store::Open(so, &err);
  if (!store) Fail(err);
  Progress bar("import");
  ingest::ImportSummary sum;
  Status st = ingest::Import(*store, o, &sum, [&](const ingest::ImportProgress& p) {
    bar.Update(p.bytes, p.total_bytes, "bytes, " + std::to_string(p.rows) + " rows");
  });
  bar.Done("");
  for (const auto& e : sum.errors) std::cerr << e << "\n";
  if (sum.skipped > static_cast<int64_t>(sum.errors.size()))
    std::cerr << "... and " << sum.skipped - static_cast<int64_t>(sum.errors.size())
              << " more bad rows\n";
  if (!st.ok()) Fail(st.message());
  std::printf("imported %lld of %lld %s rows from %s in %.2f s; skipped %lld",
              static_cast<long long>(sum.imported), static_cast<long long>(sum.read),
              ingest::ImportKindName(o.kind), a.file.c_str(), sum.seconds,
              static_cast<long long>(sum.skipped));
  if (sum.customers_created)
    std::printf("; created %lld customers", static_cast<long long>(sum.customers_created));
  std::printf("\n");
  if (sum.skipped > 0) throw CLI::RuntimeError(2);
}

}  // namespace

void RegisterImport(CLI::App& app) {
  auto a = std::make_shared<ImportArgs>();
  CLI::App* i = app.add_subcommand(
      "import", "Import customers, items, offers or events from CSV or JSONL (docs/import.md)");
  i->add_option("kind", a->kind, "customers, items, offers or events")
      ->required()
      ->check(CLI::IsMember(
          {"customers", "items", "offers", "events", "customer", "item", "offer", "event"},
          CLI::ignore_case));
  // No ExistingFile check: an unreadable file is a fatal import error (exit 1).
  i->add_option("file", a->file, "CSV (header row) or JSONL file")->required();
  i->add_option("--store", a->store, "SQLite store (created if missing)")->required();
  i->add_option("--format", a->format, "csv, jsonl or auto (from the extension)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "csv", "jsonl", "ndjson"}, CLI::ignore_case));
  i->add_option("--max-errors", a->max_errors, "bad rows listed (all are counted)")
      ->capture_default_str();
  i->callback([a] { RunImport(*a); });
}

}  // namespace tailor::cli
