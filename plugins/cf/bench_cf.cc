// bench_cf: a benchmark program (not a test) for the cf plugin, loaded
// through the host like tailord loads it. Prints, for EASE and ALS:
// training time on a train CSV, scoring time for 100 / 1,000 / 10,000
// candidates for one customer (median and p99, with and without reasons),
// fold-in time (a customer known only through the request's 50 recent
// events), and the model's memory (resident growth and file size).
//
//   build/bin/bench_cf /tmp/retail/train.csv [--reps N] [--only ease|als]
//
// The CSV has a header with customer_id,item_id,timestamp (other columns
// ignored), as written by tools/retail_split.py; every row is a purchase.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/time.h"
#include "ingest/csv.h"
#include "plugin_host/host.h"
#include "store/store.h"

namespace {

using tailor::Event;
using tailor::LoadedPlugin;
using tailor::PluginSpec;
using tailor::Status;
using tailor::Store;

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "bench_cf: %s\n", msg.c_str());
  std::exit(1);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

long RssKb() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, rss = 0;
  in >> pages >> rss;
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

std::vector<Event> ReadCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot open " + path);
  tailor::ingest::CsvReader csv(in);
  std::vector<std::string> f;
  if (csv.Next(&f) != tailor::ingest::CsvReader::Result::kRecord) Die(path + ": empty");
  int ci = -1, ii = -1, ti = -1;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "customer_id") ci = static_cast<int>(i);
    if (f[i] == "item_id") ii = static_cast<int>(i);
    if (f[i] == "timestamp") ti = static_cast<int>(i);
  }
  if (ci < 0 || ii < 0 || ti < 0) Die(path + ": header needs customer_id,item_id,timestamp");
  std::vector<Event> out;
  while (csv.Next(&f) == tailor::ingest::CsvReader::Result::kRecord) {
    Event e;
    e.customer_id = f[static_cast<size_t>(ci)];
    e.item_id = f[static_cast<size_t>(ii)];
    e.type = "purchase";
    auto ts = tailor::parse_iso8601_ms(f[static_cast<size_t>(ti)]);
    if (!ts) Die(path + ":" + std::to_string(csv.line()) + ": bad timestamp");
    e.ts_ms = *ts;
    out.push_back(std::move(e));
  }
  return out;
}

struct Pct {
  double p50_us, p99_us;
};

Pct Percentiles(std::vector<int64_t> ns) {
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return static_cast<double>(ns[std::min(ns.size() - 1, static_cast<size_t>(q * ns.size()))]) /
           1e3;
  };
  return {at(0.5), at(0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Die("usage: bench_cf TRAIN.csv [--reps N] [--only ease|als]");
  const std::string train = argv[1];
  int reps = 2000;
  std::string only;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  }
  std::fprintf(stderr, "reading %s...\n", train.c_str());
  const std::vector<Event> events = ReadCsv(train);

  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path() / ("bench-cf-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  Store::Options so;
  so.path = (tmp / "bench.db").string();
  so.synchronous_full = false;
  so.start_writer = false;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store) Die(err);
  {
    auto bulk = store->BeginBulk(&err);
    if (!bulk) Die(err);
    for (const Event& e : events)
      if (!bulk->Event(e).ok()) Die("import failed");
    if (!bulk->Commit().ok()) Die("commit failed");
  }

  // The customer: the one with the median number of events; their newest 50
  // events are the request's recent events, as tailord sends them.
  std::unordered_map<std::string, std::vector<const Event*>> by_customer;
  for (const Event& e : events) by_customer[e.customer_id].push_back(&e);
  std::vector<std::pair<size_t, std::string>> sizes;
  for (const auto& [c, v] : by_customer) sizes.emplace_back(v.size(), c);
  std::sort(sizes.begin(), sizes.end());
  const std::string customer = sizes[sizes.size() / 2].second;
  auto& hist = by_customer[customer];
  std::stable_sort(hist.begin(), hist.end(),
                   [](const Event* a, const Event* b) { return a->ts_ms < b->ts_ms; });
  int64_t now = 0;
  for (const Event& e : events) now = std::max(now, e.ts_ms);
  now += 1000;
  std::vector<std::string> items;
  {
    std::map<std::string, int> seen;
    for (const Event& e : events) seen[e.item_id] = 1;
    for (const auto& [id, one] : seen) items.push_back(id);
  }
  std::mt19937 rng(7);
  std::shuffle(items.begin(), items.end(), rng);
  std::printf("data: %zu events, %zu customers, %zu items; customer %s has %zu events\n",
              events.size(), by_customer.size(), items.size(), customer.c_str(), hist.size());

  for (const char* algo : {"ease", "als"}) {
    if (!only.empty() && only != algo) continue;
    PluginSpec spec;
    spec.name = "cf";
    spec.path = std::string(TAILOR_PLUGIN_DIR) + "/tailor_cf.so";
    spec.config_json = std::string(R"({"algorithm":")") + algo + "\"}";
    auto p = LoadedPlugin::Load(spec, store.get(), tmp.string(), &err);
    if (!p) Die(err);
    const long rss0 = RssKb();
    const int64_t t0 = NowNs();
    if (Status s = p->Train(); !s.ok()) Die(s.message());
    const double train_s = static_cast<double>(NowNs() - t0) / 1e9;
    const long rss1 = RssKb();
    const std::string model = (tmp / (std::string(algo) + ".model")).string();
    if (!p->Save(model).ok()) Die("save failed");
    std::printf("\n== %s\ntrain: %.2f s; model memory: +%.1f MB resident, file %.1f MB\n", algo,
                train_s, static_cast<double>(rss1 - rss0) / 1024.0,
                static_cast<double>(fs::file_size(model)) / 1e6);

    // Known customer (stored history) with their 50 newest events as recent.
    const size_t first = hist.size() > 50 ? hist.size() - 50 : 0;
    std::vector<tailor_event_view> recent;
    for (size_t i = first; i < hist.size(); ++i) {
      const Event& e = *hist[i];
      recent.push_back({e.customer_id.c_str(), e.type.c_str(), e.item_id.c_str(), nullptr, e.ts_ms,
                        0, 0, nullptr});
    }
    tailor_request_view req{};
    req.customer_id = customer.c_str();
    req.known_customer = 1;
    req.channel = "web";
    req.placement = "recs";
    req.context_json = "{}";
    req.now_ms = now;
    req.recent = recent.data();
    req.n_recent = recent.size();

    std::printf("%-34s %10s %10s\n", "score (one customer)", "p50 us", "p99 us");
    for (size_t nc : {size_t{100}, size_t{1000}, size_t{10000}}) {
      // Distinct items while the catalog lasts, then repeats.
      std::vector<tailor_candidate> cands;
      for (size_t i = 0; i < nc; ++i)
        cands.push_back({nullptr, items[i % items.size()].c_str(), nullptr});
      std::vector<float> scores(nc);
      std::vector<char> reasons(nc * 128);
      for (bool why : {false, true}) {
        const int n = nc >= 10000 ? std::max(50, reps / 10) : reps;
        std::vector<int64_t> ns;
        for (int r = 0; r < n + 10; ++r) {
          const int64_t a = NowNs();
          Status s = p->Score(req, cands.data(), nc, scores.data(), why ? reasons.data() : nullptr,
                              why ? 128 : 0);
          const int64_t b = NowNs();
          if (!s.ok()) Die(s.message());
          if (r >= 10) ns.push_back(b - a);
        }
        const Pct pc = Percentiles(ns);
        char label[64];
        std::snprintf(label, sizeof label, "%zu candidates%s", nc, why ? " + reasons" : "");
        std::printf("%-34s %10.1f %10.1f\n", label, pc.p50_us, pc.p99_us);
      }
    }
    // Fold-in: an unknown customer whose 50 recent events are all the model
    // knows; one candidate, so the time is the fold-in itself.
    tailor_request_view fresh = req;
    fresh.customer_id = "bench-new-customer";
    fresh.known_customer = 0;
    const tailor_candidate one{nullptr, items[0].c_str(), nullptr};
    float score = 0;
    std::vector<int64_t> ns;
    for (int r = 0; r < reps + 10; ++r) {
      const int64_t a = NowNs();
      if (!p->Score(fresh, &one, 1, &score, nullptr, 0).ok()) Die("fold-in score failed");
      if (r >= 10) ns.push_back(NowNs() - a);
    }
    const Pct pc = Percentiles(ns);
    std::printf("%-34s %10.1f %10.1f\n", "fold-in (50 events, 1 candidate)", pc.p50_us, pc.p99_us);

    // Diversity: the similarity matrix of a placement's pool (ABI 1.2).
    for (size_t pool : {size_t{60}, size_t{200}}) {
      std::vector<const char*> ids;
      for (size_t i = 0; i < pool; ++i) ids.push_back(items[i % items.size()].c_str());
      std::vector<float> sim(pool * pool);
      std::vector<int64_t> sns;
      for (int r = 0; r < reps + 10; ++r) {
        const int64_t a = NowNs();
        if (Status s = p->Similarity(ids.data(), pool, sim.data()); !s.ok()) Die(s.message());
        if (r >= 10) sns.push_back(NowNs() - a);
      }
      const Pct spc = Percentiles(sns);
      char label[64];
      std::snprintf(label, sizeof label, "similarity (%zu items)", pool);
      std::printf("%-34s %10.1f %10.1f\n", label, spc.p50_us, spc.p99_us);
    }
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return 0;
}
