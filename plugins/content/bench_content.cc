// bench_content: scoring time of the content plugin for 100 / 1,000 / 10,000
// candidates for one customer (median and p99, with and without reasons),
// Observe time, training time and the model's memory, on a synthetic
// described catalog in a temporary store. A benchmark program, not a test.
//
//   build/bin/bench_content [--items N] [--customers N] [--events N] [--seed S]
//                           [--plugin PATH]
//
// The plugin is loaded through the host (LoadedPlugin) like tailord loads it,
// so the figures include the host's validating wrapper.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "common/log.h"
#include "plugin_host/host.h"
#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kDayMs = 86400000;
constexpr int64_t kNowMs = 1767225600000;  // 2026-01-01

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "bench_content: %s\n", msg.c_str());
  std::exit(1);
}

size_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t total = 0, resident = 0;
  statm >> total >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Percentiles {
  double median_us, p99_us;
};

Percentiles Summarise(std::vector<double> ns) {
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    return ns[std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())))];
  };
  return {at(0.5) / 1e3, at(0.99) / 1e3};
}

}  // namespace

int main(int argc, char** argv) {
  size_t n_items = 20000, n_customers = 5000, events_per_customer = 40;
  unsigned seed = 7;
  std::string plugin_path = std::string(TAILOR_PLUGIN_DIR) + "/tailor_content.so";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> size_t {
      if (i + 1 >= argc) Die(a + " needs a value");
      return static_cast<size_t>(std::strtoull(argv[++i], nullptr, 10));
    };
    if (a == "--items") {
      n_items = next();
    } else if (a == "--customers") {
      n_customers = next();
    } else if (a == "--events") {
      events_per_customer = next();
    } else if (a == "--seed") {
      seed = static_cast<unsigned>(next());
    } else if (a == "--plugin") {
      if (i + 1 >= argc) Die(a + " needs a value");
      plugin_path = argv[++i];
    } else {
      Die("unknown argument " + a +
          " (known: --items N, --customers N, --events N per customer, --seed S, --plugin PATH)");
    }
  }
  if (n_items < 10000) Die("--items must be at least 10000 (the largest candidate set)");
  tailor::log::SetLevel(tailor::log::Level::kInfo);  // the plugin logs its model size

  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("bench-content-" + std::to_string(getpid()));
  fs::create_directories(dir);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{dir};

  // A catalog like a shop's: 100 categories with their own vocabulary,
  // 500 brands, log-normal prices, titles of 4-7 words from a Zipf-ish
  // 5,000-word vocabulary, a colour attribute.
  std::mt19937_64 rng(seed);
  const size_t n_categories = 100, n_brands = 500, n_words = 5000;
  auto zipf = [&](size_t n) {
    std::uniform_real_distribution<double> u(0, 1);
    return static_cast<size_t>(std::pow(static_cast<double>(n), u(rng))) - 1;
  };
  auto word = [](size_t w) {
    std::string s;
    for (size_t x = w + 26; x > 0; x /= 26) s.push_back(static_cast<char>('a' + x % 26));
    return s + "o";
  };
  const char* colours[] = {"red", "blue", "black", "white", "green"};
  std::vector<tailor::Item> items(n_items);
  std::vector<size_t> item_category(n_items);
  std::lognormal_distribution<double> price(3.5, 1.0);
  for (size_t i = 0; i < n_items; ++i) {
    tailor::Item& it = items[i];
    it.id = "sku" + std::to_string(i);
    item_category[i] = zipf(n_categories);
    it.category = "cat" + std::to_string(item_category[i]);
    it.brand = "brand" + std::to_string(zipf(n_brands));
    it.price = std::round(price(rng) * 100) / 100;
    const size_t words = 4 + rng() % 4;
    for (size_t w = 0; w < words; ++w) {
      // Half the words from the category's own 50, half from everywhere.
      const size_t id = w % 2 == 0 ? item_category[i] * 50 + zipf(50) : zipf(n_words);
      it.title += (w ? " " : "") + word(id % n_words);
    }
    it.description = "A fine " + word(zipf(n_words)) + " " + word(zipf(n_words)) + " for you";
    it.attributes_json = std::string(R"({"colour":")") + colours[rng() % 5] + "\"}";
  }
  // Customers favour three categories.
  std::vector<std::vector<size_t>> by_category(n_categories);
  for (size_t i = 0; i < n_items; ++i) by_category[item_category[i]].push_back(i);
  const char* types[] = {"view", "view", "view", "click", "click", "add_to_cart", "purchase"};
  std::vector<tailor::Event> events;
  events.reserve(n_customers * events_per_customer);
  for (size_t c = 0; c < n_customers; ++c) {
    size_t fav[3];
    for (size_t& f : fav) {
      do f = zipf(n_categories);
      while (by_category[f].empty());
    }
    for (size_t e = 0; e < events_per_customer; ++e) {
      const auto& pool = by_category[fav[rng() % 3]];
      const size_t item = rng() % 4 == 0 ? rng() % n_items : pool[rng() % pool.size()];
      tailor::Event ev;
      ev.customer_id = "c" + std::to_string(c);
      ev.type = types[rng() % 7];
      ev.item_id = items[item].id;
      ev.ts_ms = kNowMs - static_cast<int64_t>(rng() % (180 * kDayMs));
      events.push_back(std::move(ev));
    }
  }

  std::string err;
  tailor::Store::Options so;
  so.path = (dir / "bench.db").string();
  so.synchronous_full = false;
  so.start_writer = false;
  auto store = tailor::Store::Open(so, &err);
  if (!store) Die(err);
  {
    auto bulk = store->BeginBulk(&err);
    if (!bulk) Die(err);
    for (const auto& it : items)
      if (auto s = bulk->Item(it); !s.ok()) Die(s.message());
    for (const auto& ev : events)
      if (auto s = bulk->Event(ev); !s.ok()) Die(s.message());
    if (auto s = bulk->Commit(); !s.ok()) Die(s.message());
  }

  tailor::PluginSpec spec;
  spec.name = "content";
  spec.path = plugin_path;
  spec.train_on_start = false;
  auto plugin = tailor::LoadedPlugin::Load(spec, store.get(), dir.string(), &err);
  if (!plugin) Die(err);
  const size_t rss0 = RssBytes();
  auto t0 = Clock::now();
  if (auto s = plugin->Train(); !s.ok()) Die("train: " + s.message());
  const double train_s = Seconds(t0);
  const size_t rss1 = RssBytes();
  const std::string model_path = (dir / "content.model").string();
  if (auto s = plugin->Save(model_path); !s.ok()) Die("save: " + s.message());
  const auto file_bytes = fs::file_size(model_path);

  std::printf("content bench: %zu items, %zu customers, %zu events (%zu per customer), seed %u\n",
              n_items, n_customers, events.size(), events_per_customer, seed);
  std::printf("train %.2f s; model file %.1f MiB; RSS growth in train %.1f MiB\n", train_s,
              static_cast<double>(file_bytes) / (1 << 20),
              static_cast<double>(rss1 > rss0 ? rss1 - rss0 : 0) / (1 << 20));

  // One customer: the stored taste plus 10 fresh events in the request.
  const std::string customer = "c17";
  std::vector<tailor::Event> fresh;
  for (int e = 0; e < 10; ++e) {
    tailor::Event ev;
    ev.customer_id = customer;
    ev.type = types[rng() % 7];
    ev.item_id = items[rng() % n_items].id;
    ev.ts_ms = kNowMs + e;
    fresh.push_back(ev);
  }
  std::vector<tailor_event_view> recent;
  for (const auto& ev : fresh) {
    recent.push_back({ev.customer_id.c_str(), ev.type.c_str(), ev.item_id.c_str(), nullptr,
                      ev.ts_ms, 0, 0, nullptr});
  }
  tailor_request_view req{};
  req.customer_id = customer.c_str();
  req.known_customer = 1;
  req.channel = "web";
  req.placement = "recs";
  req.context_json = "{}";
  req.now_ms = kNowMs + 100;
  req.recent = recent.data();
  req.n_recent = recent.size();

  std::printf("\n%-10s %-8s %6s %12s %12s %14s\n", "candidates", "reasons", "calls", "median us",
              "p99 us", "ns/candidate");
  std::vector<size_t> order(n_items);
  for (size_t i = 0; i < n_items; ++i) order[i] = i;
  for (size_t n : {size_t{100}, size_t{1000}, size_t{10000}}) {
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<tailor_candidate> cands;
    for (size_t k = 0; k < n; ++k) cands.push_back({nullptr, items[order[k]].id.c_str(), nullptr});
    std::vector<float> scores(n);
    constexpr size_t kCap = 128;
    std::vector<char> reasons(n * kCap);
    const size_t calls = n <= 100 ? 5000 : n <= 1000 ? 1000 : 200;
    for (bool with_reasons : {false, true}) {
      std::vector<double> ns;
      for (size_t r = 0; r < calls + 20; ++r) {
        auto s0 = Clock::now();
        auto st = plugin->Score(req, cands.data(), n, scores.data(),
                                with_reasons ? reasons.data() : nullptr, with_reasons ? kCap : 0);
        const auto dt = std::chrono::duration<double, std::nano>(Clock::now() - s0).count();
        if (!st.ok()) Die("score: " + st.message());
        if (r >= 20) ns.push_back(dt);  // after a warm-up
      }
      const Percentiles p = Summarise(ns);
      std::printf("%-10zu %-8s %6zu %12.1f %12.1f %14.1f\n", n, with_reasons ? "yes" : "no", calls,
                  p.median_us, p.p99_us, p.median_us * 1e3 / static_cast<double>(n));
    }
  }
  {
    size_t nonzero = 0;
    std::vector<tailor_candidate> cands;
    for (size_t k = 0; k < 1000; ++k) cands.push_back({nullptr, items[k].id.c_str(), nullptr});
    std::vector<float> scores(cands.size());
    if (!plugin->Score(req, cands.data(), cands.size(), scores.data(), nullptr, 0).ok())
      Die("score");
    for (float s : scores) nonzero += s > 0;
    std::printf("(%zu of 1000 candidates score above 0 for %s)\n", nonzero, customer.c_str());
  }

  // Observe: one event for a random customer at a time.
  std::vector<double> ns;
  for (size_t r = 0; r < 20000; ++r) {
    const tailor::Event& src = events[rng() % events.size()];
    tailor_event_view ev{src.customer_id.c_str(),
                         "purchase",
                         src.item_id.c_str(),
                         nullptr,
                         kNowMs + static_cast<int64_t>(r),
                         0,
                         0,
                         nullptr};
    auto s0 = Clock::now();
    if (!plugin->Observe(ev).ok()) Die("observe");
    ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - s0).count());
  }
  const Percentiles p = Summarise(ns);
  std::printf("\nobserve: median %.2f us, p99 %.2f us (20000 events)\n", p.median_us, p.p99_us);
  return 0;
}
