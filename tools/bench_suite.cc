// `tailor bench --json OUT.json [--quick]`: the one benchmark a user runs. It
// builds its own worlds with the demo generator, starts a real tailord and a
// bare ZeroMQ echo server answering with the same payload sizes, and measures
// in the same run: decide latency by candidate count, throughput with 8
// pipelined clients, event ingestion, first-touch customers on a big store,
// start-up time, and how cost scales with customers and catalog size.
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bench_suite.h"
#include "client.h"
#include "common/time.h"
#include "ingest/demo_world.h"
#include "progress.h"
#include "runtime.h"
#include "store/store.h"
#include "tailord_process.h"

namespace tailor::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kOffersPlacement = "bench_offers";
constexpr int kBenchOffers = 100;
constexpr int kWarmCustomers = 1024;

// --- Figures ------------------------------------------------------------------

struct Latencies {
  std::vector<double> us;
  double seconds = 0;
  double Quantile(double p) const {
    if (us.empty()) return 0;
    std::vector<double> v = us;
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
    return v[k];
  }
  double Rate() const { return seconds > 0 ? static_cast<double>(us.size()) / seconds : 0; }
};

// CPU seconds (user + system) and resident memory of a process, from /proc.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double RssMb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// A scenario's row: the decide figures beside the echo's of the same run.
json ScenarioJson(const std::string& name, int candidates, int clients, const Latencies& dec,
                  const Latencies& echo, double cpu_us_per_decision, pid_t pid) {
  return {{"name", name},
          {"candidates", candidates},
          {"clients", clients},
          {"p50_us", dec.Quantile(0.5)},
          {"p90_us", dec.Quantile(0.9)},
          {"p99_us", dec.Quantile(0.99)},
          {"p999_us", dec.Quantile(0.999)},
          {"throughput_rps", dec.Rate()},
          {"echo_p50_us", echo.Quantile(0.5)},
          {"echo_p99_us", echo.Quantile(0.99)},
          {"echo_throughput_rps", echo.Rate()},
          {"cpu_us_per_decision", cpu_us_per_decision},
          {"rss_mb", RssMb(pid)}};
}

// --- The bare ZeroMQ echo -----------------------------------------------------

// A ROUTER that answers each request with the request padded to reply_bytes:
// the same socket type, loopback TCP and payload sizes as tailord, no work.
class EchoServer {
 public:
  EchoServer() : sock_(ctx_, zmq::socket_type::router) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.bind("tcp://127.0.0.1:*");
    endpoint_ = sock_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Loop(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  void set_reply_bytes(size_t n) { reply_bytes_ = n; }

 private:
  void Loop() {
    zmq::pollitem_t items[] = {{sock_.handle(), 0, ZMQ_POLLIN, 0}};
    std::vector<zmq::message_t> frames;
    while (!stop_) {
      zmq::poll(items, 1, std::chrono::milliseconds(50));
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      for (;;) {
        frames.clear();
        if (!zmq::recv_multipart(sock_, std::back_inserter(frames), zmq::recv_flags::dontwait))
          break;
        std::string body = frames.back().to_string();
        if (body.size() < reply_bytes_) body.append(reply_bytes_ - body.size(), ' ');
        frames.back() = zmq::message_t(body.data(), body.size());
        zmq::send_multipart(sock_, frames);
      }
    }
  }
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
  std::string endpoint_;
  std::atomic<size_t> reply_bytes_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// --- Clients ------------------------------------------------------------------

// One synchronous client: each request waits for its reply.
Latencies Sequential(const std::string& endpoint, const std::vector<std::string>& bodies, int n,
                     const std::string& label, int* failures) {
  Client c(endpoint, 10000);
  Latencies out;
  out.us.reserve(static_cast<size_t>(n));
  Progress bar(label);
  const int64_t start = mono_ns();
  for (int i = 0; i < n; ++i) {
    const int64_t t0 = mono_ns();
    auto r = c.Call(bodies[static_cast<size_t>(i) % bodies.size()]);
    out.us.push_back(static_cast<double>(mono_ns() - t0) / 1000.0);
    if (failures && (!r || r->find("\"error\"") != std::string::npos)) ++*failures;
    if (i % 200 == 0) bar.Update(i, n, "requests");
  }
  out.seconds = static_cast<double>(mono_ns() - start) / 1e9;
  bar.Done("");
  return out;
}

// The request's id ("~b<client>-<seq>") found in a reply without parsing it.
int64_t SeqOf(const std::string& reply) {
  size_t at = reply.find("\"~b");
  if (at == std::string::npos) return -1;
  at = reply.find('-', at);
  return at == std::string::npos ? -1 : std::atoll(reply.c_str() + at + 1);
}

// clients DEALER sockets, each keeping depth requests in flight, n in all.
Latencies Pipelined(const std::string& endpoint, const std::vector<json>& requests, int clients,
                    int depth, int n, const std::string& label) {
  std::vector<Latencies> per(static_cast<size_t>(clients));
  std::atomic<int> done{0};
  Progress bar(label);
  const int64_t start = mono_ns();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      Wire wire(endpoint);
      const int mine = n / clients;
      std::vector<int64_t> sent(static_cast<size_t>(mine), 0);
      Latencies& lat = per[static_cast<size_t>(c)];
      int next = 0, got = 0;
      auto send = [&] {
        json req = requests[static_cast<size_t>(next * clients + c) % requests.size()];
        req["id"] = "~b" + std::to_string(c) + "-" + std::to_string(next);
        sent[static_cast<size_t>(next)] = mono_ns();
        wire.SendRaw(req.dump());
        ++next;
      };
      while (next < std::min(depth, mine)) send();
      while (got < mine) {
        auto r = wire.RecvRaw(10000);
        if (!r) break;  // counted as missing below
        int64_t seq = SeqOf(*r);
        if (seq >= 0 && seq < mine)
          lat.us.push_back(static_cast<double>(mono_ns() - sent[static_cast<size_t>(seq)]) / 1e3);
        ++got;
        if (done.fetch_add(1) % 500 == 0) bar.Update(done.load(), n, "requests");
        if (next < mine) send();
      }
    });
  for (auto& t : threads) t.join();
  Latencies all;
  all.seconds = static_cast<double>(mono_ns() - start) / 1e9;
  for (auto& l : per) all.us.insert(all.us.end(), l.us.begin(), l.us.end());
  bar.Done("");
  return all;
}

// --- The bench's config and worlds --------------------------------------------

struct BenchWorld {
  int customers = 0, items = 0, days = 0;
  std::string dir, store, config;
};

std::string OffersYaml(const std::string& shipped) {
  YAML::Node root = YAML::LoadFile(shipped);
  // Shipped offers shown everywhere stay on the shipped placements only, so
  // the bench's offers placement has exactly its own 100.
  for (YAML::Node o : root["offers"])
    if (!o["placements"]) o["placements"] = YAML::Load("[home, checkout, email]");
  const auto& cats = ingest::DemoCategories();
  for (int i = 0; i < kBenchOffers; ++i) {
    YAML::Node o(YAML::NodeType::Map);
    o["id"] = "o_bench_" + std::to_string(i);
    o["name"] = "Bench offer " + std::to_string(i);
    o["promotes"]["category"] = cats[static_cast<size_t>(i) % cats.size()];
    o["value"] = 10 + (i * 37) % 190;
    o["placements"] = YAML::Load(std::string("[") + kOffersPlacement + "]");
    if (i % 5 == 0) o["discount"] = YAML::Load("{min: 0.05, max: 0.2}");
    root["offers"].push_back(o);
  }
  YAML::Emitter out;
  out << root;
  return out.c_str();
}

// A copy of the shipped config directory with the bench's placements and
// offers; rules stay where they are.
std::string WriteBenchConfig(const std::string& config_file, const std::string& dir) {
  const fs::path src = fs::path(config_file).parent_path();
  const fs::path dst = fs::path(dir) / "config";
  std::error_code ec;
  fs::create_directories(dst);
  fs::copy(src.empty() ? fs::path(".") : src, dst,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) Fail("bench: cannot copy " + src.string() + ": " + ec.message());
  YAML::Node root = YAML::LoadFile(config_file);
  if (root["rules"] && root["rules"].IsScalar()) {
    fs::path rules = root["rules"].Scalar();
    if (rules.is_relative()) rules = fs::absolute(src / rules).lexically_normal();
    root["rules"] = rules.string();
  }
  root["placements"][kOffersPlacement] = YAML::Load("{kind: offers}");
  for (int cap : {1000, 10000}) {
    YAML::Node p = root["placements"]["recs"] ? YAML::Clone(root["placements"]["recs"])
                                              : YAML::Load("{kind: items}");
    p["max_candidates"] = cap;
    root["placements"]["bench_items_" + std::to_string(cap)] = p;
  }
  const std::string offers = root["offers"] ? root["offers"].Scalar() : "offers.yaml";
  const std::string offers_text = OffersYaml((src / offers).string());
  root["offers"] = "bench_offers.yaml";
  std::ofstream(dst / "bench_offers.yaml") << "# Written by `tailor bench`\n"
                                           << offers_text << "\n";
  YAML::Emitter out;
  out << root;
  const std::string path = (dst / "tailor.yaml").string();
  std::ofstream(path) << "# Written by `tailor bench` from " << config_file << "\n"
                      << out.c_str() << "\n";
  return path;
}

BenchWorld MakeWorld(const std::string& root, const std::string& name, int customers, int items,
                     int days, const std::string& config_file) {
  BenchWorld w;
  w.customers = customers;
  w.items = items;
  w.days = days;
  w.dir = (fs::path(root) / name).string();
  fs::create_directories(w.dir);
  w.store = (fs::path(w.dir) / "bench.db").string();
  w.config = WriteBenchConfig(config_file, w.dir);
  Store::Options so;
  so.path = w.store;
  so.start_writer = false;
  so.synchronous_full = false;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store) Fail("bench: " + err);
  ingest::DemoOptions o;
  o.customers = customers;
  o.items = items;
  o.days = days;
  Progress bar("world " + name);
  Status st = ingest::GenerateDemo(*store, o, nullptr,
                                   [&](std::string_view stage, int64_t done, int64_t total) {
                                     bar.Update(done, total, std::string(stage));
                                   });
  if (!st.ok()) Fail("bench: " + st.message());
  bar.Done(std::to_string(customers) + " customers, " + std::to_string(items) + " items, " +
           std::to_string(days) + " days");
  return w;
}

// Adds n first-touch customers k1..kn with a few views each, for the cold run.
void AddColdCustomers(const std::string& store_path, int n, int items) {
  Store::Options so;
  so.path = store_path;
  so.start_writer = false;
  so.synchronous_full = false;
  std::string err;
  auto store = Store::Open(so, &err);
  if (!store) Fail("bench: " + err);
  auto bulk = store->BeginBulk(&err);
  if (!bulk) Fail("bench: " + err);
  std::mt19937_64 rng(11);
  const int64_t now = now_ms();
  Progress bar("cold customers");
  for (int i = 1; i <= n; ++i) {
    Customer c;
    c.id = "k" + std::to_string(i);
    c.attributes_json = R"({"age":)" + std::to_string(18 + i % 60) + "}";
    c.consent_json = R"({"personalization":true})";
    if (Status st = bulk->Customer(c); !st.ok()) Fail("bench: " + st.message());
    for (int e = 0; e < 3; ++e) {
      Event ev;
      ev.customer_id = c.id;
      ev.type = "view";
      ev.item_id = "i" + std::to_string(1 + rng() % static_cast<uint64_t>(items));
      ev.ts_ms = now - static_cast<int64_t>(rng() % (30 * 86'400'000ULL));
      if (Status st = bulk->Event(ev); !st.ok()) Fail("bench: " + st.message());
    }
    if (i % 10000 == 0) bar.Update(i, n, "customers");
  }
  if (Status st = bulk->Commit(); !st.ok()) Fail("bench: " + st.message());
  bar.Done(std::to_string(n) + " customers added");
}

std::vector<json> DecideRequests(const std::string& prefix, int customers,
                                 const std::string& placement, int limit, int count,
                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<json> out;
  for (int i = 0; i < count; ++i)
    out.push_back(
        {{"v", 1},
         {"type", "decide"},
         {"id", "r" + std::to_string(i)},
         {"customer", prefix + std::to_string(1 + rng() % static_cast<uint64_t>(customers))},
         {"channel", "web"},
         {"placement", placement},
         {"limit", limit}});
  return out;
}

std::vector<std::string> Dump(const std::vector<json>& v) {
  std::vector<std::string> out;
  for (const auto& j : v) out.push_back(j.dump());
  return out;
}

// --- The run ------------------------------------------------------------------

class Suite {
 public:
  explicit Suite(const BenchSuiteArgs& a) : a_(a) {
    quick_ = a.quick;
    customers_ = a.customers > 0 ? a.customers : (quick_ ? 2000 : 10000);
    items_ = a.items > 0 ? a.items : 10000;
    cold_ = a.cold_customers > 0 ? a.cold_customers : (quick_ ? 100000 : 1000000);
    n_ = a.requests > 0 ? a.requests : (quick_ ? 1000 : 5000);
    days_ = quick_ ? 30 : 60;
  }
  json Run();

 private:
  TailordOptions Tailord(const BenchWorld& w, bool after_training, bool baseline = false) const {
    TailordOptions o;
    o.who = "bench";
    o.bin = baseline ? a_.baseline_tailord : a_.tailord;
    o.plugin_dir = baseline ? a_.baseline_plugin_dir : a_.plugin_dir;
    o.config = w.config;
    o.store = w.store;
    o.work_dir = w.dir;
    o.ready_after_training = after_training;
    o.start_timeout_s = 1800;
    return o;
  }
  bool Want(const std::string& scenario) const {
    return a_.only.empty() || std::find(a_.only.begin(), a_.only.end(), scenario) != a_.only.end();
  }
  json Start(const BenchWorld& w);
  json baseline_events_;  // the events scenario against the baseline tailord
  json Latency(const std::string& name, TailordProcess& t, const std::string& placement,
               int candidates, int limit, const std::string& prefix, int customers);
  json Clients(TailordProcess& t, int customers);
  json Events(TailordProcess& t, int customers, double idle_p99);
  json Cold(const BenchWorld& w, json* scaling);
  json Scaling(const BenchWorld& w, TailordProcess& t, const std::string& prefix);
  json Baseline(const BenchWorld& w);
  double FirstDecideSeconds(TailordProcess& t, const BenchWorld& w, int64_t start_ns);

  const BenchSuiteArgs& a_;
  bool quick_ = false;
  int customers_ = 0, items_ = 0, cold_ = 0, n_ = 0, days_ = 0;
  std::string root_;
  EchoServer echo_;
};

// Seconds from start_ns until a decide on the offers placement is answered
// without an error.
double Suite::FirstDecideSeconds(TailordProcess& t, const BenchWorld& w, int64_t start_ns) {
  Client c(t.requests(), 10000);
  const std::string body =
      DecideRequests("c", w.customers, kOffersPlacement, 3, 1, 1).front().dump();
  for (int i = 0; i < 10000; ++i) {
    auto r = c.Call(body);
    if (r && r->find("\"offers\"") != std::string::npos &&
        r->find("\"error\"") == std::string::npos)
      return static_cast<double>(mono_ns() - start_ns) / 1e9;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Fail("bench: tailord answered no decide:\n" + t.LogTail());
}

// Seconds from start_ns until health names no plugin warming.
double SecondsUntilWarm(TailordProcess& t, int64_t start_ns) {
  Wire wire(t.requests());
  for (;;) {
    wire.Send({{"v", 1}, {"type", "health"}, {"id", "h"}});
    auto h = wire.Recv(10000);
    bool warming = false;
    if (h && h->contains("health"))
      for (const auto& [name, p] : (*h)["health"]["plugins"].items())
        warming |= p.value("status", "") == "warming";
    if (!warming) return static_cast<double>(mono_ns() - start_ns) / 1e9;
    if (!t.Alive()) Fail("bench: tailord exited while warming:\n" + t.LogTail());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Start-up without registered models (the plugins train in the background
// while tailord serves), then registers models with `tailor train` and starts
// again with them.
json Suite::Start(const BenchWorld& w) {
  json out = json::object();
  if (Want("start")) {
    const int64_t t0 = mono_ns();
    TailordProcess t(Tailord(w, false));
    out["without_models_s"] = FirstDecideSeconds(t, w, t0);
    out["background_training_s"] = SecondsUntilWarm(t, t0);
  }
  YAML::Node cfg = YAML::LoadFile(w.config);
  const int64_t t_train = mono_ns();
  for (const auto& p : cfg["plugins"]) {
    if (!p["train_in_background"] || !p["train_in_background"].as<bool>()) continue;
    const std::string name = p["name"].Scalar();
    std::fprintf(stderr, "bench: tailor train %s\n", name.c_str());
    std::string cmd = "'" + SelfDir() + "/tailor' train " + name + " --config '" + w.config +
                      "' --store '" + w.store + "'";
    if (!a_.plugin_dir.empty()) cmd += " --plugin-dir '" + a_.plugin_dir + "'";
    cmd += " > '" + w.dir + "/train-" + name + ".log' 2>&1";
    if (std::system(cmd.c_str()) != 0)
      Fail("bench: `" + cmd + "` failed; see " + w.dir + "/train-" + name + ".log");
  }
  out["train_s"] = static_cast<double>(mono_ns() - t_train) / 1e9;
  return out;
}

json Suite::Latency(const std::string& name, TailordProcess& t, const std::string& placement,
                    int candidates, int limit, const std::string& prefix, int customers) {
  // The same 1,024 customers in every warm scenario, each asked once before
  // measuring: profile and journey state are cached (first touches are the
  // cold scenario's).
  const auto bodies = Dump(DecideRequests(prefix, customers, placement, limit, kWarmCustomers, 7));
  int failures = 0;
  Sequential(t.requests(), bodies, static_cast<int>(bodies.size()), name + " warm-up", &failures);
  Client c(t.requests(), 10000);
  auto sample = c.Call(bodies.front());
  echo_.set_reply_bytes(sample ? sample->size() : 0);
  Latencies echo = Sequential(echo_.endpoint(), bodies, n_, name + " echo", nullptr);
  const double cpu0 = CpuSeconds(t.pid());
  Latencies dec = Sequential(t.requests(), bodies, n_, name + " decide", &failures);
  const double cpu = CpuSeconds(t.pid()) - cpu0;
  if (failures)
    std::fprintf(stderr, "bench: %s: %d decide requests failed\n", name.c_str(), failures);
  json out = ScenarioJson(name, candidates, 1, dec, echo, cpu * 1e6 / std::max(1, n_), t.pid());
  out["reply_bytes"] = sample ? sample->size() : 0;
  out["failures"] = failures;
  return out;
}

json Suite::Clients(TailordProcess& t, int customers) {
  const auto reqs = DecideRequests("c", customers, kOffersPlacement, 3, kWarmCustomers, 7);
  const int n = n_ * 4;
  Latencies echo = Pipelined(echo_.endpoint(), reqs, 8, 4, n, "clients-8 echo");
  const double cpu0 = CpuSeconds(t.pid());
  Latencies dec = Pipelined(t.requests(), reqs, 8, 4, n, "clients-8 decide");
  const double cpu = CpuSeconds(t.pid()) - cpu0;
  json out = ScenarioJson("clients-8", kBenchOffers, 8, dec, echo,
                          cpu * 1e6 / std::max<size_t>(1, dec.us.size()), t.pid());
  out["failures"] = n - static_cast<int>(dec.us.size());
  return out;
}

json EventJson(std::mt19937_64& rng, int customers, int items, int64_t now) {
  return {{"customer", "c" + std::to_string(1 + rng() % static_cast<uint64_t>(customers))},
          {"event", "view"},
          {"item", "i" + std::to_string(1 + rng() % static_cast<uint64_t>(items))},
          {"ts", now}};
}

int64_t StoredViews(Wire& wire) {
  wire.Send({{"v", 1}, {"type", "stats"}, {"id", "s"}});
  auto r = wire.Recv(10000);
  if (!r || !r->contains("stats")) return -1;
  return (*r)["stats"]["events"].value("view", int64_t{0});
}

// Sends every batch on one DEALER, kInFlight unanswered at a time, and
// returns the seconds until the last is acknowledged.
double SendAcked(TailordProcess& t, const std::vector<std::string>& batches, int batch_size,
                 const std::string& label, size_t* failed) {
  constexpr size_t kInFlight = 4;
  Wire wire(t.requests());
  Progress bar(label);
  const int64_t t0 = mono_ns();
  size_t next = 0, acked = 0;
  while (next < std::min(kInFlight, batches.size())) wire.SendRaw(batches[next++]);
  while (acked < batches.size()) {
    auto r = wire.RecvRaw(30000);
    if (!r) Fail("bench: tailord did not acknowledge an events batch:\n" + t.LogTail());
    if (r->find("\"stored\"") == std::string::npos) ++*failed;
    ++acked;
    if (acked % 50 == 0)
      bar.Update(static_cast<int64_t>(acked) * batch_size,
                 static_cast<int64_t>(batches.size()) * batch_size, "events");
    if (next < batches.size()) wire.SendRaw(batches[next++]);
  }
  bar.Done("");
  return static_cast<double>(mono_ns() - t0) / 1e9;
}

// Acknowledged batches on the request socket, alone (how many per second
// tailord stores durably) and again with a decide client measuring its p99
// meanwhile; then fire-and-forget events on the PULL socket, timed until
// tailord reports them all stored.
json Suite::Events(TailordProcess& t, int customers, double idle_p99) {
  const int total = quick_ ? 50000 : 200000;
  constexpr int kBatch = 200;
  std::mt19937_64 rng(5);
  const int64_t now = now_ms();
  auto make_batches = [&](const std::string& tag) {
    std::vector<std::string> batches;
    for (int b = 0; b < total / kBatch; ++b) {
      json events = json::array();
      for (int i = 0; i < kBatch; ++i) events.push_back(EventJson(rng, customers, items_, now));
      batches.push_back(json({{"v", 1},
                              {"type", "events"},
                              {"id", "~" + tag + std::to_string(b)},
                              {"events", events}})
                            .dump());
    }
    return batches;
  };
  size_t failed = 0;
  const double acked_s = SendAcked(t, make_batches("a"), kBatch, "events acked", &failed);

  const auto mixed = make_batches("b");
  std::atomic<bool> ingesting{true};
  Latencies during;
  std::thread decider([&] {
    const auto bodies =
        Dump(DecideRequests("c", customers, kOffersPlacement, 3, kWarmCustomers, 7));
    Client c(t.requests(), 10000);
    for (size_t i = 0; ingesting.load(); ++i) {
      const int64_t t0 = mono_ns();
      (void)c.Call(bodies[i % bodies.size()]);
      during.us.push_back(static_cast<double>(mono_ns() - t0) / 1000.0);
    }
  });
  // Stopped and joined however this scope ends: Fail throws, and a joinable
  // thread destroyed by the unwinding would abort the whole program.
  struct StopDecider {
    std::atomic<bool>* ingesting;
    std::thread* decider;
    ~StopDecider() {
      ingesting->store(false);
      if (decider->joinable()) decider->join();
    }
  } stop_decider{&ingesting, &decider};
  const double mixed_s = SendAcked(t, mixed, kBatch, "events acked + decide", &failed);
  ingesting = false;
  decider.join();
  if (failed) std::fprintf(stderr, "bench: %zu events batches failed\n", failed);

  // Fire and forget: PUSH to tailord's PULL socket.
  Wire stats(t.requests());
  const int64_t before = StoredViews(stats);
  zmq::context_t ctx(1);
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 5000);
  push.connect(t.events());
  std::vector<std::string> singles;
  for (int i = 0; i < total; ++i) {
    json e = EventJson(rng, customers, items_, now);
    e["v"] = 1;
    e["type"] = "event";
    singles.push_back(e.dump());
  }
  Progress pull_bar("events pull");
  const int64_t t1 = mono_ns();
  for (const auto& s : singles) push.send(zmq::buffer(s), zmq::send_flags::none);
  int64_t stored = 0;
  for (int spins = 0; spins < 60000; ++spins) {
    stored = StoredViews(stats) - before;
    pull_bar.Update(stored, total, "events");
    if (stored >= total) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double pull_s = static_cast<double>(mono_ns() - t1) / 1e9;
  pull_bar.Done("");
  return {{"events", total},
          {"batch", kBatch},
          {"acked_per_s", total / acked_s},
          {"acked_per_s_while_deciding", total / mixed_s},
          {"acked_failed_batches", failed},
          {"pull_per_s", static_cast<double>(stored) / pull_s},
          {"pull_stored", stored},
          {"decide_p50_while_ingesting_us", during.Quantile(0.5)},
          {"decide_p99_while_ingesting_us", during.Quantile(0.99)},
          {"decide_p99_idle_us", idle_p99},
          {"decides_while_ingesting", during.us.size()}};
}

json Suite::Scaling(const BenchWorld& w, TailordProcess& t, const std::string& prefix) {
  json rows = json::array();
  const int n_customers = prefix == "k" ? cold_ : w.customers;
  for (auto [placement, candidates] : std::vector<std::pair<std::string, int>>{
           {kOffersPlacement, kBenchOffers}, {"bench_items_1000", std::min(1000, w.items)}}) {
    json r = Latency("scaling " + placement, t, placement, candidates, 3, prefix, n_customers);
    rows.push_back({{"customers", prefix == "k" ? w.customers + cold_ : w.customers},
                    {"items", w.items},
                    {"placement", placement},
                    {"candidates", candidates},
                    {"p50_us", r["p50_us"]},
                    {"p99_us", r["p99_us"]},
                    {"echo_p50_us", r["echo_p50_us"]}});
  }
  return rows;
}

// First-touch customers on a store with cold_ more customers: every request
// misses the profile cache. Memory is read after the cache filled and again
// after as many customers more (bounded: it must not keep growing).
json Suite::Cold(const BenchWorld& w, json* scaling) {
  BenchWorld cw = w;
  cw.dir = (fs::path(root_) / "cold").string();
  fs::create_directories(cw.dir);
  cw.store = (fs::path(cw.dir) / "bench.db").string();
  {
    Store::Options so;
    so.path = w.store;
    so.start_writer = false;
    std::string err;
    auto src = Store::Open(so, &err);
    if (!src) Fail("bench: " + err);
    if (Status st = src->BackupTo(cw.store); !st.ok()) Fail("bench: " + st.message());
  }
  AddColdCustomers(cw.store, cold_, w.items);
  TailordProcess t(Tailord(cw, true));
  // Warm: a few hundred customers, asked again and again.
  json warm = Latency("cold: warm", t, kOffersPlacement, kBenchOffers, 3, "c", 200);
  const double rss0 = RssMb(t.pid());
  // Cold: each customer once, in a shuffled order.
  YAML::Node cfg = YAML::LoadFile(cw.config);
  const int cache = cfg["store"]["profile_cache"] ? cfg["store"]["profile_cache"].as<int>() : 10000;
  const int n = std::min(cold_, 2 * cache);
  std::vector<int> ids(static_cast<size_t>(cold_));
  for (int i = 0; i < cold_; ++i) ids[static_cast<size_t>(i)] = i + 1;
  std::shuffle(ids.begin(), ids.end(), std::mt19937_64(3));
  std::vector<std::string> bodies;
  for (int i = 0; i < n; ++i)
    bodies.push_back(json({{"v", 1},
                           {"type", "decide"},
                           {"id", "k" + std::to_string(i)},
                           {"customer", "k" + std::to_string(ids[static_cast<size_t>(i)])},
                           {"channel", "web"},
                           {"placement", kOffersPlacement},
                           {"limit", 3}})
                         .dump());
  const int half = std::min(n, cache);
  std::vector<std::string> first(bodies.begin(), bodies.begin() + half);
  std::vector<std::string> second(bodies.begin() + half, bodies.end());
  int failures = 0;
  Latencies cold = Sequential(t.requests(), first, half, "cold: first touch", &failures);
  const double rss_full = RssMb(t.pid());
  double rss_end = rss_full;
  if (!second.empty()) {
    Latencies more = Sequential(t.requests(), second, static_cast<int>(second.size()),
                                "cold: past the cache", &failures);
    cold.us.insert(cold.us.end(), more.us.begin(), more.us.end());
    rss_end = RssMb(t.pid());
  }
  for (const json& r : Scaling(cw, t, "k")) scaling->push_back(r);
  return {{"name", "cold"},
          {"candidates", kBenchOffers},
          {"clients", 1},
          {"customers", w.customers + cold_},
          {"p50_us", cold.Quantile(0.5)},
          {"p90_us", cold.Quantile(0.9)},
          {"p99_us", cold.Quantile(0.99)},
          {"p999_us", cold.Quantile(0.999)},
          {"throughput_rps", cold.Rate()},
          {"warm_p50_us", warm["p50_us"]},
          {"warm_p99_us", warm["p99_us"]},
          {"echo_p50_us", warm["echo_p50_us"]},
          {"echo_p99_us", warm["echo_p99_us"]},
          {"echo_throughput_rps", warm["echo_throughput_rps"]},
          {"cpu_us_per_decision", warm["cpu_us_per_decision"]},
          {"profile_cache", cache},
          {"first_touches", cold.us.size()},
          {"rss_mb", rss_end},
          {"rss_mb_before", rss0},
          {"rss_mb_cache_full", rss_full},
          {"kb_per_cached_profile", (rss_full - rss0) * 1024.0 / std::max(1, half)},
          {"failures", failures}};
}

// The single-client scenarios and clients-8 against the baseline tailord, on
// the same world (its registered models) right after the current one.
json Suite::Baseline(const BenchWorld& w) {
  std::fprintf(stderr, "bench: baseline %s\n", a_.baseline_tailord.c_str());
  TailordProcess t(Tailord(w, true, true));
  json out = json::array();
  out.push_back(Latency("offers-100", t, kOffersPlacement, kBenchOffers, 3, "c", w.customers));
  out.push_back(
      Latency("items-1000", t, "bench_items_1000", std::min(1000, w.items), 10, "c", w.customers));
  out.push_back(Latency("items-10000", t, "bench_items_10000", std::min(10000, w.items), 10, "c",
                        w.customers));
  out.push_back(Clients(t, w.customers));
  if (Want("events")) baseline_events_ = Events(t, w.customers, out[0]["p99_us"].get<double>());
  return out;
}

json Suite::Run() {
  char tmpl[] = "/tmp/tailor-bench-XXXXXX";
  root_ = a_.work_dir.empty() ? std::string(mkdtemp(tmpl) ? tmpl : "") : a_.work_dir;
  if (root_.empty()) Fail("bench: cannot create a temporary directory");
  root_ = fs::absolute(root_).string();
  fs::create_directories(root_);
  std::string config = a_.config;
  if (fs::is_directory(config)) config = (fs::path(config) / "tailor.yaml").string();
  config = fs::absolute(config).string();
  std::fprintf(stderr, "bench: worlds in %s\n", root_.c_str());

  json out = {{"quick", quick_},
              {"world", {{"customers", customers_}, {"items", items_}, {"days", days_}}},
              {"cold_customers", cold_},
              {"requests", n_},
              {"scenarios", json::array()},
              {"scaling", json::array()}};
  BenchWorld main = MakeWorld(root_, "main", customers_, items_, days_, config);
  out["start"] = Start(main);
  {
    // With registered models: serving at once, the models loading aside.
    const int64_t t0 = mono_ns();
    TailordProcess t(Tailord(main, false));
    const double first_s = FirstDecideSeconds(t, main, t0);
    const double loaded_s = SecondsUntilWarm(t, t0);
    if (Want("start")) {
      out["start"]["with_models_s"] = first_s;
      out["start"]["models_loaded_s"] = loaded_s;
    }
    auto& sc = out["scenarios"];
    // events compares its decide p99 with offers-100's.
    if (Want("offers-100") || Want("events"))
      sc.push_back(Latency("offers-100", t, kOffersPlacement, kBenchOffers, 3, "c", customers_));
    if (Want("items-1000"))
      sc.push_back(Latency("items-1000", t, "bench_items_1000", std::min(1000, items_), 10, "c",
                           customers_));
    if (Want("items-10000"))
      sc.push_back(Latency("items-10000", t, "bench_items_10000", std::min(10000, items_), 10, "c",
                           customers_));
    if (Want("clients-8")) sc.push_back(Clients(t, customers_));
    if (Want("events")) out["events"] = Events(t, customers_, sc[0]["p99_us"].get<double>());
    if (Want("scaling"))
      for (const json& r : Scaling(main, t, "c")) out["scaling"].push_back(r);
  }
  if (!a_.baseline_tailord.empty() && Want("baseline")) {
    out["baseline"] = Baseline(main);
    if (!baseline_events_.is_null()) out["baseline_events"] = baseline_events_;
  }
  if (Want("scaling")) {
    // A small world: the same placements over 1/10 of the customers and items.
    BenchWorld small = MakeWorld(root_, "small", std::max(100, customers_ / 10),
                                 std::max(100, items_ / 10), days_, config);
    TailordProcess t(Tailord(small, true));
    json rows = Scaling(small, t, "c");
    out["scaling"].insert(out["scaling"].begin(), rows.begin(), rows.end());
  }
  if (Want("cold")) out["scenarios"].push_back(Cold(main, &out["scaling"]));
  if (a_.work_dir.empty()) fs::remove_all(root_);
  return out;
}

// --- Output -------------------------------------------------------------------

double Num(const json& j, const char* key) { return j.contains(key) ? j[key].get<double>() : 0; }

void PrintTable(const json& r) {
  std::printf("\n%-12s %6s %4s %9s %9s %9s %9s %10s %9s %9s %10s %8s %7s\n", "scenario", "cands",
              "cli", "p50 us", "p90 us", "p99 us", "p99.9 us", "per sec", "echo p50", "echo p99",
              "echo/s", "cpu us", "rss MB");
  for (const json& s : r["scenarios"])
    std::printf("%-12s %6d %4d %9.0f %9.0f %9.0f %9.0f %10.0f %9.0f %9.0f %10.0f %8.0f %7.0f\n",
                s["name"].get<std::string>().c_str(), s["candidates"].get<int>(),
                s["clients"].get<int>(), Num(s, "p50_us"), Num(s, "p90_us"), Num(s, "p99_us"),
                Num(s, "p999_us"), Num(s, "throughput_rps"), Num(s, "echo_p50_us"),
                Num(s, "echo_p99_us"), Num(s, "echo_throughput_rps"), Num(s, "cpu_us_per_decision"),
                Num(s, "rss_mb"));
  if (r.contains("baseline")) {
    std::printf("\n%-12s %14s %14s %14s %14s\n", "before/after", "p50 us before", "p50 us after",
                "p99 us before", "p99 us after");
    for (const json& b : r["baseline"])
      for (const json& s : r["scenarios"])
        if (s["name"] == b["name"])
          std::printf("%-12s %14.0f %14.0f %14.0f %14.0f   (%.0f -> %.0f per s)\n",
                      s["name"].get<std::string>().c_str(), Num(b, "p50_us"), Num(s, "p50_us"),
                      Num(b, "p99_us"), Num(s, "p99_us"), Num(b, "throughput_rps"),
                      Num(s, "throughput_rps"));
  }
  if (r.contains("events")) {
    const json& e = r["events"];
    std::printf(
        "\nevents: %.0f/s acknowledged durable (batches of %d, 4 in flight), %.0f/s "
        "fire-and-forget; with a decide client meanwhile %.0f/s acknowledged and decide p99 %.0f "
        "us vs %.0f us idle\n",
        Num(e, "acked_per_s"), e["batch"].get<int>(), Num(e, "pull_per_s"),
        Num(e, "acked_per_s_while_deciding"), Num(e, "decide_p99_while_ingesting_us"),
        Num(e, "decide_p99_idle_us"));
  }
  if (r.contains("baseline_events") && r.contains("events")) {
    const json& b = r["baseline_events"];
    const json& e = r["events"];
    std::printf(
        "events before/after: acknowledged %.0f -> %.0f/s, fire-and-forget %.0f -> %.0f/s, decide "
        "p99 while ingesting %.0f -> %.0f us\n",
        Num(b, "acked_per_s"), Num(e, "acked_per_s"), Num(b, "pull_per_s"), Num(e, "pull_per_s"),
        Num(b, "decide_p99_while_ingesting_us"), Num(e, "decide_p99_while_ingesting_us"));
  }
  const json& s = r["start"];
  if (s.contains("with_models_s"))
    std::printf(
        "start: serving %.2f s after start with registered models, %.2f s without (%.0f s "
        "of background training)\n",
        Num(s, "with_models_s"), Num(s, "without_models_s"), Num(s, "background_training_s"));
  std::printf("\n%-10s %-8s %-18s %6s %9s %9s\n", "customers", "items", "placement", "cands",
              "p50 us", "p99 us");
  for (const json& x : r["scaling"])
    std::printf("%-10d %-8d %-18s %6d %9.0f %9.0f\n", x["customers"].get<int>(),
                x["items"].get<int>(), x["placement"].get<std::string>().c_str(),
                x["candidates"].get<int>(), Num(x, "p50_us"), Num(x, "p99_us"));
}

// Ratios to the echo measured in the same run, against the issue's targets.
json Targets(const json& r) {
  json t = json::array();
  auto find = [&](const std::string& name) -> const json& {
    for (const json& s : r["scenarios"])
      if (s["name"] == name) return s;
    static const json kEmpty = json::object();
    return kEmpty;
  };
  // A target whose scenario did not run (--only) is left out.
  auto add = [&](const json& from, const std::string& what, double value, double target,
                 bool at_most) {
    if (from.empty()) return;
    t.push_back({{"target", what},
                 {"value", value},
                 {"limit", target},
                 {"met", at_most ? value <= target : value >= target}});
  };
  const json& o = find("offers-100");
  const json& i1 = find("items-1000");
  const json& i10 = find("items-10000");
  const json& c8 = find("clients-8");
  const json& cold = find("cold");
  const json& ev = r.contains("events") ? r["events"] : json::object();
  const json& st = r.contains("start") ? r["start"] : json::object();
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0; };
  add(o, "offers-100 p50 / echo p50", ratio(Num(o, "p50_us"), Num(o, "echo_p50_us")), 1.5, true);
  add(o, "offers-100 p99 / echo p99", ratio(Num(o, "p99_us"), Num(o, "echo_p99_us")), 2.5, true);
  add(i1, "items-1000 p50 / echo p50", ratio(Num(i1, "p50_us"), Num(i1, "echo_p50_us")), 3, true);
  add(i1, "items-1000 p99 / echo p99", ratio(Num(i1, "p99_us"), Num(i1, "echo_p99_us")), 5, true);
  add(i10, "items-10000 p50 (us)", Num(i10, "p50_us"), 2000, true);
  add(c8, "clients-8 throughput / echo",
      ratio(Num(c8, "throughput_rps"), Num(c8, "echo_throughput_rps")), 0.4, false);
  add(c8, "clients-8 decisions/s", Num(c8, "throughput_rps"), 15000, false);
  add(ev, "events acked durable /s", Num(ev, "acked_per_s"), 100000, false);
  add(ev, "decide p99 ingesting / idle",
      ratio(Num(ev, "decide_p99_while_ingesting_us"), Num(ev, "decide_p99_idle_us")), 2, true);
  add(cold, "cold p99 / warm p99", ratio(Num(cold, "p99_us"), Num(cold, "warm_p99_us")), 3, true);
  add(cold, "KB RSS per cached profile", Num(cold, "kb_per_cached_profile"), 1, true);
  const json& sw = st.contains("with_models_s") ? st : json::object();
  add(sw, "start with models (s)", Num(st, "with_models_s"), 5, true);
  add(sw, "start without models (s)", Num(st, "without_models_s"), 5, true);
  std::printf("\n%-34s %12s %10s %5s\n", "target", "value", "limit", "met");
  for (const json& x : t)
    std::printf("%-34s %12.2f %10.2f %5s\n", x["target"].get<std::string>().c_str(),
                Num(x, "value"), Num(x, "limit"), x["met"].get<bool>() ? "yes" : "NO");
  return t;
}

}  // namespace

void RunBenchSuite(const BenchSuiteArgs& a) {
  Suite suite(a);
  json r = suite.Run();
  PrintTable(r);
  r["targets"] = Targets(r);
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << r.dump(2) << "\n";
    if (!f) Fail("bench: cannot write " + a.json_out);
    std::printf("wrote %s\n", a.json_out.c_str());
  }
  if (!a.plot.empty()) WriteScalingPlot(r, a.plot);
}

}  // namespace tailor::cli

namespace tailor::cli {
namespace {

// One panel of the chart: lines of (x, y) points on a log x axis.
struct Panel {
  std::string title, x_label;
  std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> lines;
};

std::string PanelSvg(const Panel& p, double x0, double y0, double w, double h) {
  double xmin = 1e18, xmax = 0, ymax = 0;
  for (const auto& [name, pts] : p.lines)
    for (auto [x, y] : pts) {
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymax = std::max(ymax, y);
    }
  if (xmax <= xmin) xmax = xmin * 10;
  ymax = ymax <= 0 ? 1 : ymax * 1.15;
  const double lx0 = std::log10(xmin), lx1 = std::log10(xmax);
  auto X = [&](double x) { return x0 + 50 + (std::log10(x) - lx0) / (lx1 - lx0) * (w - 70); };
  auto Y = [&](double y) { return y0 + h - 40 - y / ymax * (h - 70); };
  std::ostringstream s;
  char buf[256];
  s << "<text x='" << x0 + w / 2 << "' y='" << y0 + 18
    << "' text-anchor='middle' font-weight='bold'>" << p.title << "</text>";
  s << "<line x1='" << x0 + 50 << "' y1='" << Y(0) << "' x2='" << x0 + w - 20 << "' y2='" << Y(0)
    << "' stroke='#333'/><line x1='" << x0 + 50 << "' y1='" << Y(0) << "' x2='" << x0 + 50
    << "' y2='" << y0 + 30 << "' stroke='#333'/>";
  for (int i = 0; i <= 4; ++i) {
    double y = ymax * i / 4;
    std::snprintf(buf, sizeof buf,
                  "<text x='%.0f' y='%.0f' text-anchor='end' font-size='11'>%.0f</text>", x0 + 45,
                  Y(y) + 4, y);
    s << buf;
  }
  for (double x = std::pow(10, std::floor(lx0)); x <= xmax * 1.001; x *= 10)
    if (x >= xmin * 0.999) {
      std::snprintf(buf, sizeof buf,
                    "<text x='%.0f' y='%.0f' text-anchor='middle' font-size='11'>%g</text>", X(x),
                    Y(0) + 15, x);
      s << buf;
    }
  s << "<text x='" << x0 + w / 2 << "' y='" << y0 + h - 8
    << "' text-anchor='middle' font-size='12'>" << p.x_label
    << " (log scale); y: decide p50 µs</text>";
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  int k = 0;
  for (const auto& [name, pts] : p.lines) {
    const char* c = colors[k % 4];
    s << "<polyline fill='none' stroke='" << c << "' stroke-width='2' points='";
    for (auto [x, y] : pts) s << X(x) << "," << Y(y) << " ";
    s << "'/>";
    for (auto [x, y] : pts)
      s << "<circle cx='" << X(x) << "' cy='" << Y(y) << "' r='3' fill='" << c << "'/>";
    s << "<text x='" << x0 + 60 << "' y='" << y0 + 40 + 14 * k << "' font-size='12' fill='" << c
      << "'>" << name << "</text>";
    ++k;
  }
  return s.str();
}

}  // namespace

void WriteScalingPlot(const nlohmann::json& r, const std::string& path) {
  Panel by_candidates{"Cost by candidates", "candidates", {}};
  std::vector<std::pair<double, double>> dec, echo;
  for (const json& s : r["scenarios"])
    if (s["clients"] == 1 && s["name"] != "cold") {
      dec.emplace_back(s["candidates"].get<double>(), s["p50_us"].get<double>());
      echo.emplace_back(s["candidates"].get<double>(), s["echo_p50_us"].get<double>());
    }
  std::sort(dec.begin(), dec.end());
  std::sort(echo.begin(), echo.end());
  by_candidates.lines = {{"decide", dec}, {"bare ZeroMQ echo", echo}};
  Panel by_customers{"Cost by customers in the store", "customers", {}};
  std::map<std::string, std::vector<std::pair<double, double>>> lines;
  for (const json& x : r["scaling"])
    lines[x["placement"].get<std::string>() + " (" + std::to_string(x["candidates"].get<int>()) +
          " candidates)"]
        .emplace_back(x["customers"].get<double>(), x["p50_us"].get<double>());
  for (auto& [name, pts] : lines) {
    std::sort(pts.begin(), pts.end());
    by_customers.lines.emplace_back(name, pts);
  }
  std::ofstream f(path);
  f << "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='340' "
       "font-family='sans-serif'><rect width='900' height='340' fill='white'/>"
    << PanelSvg(by_candidates, 0, 0, 450, 340) << PanelSvg(by_customers, 450, 0, 450, 340)
    << "</svg>\n";
  if (!f) Fail("bench: cannot write " + path);
  std::printf("wrote %s\n", path.c_str());
}

}  // namespace tailor::cli
