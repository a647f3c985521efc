// `tailor eval recs`: top-k recommendation quality on a train / test split
// of (customer, item, time) rows, for every model in one run on the same
// candidates: popularity, an item-kNN cosine baseline computed here, the cf
// and content plugins, and the weighted blend the engine serves (P, the
// weighted mean of the plugin scores; item placements use value exponent 0,
// so P alone orders the offers).
//
// The served models run through their real .so files: the train rows are
// imported into a temporary store, each plugin is loaded over it with
// LoadedPlugin and trained, then every test customer is scored like a decide
// request on an item placement, with the customer's newest --recent (50)
// train events as the request's recent events, like tailord sends them, and
// the time as just after the last train row. A plugin whose .so is not built
// (e.g. content while it is being written) is skipped with a note.
//
// Candidates for a customer: every item that occurs in TRAIN that the
// customer has no train row for. Relevant: the customer's test items among
// those. Metrics at k, averaged over test customers with at least one
// relevant item: hr (any hit), precision (hits / k), recall (hits /
// relevant), ndcg (binary gains, ideal = min(relevant, k) hits), map
// (average precision at k, normalised by min(relevant, k)).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <span>
#include <unordered_map>

#include <unistd.h>

#include "commands.h"
#include "common/paths.h"
#include "common/time.h"
#include "config/config.h"
#include "decision/diversify.h"
#include "ingest/csv.h"
#include "plugin_host/host.h"
#include "progress.h"
#include "ranking_metrics.h"
#include "runtime.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

using nlohmann::json;

struct EvalRecsArgs {
  std::string train, test, items, json_out, config, plugin_dir;
  int k = 10;
  // Plugin config JSON overrides; empty: from the config (or "{}").
  std::string cf_config, content_config, popularity_config;
  // Blend weights; < 0: from the config (or the defaults without one).
  double w_cf = -1, w_content = -1, w_popularity = -1;
  // Diversity of the served list; < 0: the config's `recs` placement.
  double diversity = -1;
  int diversity_pool = 0;  // 0: the config's (or 60)
  int64_t max_users = 0;   // 0 = all
  int recent = 50;         // events per request, like store.recent_events
};

struct Row {
  std::string customer, item, type;
  int64_t ts_ms = 0;
};

// Reads customer_id,item_id,timestamp[,event] by header name; other columns
// are ignored. Timestamps are ISO 8601 or epoch milliseconds.
std::vector<Row> ReadRows(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot open " + path);
  ingest::CsvReader csv(in);
  std::vector<std::string> f;
  if (csv.Next(&f) != ingest::CsvReader::Result::kRecord) Fail(path + ": empty file");
  int ci = -1, ii = -1, ti = -1, ei = -1;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "customer_id") ci = static_cast<int>(i);
    if (f[i] == "item_id") ii = static_cast<int>(i);
    if (f[i] == "timestamp") ti = static_cast<int>(i);
    if (f[i] == "event") ei = static_cast<int>(i);
  }
  if (ci < 0 || ii < 0 || ti < 0) Fail(path + ":1: header needs customer_id,item_id,timestamp");
  std::vector<Row> rows;
  for (;;) {
    const auto res = csv.Next(&f);
    if (res == ingest::CsvReader::Result::kEnd) break;
    if (res == ingest::CsvReader::Result::kError)
      Fail(path + ":" + std::to_string(csv.line()) + ": " + csv.error());
    const size_t need = static_cast<size_t>(std::max({ci, ii, ti, ei})) + 1;
    if (f.size() < need) Fail(path + ":" + std::to_string(csv.line()) + ": too few fields");
    Row r;
    r.customer = f[ci];
    r.item = f[ii];
    r.type = ei >= 0 && !f[ei].empty() ? f[ei] : "purchase";
    const std::string& t = f[ti];
    if (auto ms = parse_iso8601_ms(t)) {
      r.ts_ms = *ms;
    } else {
      char* end = nullptr;
      r.ts_ms = std::strtoll(t.c_str(), &end, 10);
      if (t.empty() || *end != '\0')
        Fail(path + ":" + std::to_string(csv.line()) + ": bad timestamp '" + t + "'");
    }
    if (r.customer.empty() || r.item.empty()) continue;
    rows.push_back(std::move(r));
  }
  return rows;
}

// item_id[,title,description,category,brand,price], by header name.
std::vector<Item> ReadItems(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot open " + path);
  ingest::CsvReader csv(in);
  std::vector<std::string> f;
  if (csv.Next(&f) != ingest::CsvReader::Result::kRecord) Fail(path + ": empty file");
  std::map<std::string, size_t> col;
  for (size_t i = 0; i < f.size(); ++i) col[f[i]] = i;
  if (!col.count("item_id")) Fail(path + ":1: header needs item_id");
  std::vector<Item> items;
  for (;;) {
    const auto res = csv.Next(&f);
    if (res == ingest::CsvReader::Result::kEnd) break;
    if (res == ingest::CsvReader::Result::kError)
      Fail(path + ":" + std::to_string(csv.line()) + ": " + csv.error());
    auto get = [&](const char* name) -> std::string {
      auto it = col.find(name);
      return it != col.end() && it->second < f.size() ? f[it->second] : "";
    };
    Item it;
    it.id = get("item_id");
    it.title = get("title");
    it.description = get("description");
    it.category = get("category");
    it.brand = get("brand");
    it.price = std::atof(get("price").c_str());
    if (!it.id.empty()) items.push_back(std::move(it));
  }
  return items;
}

struct Metrics {
  double hr = 0, precision = 0, recall = 0, ndcg = 0, map = 0;
  int64_t users = 0;
};

void Accumulate(Metrics& m, const std::vector<uint32_t>& top, const std::set<uint32_t>& relevant,
                int k) {
  const eval::RankingScores r = eval::ScoreRanking(top, relevant, k);
  m.hr += r.hr;
  m.precision += r.precision;
  m.recall += r.recall;
  m.ndcg += r.ndcg;
  m.map += r.ap;
  ++m.users;
}

// Positions of the best k scores, best first; ties in position (= item id)
// order, like the engine's.
std::vector<uint32_t> TopPositions(const std::vector<float>& scores, size_t k) {
  std::vector<uint32_t> pos(scores.size());
  std::iota(pos.begin(), pos.end(), 0u);
  const size_t kk = std::min(pos.size(), k);
  std::partial_sort(pos.begin(), pos.begin() + static_cast<ptrdiff_t>(kk), pos.end(),
                    [&](uint32_t a, uint32_t b) {
                      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
                    });
  pos.resize(kk);
  return pos;
}

// The candidates (item indices) with the k best scores, best first.
std::vector<uint32_t> TopK(const std::vector<uint32_t>& cands, const std::vector<float>& scores,
                           int k) {
  std::vector<uint32_t> out;
  for (uint32_t p : TopPositions(scores, static_cast<size_t>(k))) out.push_back(cands[p]);
  return out;
}

struct Served {
  std::string name;
  std::unique_ptr<LoadedPlugin> plugin;
  double weight = 1;
  bool in_blend = true;
  double train_s = 0;
};

void RunEvalRecs(const EvalRecsArgs& a) {
  if (a.k < 1) Fail("--k must be at least 1");
  const std::vector<Row> train = ReadRows(a.train);
  const std::vector<Row> test = ReadRows(a.test);
  std::cerr << "read " << train.size() << " train rows, " << test.size() << " test rows\n";

  // The universe: items that occur in train, in id order.
  std::vector<std::string> item_ids;
  for (const Row& r : train) item_ids.push_back(r.item);
  std::sort(item_ids.begin(), item_ids.end());
  item_ids.erase(std::unique(item_ids.begin(), item_ids.end()), item_ids.end());
  std::unordered_map<std::string, uint32_t> item_index;
  for (size_t i = 0; i < item_ids.size(); ++i)
    item_index.emplace(item_ids[i], static_cast<uint32_t>(i));
  const size_t n_items = item_ids.size();

  // Train history per customer, oldest first.
  std::unordered_map<std::string, std::vector<const Row*>> history;
  for (const Row& r : train) history[r.customer].push_back(&r);
  int64_t last_ts = INT64_MIN;
  for (auto& [c, rows] : history) {
    std::stable_sort(rows.begin(), rows.end(),
                     [](const Row* x, const Row* y) { return x->ts_ms < y->ts_ms; });
    last_ts = std::max(last_ts, rows.back()->ts_ms);
  }
  // Relevant items per test customer.
  std::map<std::string, std::set<uint32_t>> relevant;
  for (const Row& r : test) {
    auto h = history.find(r.customer);
    auto it = item_index.find(r.item);
    if (h == history.end() || it == item_index.end()) continue;
    bool owned = false;
    for (const Row* x : h->second) owned |= x->item == r.item;
    if (!owned) relevant[r.customer].insert(it->second);
  }
  if (relevant.empty())
    Fail("no test customer has a relevant item (customers and items must occur in train)");

  // A temporary store holding the train rows and the catalog.
  namespace fs = std::filesystem;
  const fs::path tmp =
      fs::temp_directory_path() /
      ("tailor-eval-recs-" + std::to_string(::getpid()) + "-" + std::to_string(now_ms()));
  fs::create_directories(tmp);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  Store::Options so;
  so.path = (tmp / "eval.db").string();
  so.synchronous_full = false;
  so.start_writer = false;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store) Fail(err);
  {
    auto bulk = store->BeginBulk(&err);
    if (!bulk) Fail(err);
    std::set<std::string> cataloged;
    if (!a.items.empty()) {
      for (const Item& it : ReadItems(a.items)) {
        if (!cataloged.insert(it.id).second) continue;
        if (Status s = bulk->Item(it); !s.ok()) Fail(s.message());
      }
    }
    for (const std::string& id : item_ids) {
      if (cataloged.count(id)) continue;
      Item it;
      it.id = id;
      if (Status s = bulk->Item(it); !s.ok()) Fail(s.message());
    }
    Progress prog("import");
    int64_t done = 0;
    for (const Row& r : train) {
      Event e;
      e.customer_id = r.customer;
      e.type = r.type;
      e.item_id = r.item;
      e.ts_ms = r.ts_ms;
      if (Status s = bulk->Event(e); !s.ok()) Fail(s.message());
      if (++done % 20000 == 0) prog.Update(done, static_cast<int64_t>(train.size()), "events");
    }
    if (Status s = bulk->Commit(); !s.ok()) Fail(s.message());
    prog.Done(std::to_string(done) + " events, " + std::to_string(n_items) + " items");
  }

  // The served plugins and their blend weights: the engine's own specs from
  // --config (config/tailor.yaml by default, when it exists), else the
  // defaults below; --w-<name> and --<name>-config override either. A plugin
  // whose .so is not built is skipped with a note (its weight drops out of the
  // blend, as in tailord); one built but not listed in the config is
  // evaluated alone, outside the blend, unless a --w-<name> puts it in.
  const std::string plugin_dir = a.plugin_dir.empty() ? DefaultPluginDir() : a.plugin_dir;
  std::map<std::string, PluginSpec> from_config;
  PlacementConfig recs_placement;  // diversity settings as the recs placement serves them
  std::string config_path = a.config;
  if (config_path.empty() && fs::exists("config/tailor.yaml")) config_path = "config/tailor.yaml";
  if (!config_path.empty()) {
    std::vector<std::string> errors;
    auto cfg = LoadConfig(config_path, plugin_dir, &errors);
    if (!cfg) {
      for (const auto& e : errors) std::cerr << e << "\n";
      Fail("cannot load " + config_path, 2);
    }
    for (const PluginSpec& s : cfg->plugins) from_config[s.name] = s;
    if (auto it = cfg->placements.find("recs"); it != cfg->placements.end())
      recs_placement = it->second;
    std::cerr << "blend weights and plugin configs from " << config_path << "\n";
  }
  struct Wanted {
    const char* name;
    double weight;  // < 0: not given on the command line
    std::string config;
  };
  const Wanted wanted[] = {{"popularity", a.w_popularity, a.popularity_config},
                           {"cf", a.w_cf, a.cf_config},
                           {"content", a.w_content, a.content_config}};
  const std::map<std::string, double> kDefaultWeights = {
      {"popularity", 0.1}, {"cf", 1.0}, {"content", 0.1}};
  std::vector<std::pair<PluginSpec, bool>> specs;  // spec, in the blend
  for (const Wanted& w : wanted) {
    PluginSpec s;
    bool in_blend = true;
    if (auto it = from_config.find(w.name); it != from_config.end()) {
      s = it->second;
    } else {
      s.name = w.name;
      s.path = plugin_dir + "/tailor_" + s.name + ".so";
      s.weight = kDefaultWeights.at(s.name);
      s.config_json = "{}";
      in_blend = config_path.empty();
    }
    if (w.weight >= 0) {
      s.weight = w.weight;
      in_blend = true;
    }
    if (!w.config.empty()) s.config_json = w.config;
    if (!fs::exists(s.path)) {
      std::cerr << "note: " << s.name << " skipped: " << s.path << " is not built\n";
      continue;
    }
    if (!in_blend)
      std::cerr << "note: " << s.name << " is not listed in " << config_path
                << ": evaluated alone, outside the blend (give --w-" << s.name << " to blend it)\n";
    specs.emplace_back(s, in_blend);
  }
  std::vector<Served> served;
  for (auto [s, in_blend] : specs) {
    s.train_on_start = false;
    auto p = LoadedPlugin::Load(s, store.get(), (tmp / "models").string(), &err);
    if (!p) {
      // Like tailord: a plugin that does not load is left out of the blend.
      std::cerr << "warning: " << s.name << " not loaded, left out: " << err << "\n";
      continue;
    }
    Served sv;
    sv.name = s.name;
    sv.weight = s.weight;
    sv.in_blend = in_blend && s.weight > 0;
    if (p->can_train()) {
      std::cerr << "training " << s.name << "...\n";
      const int64_t t0 = mono_ns();
      if (Status st = p->Train(); !st.ok()) Fail(s.name + ": train failed: " + st.message());
      sv.train_s = static_cast<double>(mono_ns() - t0) / 1e9;
      std::cerr << "trained " << s.name << " in " << sv.train_s << " s\n";
    }
    sv.plugin = std::move(p);
    served.push_back(std::move(sv));
  }

  // Diversity, as Engine::Decide applies it to an item placement.
  const double diversity = a.diversity >= 0 ? a.diversity : recs_placement.diversity;
  const size_t diversity_pool =
      a.diversity_pool > 0 ? static_cast<size_t>(a.diversity_pool) : recs_placement.diversity_pool;
  LoadedPlugin* diversity_by = nullptr;
  if (diversity > 0) {
    for (const Served& s : served)
      if (s.plugin->can_similarity() &&
          (recs_placement.diversity_by.empty() || s.name == recs_placement.diversity_by)) {
        diversity_by = s.plugin.get();
        break;
      }
    if (diversity_by == nullptr) {
      std::cerr
          << "note: no served plugin offers item similarities: the blend is not diversified\n";
    } else {
      std::cerr << "blend diversified: lambda " << diversity << " over the best " << diversity_pool
                << ", similarities from " << diversity_by->name() << "\n";
    }
  }

  // Item-kNN cosine baseline: sim(i, j) = |U_i & U_j| / sqrt(|U_i| |U_j|)
  // over distinct customer-item pairs; a customer's score for c is the sum of
  // sim(j, c) over the items j they have.
  std::cerr << "building the item-kNN baseline...\n";
  std::vector<std::vector<uint32_t>> user_items;
  std::map<std::string, size_t> user_row;
  for (const auto& [c, rows] : history) {
    std::vector<uint32_t> v;
    for (const Row* r : rows) v.push_back(item_index.at(r->item));
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    user_row[c] = user_items.size();
    user_items.push_back(std::move(v));
  }
  std::vector<float> sim(n_items * n_items, 0.0f);
  std::vector<float> deg(n_items, 0.0f);
  for (const auto& v : user_items) {
    for (uint32_t i : v) {
      deg[i] += 1;
      float* row = &sim[static_cast<size_t>(i) * n_items];
      for (uint32_t j : v) row[j] += 1;
    }
  }
  for (size_t i = 0; i < n_items; ++i) {
    for (size_t j = 0; j < n_items; ++j) {
      float& s = sim[i * n_items + j];
      s = i == j || s == 0 ? 0.0f : s / std::sqrt(deg[i] * deg[j]);
    }
  }

  // Score every test customer with every model.
  std::vector<std::string> names = {"popularity", "item-knn"};
  for (const Served& s : served)
    if (s.name != "popularity") names.push_back(s.name);
  names.push_back("blend");
  if (diversity_by != nullptr) names.push_back("blend-plain");
  std::map<std::string, Metrics> metrics;
  const size_t n_users = a.max_users > 0
                             ? std::min<size_t>(relevant.size(), static_cast<size_t>(a.max_users))
                             : relevant.size();
  Progress prog("scoring");
  size_t done = 0;
  std::vector<float> knn(n_items);
  std::map<std::string, std::vector<float>> scores;
  std::map<std::string, double> score_ns;
  double diversity_ns = 0;
  std::vector<const char*> pool_ids;
  std::vector<double> pool_scores;
  std::vector<float> pool_sim;
  for (const auto& [customer, rel] : relevant) {
    if (done >= n_users) break;
    const std::vector<uint32_t>& own = user_items[user_row.at(customer)];
    std::vector<uint32_t> cands;
    cands.reserve(n_items);
    for (uint32_t i = 0, o = 0; i < n_items; ++i) {
      while (o < own.size() && own[o] < i) ++o;
      if (o < own.size() && own[o] == i) continue;
      cands.push_back(i);
    }
    std::vector<tailor_candidate> cv;
    cv.reserve(cands.size());
    for (uint32_t i : cands) cv.push_back({nullptr, item_ids[i].c_str(), nullptr});
    // Like the engine: the customer's newest events, oldest first.
    std::vector<tailor_event_view> recent;
    const auto& hist = history.at(customer);
    const size_t first = hist.size() > static_cast<size_t>(a.recent)
                             ? hist.size() - static_cast<size_t>(a.recent)
                             : 0;
    for (const Row* r : std::span(hist).subspan(first)) {
      recent.push_back({r->customer.c_str(), r->type.c_str(), r->item.c_str(), nullptr, r->ts_ms, 0,
                        0, nullptr});
    }
    tailor_request_view req{};
    req.customer_id = customer.c_str();
    req.known_customer = 1;
    req.channel = "web";
    req.placement = "recs";
    req.context_json = "{}";
    req.now_ms = last_ts + 1;
    req.recent = recent.data();
    req.n_recent = recent.size();

    // Like the engine: per candidate, the weighted mean over the plugins that
    // did not abstain; 0.5 where every plugin abstained.
    std::vector<float> blend(cands.size(), 0.0f);
    std::vector<double> wsum(cands.size(), 0.0);
    for (Served& s : served) {
      std::vector<float>& sc = scores[s.name];
      sc.assign(cands.size(), 0.0f);
      const int64_t t0 = mono_ns();
      Status st = s.plugin->Score(req, cv.data(), cv.size(), sc.data(), nullptr, 0);
      score_ns[s.name] += static_cast<double>(mono_ns() - t0);
      if (!st.ok()) {
        // Like the engine: a plugin that fails drops out of this decision.
        std::fill(sc.begin(), sc.end(), 0.0f);
        std::cerr << s.name << ": score failed for " << customer << ": " << st.message() << "\n";
        continue;
      }
      if (!s.in_blend) continue;
      for (size_t i = 0; i < cands.size(); ++i) {
        if (sc[i] == TAILOR_SCORE_ABSTAIN) continue;
        blend[i] += static_cast<float>(s.weight) * sc[i];
        wsum[i] += s.weight;
      }
    }
    for (size_t i = 0; i < cands.size(); ++i)
      blend[i] = wsum[i] > 0 ? static_cast<float>(blend[i] / wsum[i]) : 0.5f;
    std::fill(knn.begin(), knn.end(), 0.0f);
    for (uint32_t j : own) {
      const float* row = &sim[static_cast<size_t>(j) * n_items];
      for (size_t i = 0; i < n_items; ++i) knn[i] += row[i];
    }
    std::vector<float> knn_c(cands.size());
    for (size_t i = 0; i < cands.size(); ++i) knn_c[i] = knn[cands[i]];

    Accumulate(metrics["item-knn"], TopK(cands, knn_c, a.k), rel, a.k);
    for (const Served& s : served)
      Accumulate(metrics[s.name], TopK(cands, scores[s.name], a.k), rel, a.k);
    if (diversity_by == nullptr) {
      Accumulate(metrics["blend"], TopK(cands, blend, a.k), rel, a.k);
    } else {
      const int64_t t0 = mono_ns();
      const std::vector<uint32_t> head =
          TopPositions(blend, std::max(diversity_pool, static_cast<size_t>(a.k)));
      const size_t m = std::min(head.size(), diversity_pool);
      pool_ids.clear();
      pool_scores.clear();
      for (size_t r = 0; r < m; ++r) {
        pool_ids.push_back(item_ids[cands[head[r]]].c_str());
        pool_scores.push_back(blend[head[r]]);
      }
      pool_sim.resize(m * m);
      std::vector<uint32_t> top;
      if (Status st = diversity_by->Similarity(pool_ids.data(), m, pool_sim.data()); st.ok()) {
        for (const DiversifyPick& p :
             Diversify(pool_scores, pool_sim, diversity, std::min(m, static_cast<size_t>(a.k))))
          if (top.size() < static_cast<size_t>(a.k)) top.push_back(cands[head[p.from]]);
      } else {
        // Like the engine: the list stays as ranked.
        std::cerr << diversity_by->name() << ": similarity failed: " << st.message() << "\n";
        for (size_t r = 0; r < std::min(head.size(), static_cast<size_t>(a.k)); ++r)
          top.push_back(cands[head[r]]);
      }
      for (size_t r = top.size(); r < std::min(head.size(), static_cast<size_t>(a.k)); ++r)
        top.push_back(cands[head[r]]);
      diversity_ns += static_cast<double>(mono_ns() - t0);
      Accumulate(metrics["blend"], top, rel, a.k);
      Accumulate(metrics["blend-plain"], TopK(cands, blend, a.k), rel, a.k);
    }
    if (++done % 50 == 0)
      prog.Update(static_cast<int64_t>(done), static_cast<int64_t>(n_users), "customers");
  }
  prog.Done(std::to_string(done) + " customers");

  json out = {{"k", a.k},         {"train", a.train},           {"test", a.test},
              {"items", n_items}, {"train_rows", train.size()}, {"test_customers", done}};
  json blend_spec = json::object();
  for (const Served& s : served)
    if (s.in_blend) blend_spec[s.name] = s.weight;
  out["blend_weights"] = blend_spec;
  if (diversity_by != nullptr) {
    out["diversity"] = {
        {"lambda", diversity},
        {"pool", diversity_pool},
        {"by", diversity_by->name()},
        {"mean_us", diversity_ns / 1e3 / static_cast<double>(std::max<size_t>(1, done))}};
  }
  json rows = json::array();
  std::printf("%-12s %6s %7s %7s %7s %7s %7s   (at k=%d)\n", "model", "users", "hr", "prec",
              "recall", "ndcg", "map", a.k);
  for (const std::string& name : names) {
    auto it = metrics.find(name);
    if (it == metrics.end()) continue;
    Metrics m = it->second;
    const double u = static_cast<double>(std::max<int64_t>(1, m.users));
    m.hr /= u;
    m.precision /= u;
    m.recall /= u;
    m.ndcg /= u;
    m.map /= u;
    std::printf("%-12s %6lld %7.4f %7.4f %7.4f %7.4f %7.4f\n", name.c_str(),
                static_cast<long long>(m.users), m.hr, m.precision, m.recall, m.ndcg, m.map);
    json row = {{"model", name},      {"users", m.users}, {"hr", m.hr},  {"precision", m.precision},
                {"recall", m.recall}, {"ndcg", m.ndcg},   {"map", m.map}};
    for (const Served& s : served) {
      if (s.name != name) continue;
      row["train_seconds"] = s.train_s;
      row["mean_score_ms"] = score_ns[name] / 1e6 / static_cast<double>(std::max<size_t>(1, done));
    }
    rows.push_back(row);
  }
  if (diversity_by != nullptr)
    std::printf(
        "blend: diversified (lambda %g over the best %zu, similarities from %s, %.1f us "
        "per list); blend-plain: the same scores, not diversified\n",
        diversity, diversity_pool, diversity_by->name().c_str(),
        diversity_ns / 1e3 / static_cast<double>(std::max<size_t>(1, done)));
  out["models"] = rows;
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    if (!f) Fail("cannot write " + a.json_out);
    std::cerr << "wrote " << a.json_out << "\n";
  }
}

}  // namespace

void RegisterEvalRecs(CLI::App& eval) {
  auto a = std::make_shared<EvalRecsArgs>();
  CLI::App* c = eval.add_subcommand(
      "recs", "Top-k recommendation metrics for popularity, item-kNN, cf, content and the blend");
  c->add_option("--train", a->train, "train CSV: customer_id,item_id,timestamp[,event]")
      ->required()
      ->check(CLI::ExistingFile);
  c->add_option("--test", a->test, "test CSV, same columns")->required()->check(CLI::ExistingFile);
  c->add_option("--items", a->items,
                "catalog CSV: item_id[,title,description,category,brand,price]")
      ->check(CLI::ExistingFile);
  c->add_option("--k", a->k, "cut-off")->capture_default_str();
  c->add_option("--json", a->json_out, "write the results as JSON here");
  c->add_option("-c,--config", a->config,
                "take the served plugins (weights and configs) from this tailor.yaml "
                "(default: config/tailor.yaml when it exists)");
  c->add_option("--plugin-dir", a->plugin_dir,
                "where tailor_<name>.so live (default: beside the tailor binary)");
  c->add_option("--cf-config", a->cf_config, "cf plugin config JSON (overrides the config)");
  c->add_option("--content-config", a->content_config,
                "content plugin config JSON (overrides the config)");
  c->add_option("--popularity-config", a->popularity_config,
                "popularity plugin config JSON (overrides the config)");
  c->add_option("--w-cf", a->w_cf, "blend weight of cf (overrides the config)");
  c->add_option("--w-content", a->w_content, "blend weight of content (overrides the config)");
  c->add_option("--w-popularity", a->w_popularity,
                "blend weight of popularity (overrides the config)");
  c->add_option("--recent", a->recent, "recent events handed to the plugins per request")
      ->capture_default_str();
  c->add_option("--diversity", a->diversity,
                "diversity lambda of the served list (default: the config's recs placement; "
                "0 = off)");
  c->add_option("--diversity-pool", a->diversity_pool,
                "candidates the diversified positions are picked from (default: the config's)");
  c->add_option("--max-users", a->max_users, "evaluate only the first N test customers (0 = all)");
  c->callback([a] { RunEvalRecs(*a); });
}

}  // namespace tailor::cli
