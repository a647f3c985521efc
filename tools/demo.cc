// `tailor demo`: generate the demo world into a store.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "common/time.h"
#include "ingest/demo_chat.h"
#include "ingest/demo_world.h"
#include "progress.h"
#include "runtime.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

struct DemoArgs {
  std::string store;
  std::string end;   // ISO 8601 or epoch ms; empty: now
  std::string chat;  // where to write the labelled chat lines; empty: nowhere
  ingest::DemoOptions options;
  bool force = false;
};

// Rows already in an existing store; an empty store (e.g. freshly migrated)
// may be filled without --force.
int64_t ExistingRows(const std::string& path) {
  Store::Options so;
  so.path = path;
  so.start_writer = false;
  so.read_only = true;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store)
    Fail("'" + path + "' exists and is not a usable store (" + err +
         "); pass --force to replace it");
  int64_t rows = 0;
  for (const char* table : {"customers", "items", "offers", "events"}) rows += store->Count(table);
  return rows;
}

void RunDemo(DemoArgs a) {
  namespace fs = std::filesystem;
  int64_t t0 = mono_ns();
  if (!a.end.empty()) {
    auto end = parse_iso8601_ms(a.end);
    if (!end && a.end.size() < 19 && a.end.find_first_not_of("0123456789") == std::string::npos)
      end = std::stoll(a.end);
    if (!end) Fail("--end: '" + a.end + "' is not an ISO 8601 time or epoch milliseconds");
    a.options.end_ms = *end;
  }
  if (fs::exists(a.store)) {
    if (a.force) {
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(a.store + suffix);
    } else if (int64_t rows = ExistingRows(a.store); rows > 0) {
      Fail("'" + a.store + "' already holds " + std::to_string(rows) +
           " rows; pass --force to replace it");
    }
  }
  std::string err;
  Store::Options so;
  so.path = a.store;
  so.start_writer = false;
  auto store = Store::Open(so, &err);
  if (!store) Fail(err);
  Progress bar("demo");
  ingest::DemoSummary sum;
  Status st = ingest::GenerateDemo(*store, a.options, &sum,
                                   [&](std::string_view stage, int64_t done, int64_t total) {
                                     bar.Update(done, total, std::string(stage));
                                   });
  bar.Done("");
  if (!st.ok()) Fail(st.message());
  std::printf("demo world in %s (seed %llu)\n", a.store.c_str(),
              static_cast<unsigned long long>(a.options.seed));
  std::printf(
      "  customers %lld (c1..c%lld), items %lld (i1..i%lld), events %lld, hidden traits %lld\n",
      static_cast<long long>(sum.customers), static_cast<long long>(sum.customers),
      static_cast<long long>(sum.items), static_cast<long long>(sum.items),
      static_cast<long long>(sum.events), static_cast<long long>(sum.truths));
  std::printf("  events by type:");
  for (const auto& [type, n] : sum.events_by_type)
    std::printf(" %s %lld", type.c_str(), static_cast<long long>(n));
  std::printf("\n  customers with trait >= 0.5:");
  for (const auto& [trait, n] : sum.trait_counts)
    std::printf(" %s %lld", trait.c_str(), static_cast<long long>(n));
  std::printf("\n  window %s .. %s\n", format_iso8601_ms(sum.start_ms).c_str(),
              format_iso8601_ms(sum.end_ms).c_str());
  std::printf("  store rows:");
  for (const char* table : {"customers", "items", "offers", "events"})
    std::printf(" %s %lld", table, static_cast<long long>(store->Count(table)));
  if (!a.chat.empty()) {
    const auto lines = ingest::DemoChatLines(a.options.seed);
    if (!ingest::WriteChatCsv(a.chat, lines, &err)) Fail(err);
    std::printf("\n  chat lines %zu (%zu intents and oos) in %s", lines.size(),
                ingest::DemoChatIntents().size(), a.chat.c_str());
  }
  std::printf("\n  generated in %.2f s, written in %.2f s, %.2f s in all\n", sum.generate_seconds,
              sum.write_seconds, static_cast<double>(mono_ns() - t0) / 1e9);
}

}  // namespace

void RegisterDemo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  CLI::App* d = app.add_subcommand(
      "demo", "Generate a demo world: customers with hidden traits, a catalog, months of events");
  d->add_option("--store", a->store, "SQLite store to create")->required();
  d->add_option("--customers", a->options.customers, "customers c1..cN")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000'000));
  d->add_option("--items", a->options.items, "items i1..iM")
      ->capture_default_str()
      ->check(CLI::Range(10, 10'000'000));
  d->add_option("--days", a->options.days, "days of history")
      ->capture_default_str()
      ->check(CLI::Range(1, 3650));
  d->add_option("--seed", a->options.seed, "random seed")->capture_default_str();
  d->add_option("--end", a->end, "end of the history (ISO 8601 or epoch ms); default now");
  d->add_option("--chat", a->chat,
                "also write the world's labelled chat lines (CSV text,label) for "
                "`tailor train intent --data`");
  d->add_flag("--force", a->force, "replace an existing store");
  d->callback([a] { RunDemo(*a); });
}

}  // namespace tailor::cli
