// `tailor bench decide`: decide round-trip latency over real ZeroMQ against a
// bare ZeroMQ echo measured in the same run, plus the engine's own time.
#include <stdlib.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bench_suite.h"
#include "client.h"
#include "commands.h"
#include "common/time.h"
#include "model/event_history.h"
#include "rules/rules.h"
#include "runtime.h"
#include "service/server.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

using nlohmann::json;

struct BenchArgs {
  std::string endpoint, config = "config/tailor.yaml", store, plugin_dir, json_out;
  std::string placement = "home", channel = "web";
  int requests = 20000, warmup = 1000;
};

struct Summary {
  std::string name;
  std::vector<double> us;
  double seconds = 0;
  json ToJson() const {
    std::vector<double> v = us;
    std::sort(v.begin(), v.end());
    auto q = [&](double p) {
      return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
    };
    double sum = 0;
    for (double x : v) sum += x;
    return {{"name", name},
            {"n", v.size()},
            {"p50_us", q(0.5)},
            {"p90_us", q(0.9)},
            {"p99_us", q(0.99)},
            {"p999_us", q(0.999)},
            {"max_us", v.empty() ? 0.0 : v.back()},
            {"mean_us", v.empty() ? 0.0 : sum / static_cast<double>(v.size())},
            {"per_second", seconds > 0 ? static_cast<double>(v.size()) / seconds : 0.0}};
  }
};

// Runs fn(i) n times after a warm-up, timing each call in microseconds.
template <typename Fn>
Summary Measure(const std::string& name, int warmup, int n, Fn fn) {
  for (int i = 0; i < warmup; ++i) fn(i);
  Summary s;
  s.name = name;
  s.us.reserve(static_cast<size_t>(n));
  int64_t start = mono_ns();
  int step = std::max(1, n / 10);
  for (int i = 0; i < n; ++i) {
    int64_t t0 = mono_ns();
    fn(i);
    s.us.push_back(static_cast<double>(mono_ns() - t0) / 1000.0);
    if ((i + 1) % step == 0)
      std::fprintf(stderr, "\r  %-28s %3d%%", name.c_str(), (i + 1) * 100 / n);
  }
  s.seconds = static_cast<double>(mono_ns() - start) / 1e9;
  std::fprintf(stderr, "\n");
  return s;
}

void RunBench(const BenchArgs& a) {
  auto rt = Runtime::Open(a.config, a.store, a.plugin_dir);
  int64_t customers = std::max<int64_t>(1, rt->store->Count("customers"));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> pick(1, customers);
  std::vector<std::string> bodies;
  for (int i = 0; i < 4096; ++i) {
    json req = {{"v", 1},
                {"type", "decide"},
                {"id", "b" + std::to_string(i)},
                {"customer", "c" + std::to_string(pick(rng))},
                {"channel", a.channel},
                {"placement", a.placement},
                {"limit", 3}};
    bodies.push_back(req.dump());
  }
  auto body = [&](int i) -> const std::string& { return bodies[static_cast<size_t>(i) % 4096]; };
  std::vector<Summary> results;

  // 1. Baseline: a bare ROUTER echo on loopback TCP, same payloads.
  {
    zmq::context_t ctx(1);
    zmq::socket_t echo(ctx, zmq::socket_type::router);
    echo.bind("tcp://127.0.0.1:*");
    std::string ep = echo.get(zmq::sockopt::last_endpoint);
    std::atomic<bool> stop{false};
    std::thread t([&] {
      zmq::pollitem_t items[] = {{echo.handle(), 0, ZMQ_POLLIN, 0}};
      std::vector<zmq::message_t> frames;
      while (!stop) {
        zmq::poll(items, 1, std::chrono::milliseconds(50));
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        frames.clear();
        if (zmq::recv_multipart(echo, std::back_inserter(frames), zmq::recv_flags::dontwait))
          zmq::send_multipart(echo, frames);
      }
    });
    Client c(ep, 5000);
    results.push_back(Measure("zmq echo (baseline)", a.warmup, a.requests,
                              [&](int i) { (void)c.Call(body(i)); }));
    stop = true;
    t.join();
  }

  // 2. Engine only: Decide() in-process, no sockets, no JSON parsing.
  {
    std::vector<DecideRequest> reqs;
    for (int i = 0; i < 4096; ++i) {
      DecideRequest d;
      d.id = "e";
      d.customer = "c" + std::to_string(pick(rng));
      d.channel = a.channel;
      d.placement = a.placement;
      reqs.push_back(d);
    }
    results.push_back(Measure("engine Decide() in-process", a.warmup, a.requests, [&](int i) {
      (void)rt->engine->Decide(reqs[static_cast<size_t>(i) % reqs.size()]);
    }));
  }

  // 3. Decide over ZeroMQ against tailord (given, or started here).
  std::string endpoint = a.endpoint;
  std::unique_ptr<Server> server;
  std::atomic<bool> stop{false};
  std::thread serve;
  if (endpoint.empty()) {
    ServiceConfig sc = rt->config.service;
    sc.requests = "tcp://127.0.0.1:*";
    sc.events = "tcp://127.0.0.1:*";
    sc.outbound = "tcp://127.0.0.1:*";
    server = std::make_unique<Server>(rt->engine.get(), sc);
    if (Status s = server->Bind(); !s.ok()) Fail(s.message());
    endpoint = server->endpoints().requests;
    serve = std::thread([&] { server->Run(&stop); });
  }
  if (server) {
    // The same requests answered on this thread: parse, decide, reply text.
    // The round trip minus this and the echo is the service's own cost.
    results.push_back(Measure("request handled in-process", a.warmup, a.requests,
                              [&](int i) { (void)server->Handle(body(i)); }));
  }
  {
    Client c(endpoint, 5000);
    int failures = 0;
    results.push_back(Measure("decide round trip (zmq)", a.warmup, a.requests, [&](int i) {
      auto r = c.Call(body(i));
      if (!r || r->find("\"error\"") != std::string::npos) ++failures;
    }));
    if (failures) std::fprintf(stderr, "warning: %d decide requests failed\n", failures);
  }
  if (serve.joinable()) {
    stop = true;
    serve.join();
  }
  rt->store->Flush();

  json out = {{"benchmark", "decide"},
              {"placement", a.placement},
              {"channel", a.channel},
              {"requests", a.requests},
              {"catalog_offers", rt->engine->catalog()->offers.size()},
              {"catalog_items", rt->engine->catalog()->items.size()},
              {"results", json::array()}};
  std::printf("\n%-30s %9s %9s %9s %9s %9s %10s\n", "measure", "p50 us", "p90 us", "p99 us",
              "p99.9 us", "max us", "per sec");
  for (const Summary& s : results) {
    json j = s.ToJson();
    std::printf("%-30s %9.1f %9.1f %9.1f %9.1f %9.1f %10.0f\n", s.name.c_str(),
                j["p50_us"].get<double>(), j["p90_us"].get<double>(), j["p99_us"].get<double>(),
                j["p999_us"].get<double>(), j["max_us"].get<double>(),
                j["per_second"].get<double>());
    out["results"].push_back(j);
  }
  double overhead =
      out["results"].back()["p50_us"].get<double>() - out["results"][0]["p50_us"].get<double>();
  out["decide_minus_baseline_p50_us"] = overhead;
  std::printf("\ndecide round trip p50 minus bare ZeroMQ p50: %.1f us\n", overhead);
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    std::printf("wrote %s\n", a.json_out.c_str());
  }
}

// The rules stage alone: Begin + every candidate through every eligible and
// score hook + finalize + End, with the shipped rules, on synthetic offers.
void RunBenchRules(const BenchArgs& a) {
  std::vector<std::string> errors;
  auto cfg = LoadConfig(a.config, "", &errors);
  if (!cfg) Fail(errors.empty() ? "config error" : errors.front());
  auto rules = RuleSet::Load(cfg->rules_dir, cfg->rule_limits, &errors);
  if (!rules) Fail(errors.empty() ? "rules error" : errors.front());
  Profile profile;
  profile.known = true;
  profile.customer.id = "bench";
  profile.customer.attributes_json =
      R"({"age":35,"dna":{"deal_seeker":"high","night_owl":"high"}})";
  profile.customer.consent_json = R"({"personalization":true,"sensitive":true})";
  int64_t now = now_ms();
  for (int i = 0; i < 50; ++i) {
    Event e;
    e.customer_id = "bench";
    e.type = i % 5 == 0 ? "purchase" : (i % 2 ? "impression" : "view");
    e.offer_id = "o" + std::to_string(i % 40);
    e.item_id = "i" + std::to_string(i);
    e.ts_ms = now - (50 - i) * 3600 * 1000LL;
    profile.recent.push_back(e);
  }
  // history.* read the profile's event history (every event of history_days).
  EventHistory::Builder history;
  for (const Event& e : profile.recent) history.Add(e.type, e.offer_id, e.item_id, e.ts_ms);
  profile.history = history.Build(now - EventHistory::kDefaultDays * 86'400'000LL);
  json out = {{"benchmark", "rules"}, {"rules", rules->rules().size()}, {"results", json::array()}};
  std::printf(
      "rules stage, %zu shipped rules, per request (Begin, all candidates, finalize, End)\n",
      rules->rules().size());
  std::printf("%-12s %10s %10s %10s %14s\n", "candidates", "p50 us", "p99 us", "max us",
              "p50 ns/cand");
  for (int n : {100, 1000}) {
    auto cat = std::make_shared<Catalog>();
    const char* cats[] = {"phones", "laptops", "audio", "beauty", "toys"};
    for (int i = 0; i < n; ++i) {
      Offer o;
      o.id = "o" + std::to_string(i);
      o.category = cats[i % 5];
      o.value = 10 + i % 90;
      if (i % 7 == 0) o.tags["sensitive"] = "pregnancy";
      if (i % 3 == 0) o.discount = std::make_pair(0.1, 0.3);
      cat->offers.push_back(o);
    }
    for (size_t i = 0; i < cat->offers.size(); ++i) cat->offer_index[cat->offers[i].id] = i;
    RuleRuntime rt(rules, cat);
    if (!rt.ok()) Fail("rule runtime failed to start");
    RuleRequest req;
    req.profile = &profile;
    req.personalised = true;
    req.customer_id = "bench";
    req.channel = "web";
    req.placement = "home";
    req.context_json = R"({"hour":23,"intent":"upgrade_phone","device":"mobile"})";
    req.now_ms = now;
    int iterations = n == 100 ? 3000 : 400;
    Summary sum = Measure("rules, " + std::to_string(n) + " candidates", iterations / 10,
                          iterations, [&](int) {
                            rt.Begin(req);
                            std::vector<RuleRuntime::Ranked> ranked;
                            for (int i = 0; i < n; ++i) {
                              RuleEffect fx = rt.Evaluate(static_cast<size_t>(i), i, -1, 0.5);
                              if (!fx.vetoed && ranked.size() < 20)
                                ranked.push_back({static_cast<size_t>(i), cat->offers[i].id,
                                                  0.5 * fx.levers, cat->offers[i].category});
                            }
                            std::vector<std::string> notes;
                            rt.Finalize(&ranked, &notes);
                            rt.End();
                          });
    json j = sum.ToJson();
    j["candidates"] = n;
    j["p50_ns_per_candidate"] = j["p50_us"].get<double>() * 1000.0 / n;
    std::printf("%-12d %10.1f %10.1f %10.1f %14.0f\n", n, j["p50_us"].get<double>(),
                j["p99_us"].get<double>(), j["max_us"].get<double>(),
                j["p50_ns_per_candidate"].get<double>());
    out["results"].push_back(j);
  }
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    std::printf("wrote %s\n", a.json_out.c_str());
  }
}

// The cost of a profile load (a cache miss) by events per customer: the
// store reads counts, first/last seen and the rules' event history in one
// pass over a covering index, so the load grows with the customer's history.
void RunBenchProfiles(const BenchArgs& a) {
  constexpr int kCustomers = 50;
  constexpr int64_t kDay = 86'400'000;
  const int64_t now = now_ms();
  json out = {{"benchmark", "profiles"}, {"results", json::array()}};
  std::printf("profile load (cache miss), %d customers each, recent_events 50\n", kCustomers);
  std::printf("%-16s %10s %10s %14s %12s\n", "events/customer", "p50 us", "p99 us", "history times",
              "history KiB");
  for (int n : {50, 500, 5000, 50000}) {
    char tmpl[] = "/tmp/tailor-bench-profiles-XXXXXX";
    if (!mkdtemp(tmpl)) Fail("cannot create a temporary directory");
    const std::string dir = tmpl;
    std::string err;
    Store::Options o;
    o.path = dir + "/bench.db";
    o.synchronous_full = false;
    o.start_writer = false;
    auto store = Store::Open(o, &err);
    if (!store) Fail(err);
    {
      auto bulk = store->BeginBulk(&err);
      if (!bulk) Fail(err);
      for (int c = 0; c < kCustomers; ++c)
        for (int i = 0; i < n; ++i) {
          // A year of activity: views of 400 items, impressions of 30 offers, purchases.
          Event e;
          e.customer_id = "c" + std::to_string(c);
          e.type = i % 10 == 0 ? "impression" : (i % 50 == 1 ? "purchase" : "view");
          if (i % 10 == 0)
            e.offer_id = "o" + std::to_string(i % 30);
          else
            e.item_id = "i" + std::to_string(i % 400);
          e.ts_ms = now - int64_t{i} * (365 * kDay / n);
          if (Status st = bulk->Event(e); !st.ok()) Fail(st.message());
        }
      if (Status st = bulk->Commit(); !st.ok()) Fail(st.message());
    }
    size_t times = 0;
    Summary sum = Measure(
        "profiles, " + std::to_string(n) + " events", kCustomers,
        n >= 50000 ? 2 * kCustomers : 8 * kCustomers, [&](int i) {
          times = store->LoadProfile("c" + std::to_string(i % kCustomers), 50).history.times();
        });
    store.reset();
    std::filesystem::remove_all(dir);
    json j = sum.ToJson();
    j["events_per_customer"] = n;
    j["history_times"] = times;
    std::printf("%-16d %10.1f %10.1f %14zu %12zu\n", n, j["p50_us"].get<double>(),
                j["p99_us"].get<double>(), times, times * sizeof(int64_t) / 1024);
    out["results"].push_back(j);
  }
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << out.dump(2) << "\n";
    std::printf("wrote %s\n", a.json_out.c_str());
  }
}

}  // namespace

void RegisterBench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto suite = std::make_shared<BenchSuiteArgs>();
  CLI::App* b = app.add_subcommand(
      "bench", "Benchmarks that print figures and write JSON; with no subcommand, every scenario");
  b->require_subcommand(0, 1);
  b->add_option("--json", suite->json_out, "write every figure as JSON here");
  b->add_flag("--quick", suite->quick, "smaller worlds and fewer requests (a few minutes)");
  b->add_option("-c,--config", suite->config, "engine config the worlds start from")
      ->capture_default_str();
  b->add_option("--customers", suite->customers, "customers in the main world (10000; quick 2000)");
  b->add_option("--items", suite->items, "items in the main world (10000)");
  b->add_option("--cold-customers", suite->cold_customers,
                "customers added for the first-touch run (1000000; quick 100000)");
  b->add_option("-n,--requests", suite->requests,
                "measured requests per scenario (5000; quick 1000)");
  b->add_option("--plot", suite->plot, "write the scaling curve as an SVG chart here");
  b->add_option("--work-dir", suite->work_dir, "build the worlds here and keep them");
  b->add_option("--plugin-dir", suite->plugin_dir, "plugin directory for tailord");
  b->add_option("--tailord", suite->tailord, "tailord binary (default: beside this tailor)");
  b->add_option("--baseline-tailord", suite->baseline_tailord,
                "an earlier tailord measured on the same world in the same run (before/after)");
  b->add_option("--baseline-plugin-dir", suite->baseline_plugin_dir,
                "the baseline tailord's plugin directory");
  b->add_option("--only", suite->only,
                "run only these scenarios (comma-separated): offers-100, items-1000, "
                "items-10000, clients-8, events, scaling, cold, start, baseline")
      ->delimiter(',')
      ->check(CLI::IsMember({"offers-100", "items-1000", "items-10000", "clients-8", "events",
                             "scaling", "cold", "start", "baseline"}));
  b->callback([b, suite] {
    if (b->get_subcommands().empty()) RunBenchSuite(*suite);
  });
  CLI::App* d = b->add_subcommand("decide", "Decide latency vs a bare ZeroMQ round trip");
  d->add_option("-c,--config", a->config, "engine config")->capture_default_str();
  d->add_option("--store", a->store, "store path (overrides the config)");
  d->add_option("--plugin-dir", a->plugin_dir, "plugin directory");
  d->add_option("--endpoint", a->endpoint, "measure a running tailord instead of one started here");
  d->add_option("--placement", a->placement, "placement")->capture_default_str();
  d->add_option("--channel", a->channel, "channel")->capture_default_str();
  d->add_option("-n,--requests", a->requests, "measured requests")->capture_default_str();
  d->add_option("--warmup", a->warmup, "warm-up requests")->capture_default_str();
  d->add_option("--json", a->json_out, "write the figures as JSON here");
  d->callback([a] { RunBench(*a); });
  CLI::App* r = b->add_subcommand("rules", "Cost of the rules stage at 100 and 1,000 candidates");
  r->add_option("-c,--config", a->config, "engine config (its rules directory)")
      ->capture_default_str();
  r->add_option("--json", a->json_out, "write the figures as JSON here");
  r->callback([a] { RunBenchRules(*a); });
  CLI::App* p = b->add_subcommand("profiles", "Cost of a profile load by events per customer");
  p->add_option("--json", a->json_out, "write the figures as JSON here");
  p->callback([a] { RunBenchProfiles(*a); });
}

}  // namespace tailor::cli
