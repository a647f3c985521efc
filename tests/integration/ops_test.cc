// What an operator and a plugin author see of Tailor as installed: versions,
// `cmake --install` to a prefix, the installed tailord serving the installed
// example config, and a plugin built outside the tree against the installed
// SDK.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "plugin_host/host.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"
#include "tailor/plugin.h"
#include "tailor/version.h"

namespace tailor::testing {
namespace {

TEST(Ops, BothProgramsSayTheirVersionAndThePluginAbi) {
  TempDir dir;
  const std::string abi =
      std::to_string(TAILOR_PLUGIN_ABI_MAJOR) + "." + std::to_string(TAILOR_PLUGIN_ABI_MINOR);
  for (const std::string& bin : {TailordBin(), TailorBin()}) {
    const std::string log = dir.file("version.log");
    ASSERT_EQ(Shell(bin + " --version", log), 0) << ReadFile(log);
    const std::string name = bin.substr(bin.rfind('/') + 1);
    EXPECT_EQ(ReadFile(log), name + " " + TAILOR_VERSION + " (plugin ABI " + abi + ")\n");
  }
}

// `tailor health|stats|reload|explain|profile` against a real tailord: pretty
// text, --json, and exit codes a script can branch on.
TEST(Ops, OperatorCommandsPrintAndSayWhatHappenedInTheirExitCode) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord d({"", store, {}});
  ASSERT_TRUE(d.running());
  const std::string log = dir.file("out.log");
  auto tailor = [&](const std::string& args) {
    return Shell(TailorBin() + " " + args + " --endpoint " + d.requests(), log);
  };
  EXPECT_EQ(tailor("health"), 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("status: ok"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(tailor("health --json"), 0) << ReadFile(log);
  nlohmann::json h = nlohmann::json::parse(ReadFile(log), nullptr, false);
  EXPECT_EQ(h["health"]["status"], "ok") << ReadFile(log);
  EXPECT_EQ(tailor("stats"), 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("requests"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(tailor("reload"), 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("reloaded: true"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(tailor("profile c1"), 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("customer: c1"), std::string::npos) << ReadFile(log);

  Client c(d.requests());
  nlohmann::json r = c.Call({{"v", 1},
                             {"type", "decide"},
                             {"id", "d"},
                             {"customer", "c1"},
                             {"channel", "web"},
                             {"placement", "home"}});
  ASSERT_TRUE(r.contains("decision")) << r.dump();
  const std::string decision = r["decision"];
  // Decisions are logged behind the reply: explain finds it once written.
  int rc = 1;
  for (int i = 0; i < 100 && rc != 0; ++i) {
    rc = tailor("explain " + decision);
    if (rc != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(rc, 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find(decision), std::string::npos) << ReadFile(log);

  EXPECT_EQ(tailor("explain no-such-decision"), 1) << "an error reply exits 1";
  EXPECT_NE(ReadFile(log).find("not_found"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(Shell(TailorBin() + " health --endpoint tcp://127.0.0.1:1 --timeout-ms 200", log), 3)
      << "no reply exits 3: " << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("no reply"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(d.Terminate(), 0);
}

// GET /metrics, /healthz and /readyz from a real tailord over HTTP; the
// metrics parsed by the Prometheus project's own parser.
TEST(Ops, MetricsHealthzAndReadyzAreScrapedOverHttp) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord d({"", store, {"--http", "127.0.0.1:0"}});
  ASSERT_TRUE(d.running());
  ASSERT_FALSE(d.http().empty()) << "the ready file names the HTTP address";
  Client c(d.requests());
  ASSERT_FALSE(c.Call({{"v", 1},
                       {"type", "decide"},
                       {"id", "d"},
                       {"customer", "c1"},
                       {"channel", "web"},
                       {"placement", "home"}})
                   .contains("error"));
  ASSERT_FALSE(c.Call({{"v", 1},
                       {"type", "event"},
                       {"id", "e"},
                       {"customer", "c1"},
                       {"event", "view"},
                       {"item", "i1"}})
                   .contains("error"));

  const size_t colon = d.http().rfind(':');
  httplib::Client http(d.http().substr(0, colon), std::stoi(d.http().substr(colon + 1)));
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics) << "no HTTP answer";
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->get_header_value("Content-Type").find("version=0.0.4"), std::string::npos);
  const std::string& body = metrics->body;
  for (const char* sample :
       {"tailor_requests_total{type=\"decide\"} 1", "tailor_events_total{type=\"view\"} 1",
        "tailor_request_duration_seconds_count{type=\"decide\"} 1",
        "tailor_decide_stage_duration_seconds_bucket{stage=\"score\",le=\"+Inf\"} 1",
        "tailor_plugin_calls_total{plugin=\"popularity\",call=\"score\"} 1",
        "tailor_store_pending_writes ", "tailor_healthy 1"})
    EXPECT_NE(body.find(sample), std::string::npos) << sample << "\n" << body;
  std::ofstream(dir.file("metrics.txt")) << body;
  const std::string log = dir.file("parse.log");
  ASSERT_EQ(Shell("/usr/bin/python3 " + std::string(TAILOR_SOURCE_DIR) +
                      "/tests/tools/parse_metrics.py " + dir.file("metrics.txt"),
                  log),
            0)
      << ReadFile(log);
  const std::string families = ReadFile(log);
  for (const char* f : {"tailor_requests counter", "tailor_request_duration_seconds histogram",
                        "tailor_decide_stage_duration_seconds histogram",
                        "tailor_rule_calls counter", "tailor_store_pending_writes gauge"})
    EXPECT_NE(families.find(f), std::string::npos) << f << "\n" << families;

  auto healthz = http.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  EXPECT_EQ(healthz->body, "ok\n");
  auto readyz = http.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200) << readyz->body;
  EXPECT_EQ(http.Post("/metrics", "x", "text/plain")->status, 404) << "read-only";
  EXPECT_EQ(d.Terminate(), 0);

  // A plugin that failed to load: alive, but not ready, and it says why.
  const std::string config =
      SmallConfig(dir.path(), ShippedPluginYaml("popularity") + FixturePluginYaml("create_fails"),
                  "service:\n  http: 127.0.0.1:0\n");
  Tailord::Options o;
  o.config = config;
  o.store = store;
  Tailord failing(o);
  ASSERT_TRUE(failing.running());
  const size_t at = failing.http().rfind(':');
  httplib::Client http2(failing.http().substr(0, at), std::stoi(failing.http().substr(at + 1)));
  EXPECT_EQ(http2.Get("/healthz")->status, 200);
  auto not_ready = http2.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_NE(not_ready->body.find("plugin create_fails failed"), std::string::npos)
      << not_ready->body;
  EXPECT_NE(http2.Get("/metrics")->body.find("tailor_healthy 0"), std::string::npos);
  EXPECT_EQ(failing.Terminate(), 0);

  // A bad address is a config error at its line.
  const std::string bad =
      SmallConfig(dir.file(""), ShippedPluginYaml("popularity"), "service:\n  http: nonsense\n");
  EXPECT_NE(Shell(TailordBin() + " --config " + bad + " --store " + dir.file("x.db"), log), 0);
  EXPECT_NE(ReadFile(log).find("service.http: expected host:port"), std::string::npos)
      << ReadFile(log);
}

// tailord --log-format json: every line of a real run is a JSON object, and
// a plugin's failure during a decide names the request it served.
TEST(Ops, JsonLogLinesParseAndNameTheRequest) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord::Options o;
  o.config =
      SmallConfig(dir.path(), ShippedPluginYaml("popularity") + FixturePluginYaml("score_error"));
  o.store = store;
  o.extra_args = {"--log-format", "json"};
  Tailord d(o);
  ASSERT_TRUE(d.running());
  Client c(d.requests());
  ASSERT_FALSE(c.Call({{"v", 1},
                       {"type", "decide"},
                       {"id", "trace-me"},
                       {"customer", "c1"},
                       {"channel", "web"},
                       {"placement", "home"}})
                   .contains("error"));
  ASSERT_EQ(d.Terminate(), 0);
  std::istringstream log(d.Log());
  std::string line;
  int lines = 0, traced = 0;
  while (std::getline(log, line)) {
    ++lines;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(j.is_object()) << "not JSON: " << line;
    for (const char* k : {"ts", "level", "component", "msg"}) EXPECT_TRUE(j.contains(k)) << line;
    if (j["component"] == "plugin:score_error" && j.value("request", "") == "trace-me") ++traced;
  }
  EXPECT_GT(lines, 3);
  EXPECT_EQ(traced, 1) << d.Log();
}

// Every message type, valid and not, sent to a real tailord (as admin, on
// loopback); docs/schema/ must describe each request and reply, and refuse
// what tailord refuses (tests/tools/check_schemas.py, python3-jsonschema).
TEST(Ops, RealRequestsAndRepliesMatchThePublishedSchemas) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord d({"", store, {}});
  ASSERT_TRUE(d.running());
  Client c(d.requests());
  std::ofstream pairs(dir.file("pairs.jsonl"));
  auto call = [&](nlohmann::json request) {
    nlohmann::json reply = c.Call(request);
    pairs << nlohmann::json{{"request", request}, {"reply", reply}}.dump() << "\n";
    return reply;
  };
  using J = nlohmann::json;
  J decided = call({{"v", 1},
                    {"type", "decide"},
                    {"id", "d1"},
                    {"customer", "c1"},
                    {"channel", "web"},
                    {"placement", "home"},
                    {"limit", 3},
                    {"context", {{"device", "mobile"}}},
                    {"exclude", J::array({"o9"})}});
  ASSERT_TRUE(decided.contains("decision")) << decided.dump();
  call({{"v", 1}, {"type", "decide"}, {"channel", "web"}, {"placement", "home"}});  // anonymous
  call({{"v", 1},
        {"type", "event"},
        {"id", "e1"},
        {"customer", "c1"},
        {"event", "offer_click"},
        {"offer", decided["offers"][0].value("offer", "o1")},
        {"decision", decided["decision"]}});
  call({{"v", 1},
        {"type", "event"},
        {"customer", "c1"},
        {"event", "chat"},
        {"text", "hi"},
        {"ts", "2026-12-01T10:00:00Z"}});
  call({{"v", 1},
        {"type", "events"},
        {"events",
         J::array({{{"customer", "c2"}, {"event", "view"}, {"item", "i1"}, {"value", 3.5}}})}});
  call({{"v", 1}, {"type", "profile.get"}, {"customer", "c1"}});
  call({{"v", 1}, {"type", "health"}});
  call({{"v", 1}, {"type", "stats"}});
  for (int i = 0; i < 100; ++i) {  // decisions are logged behind the reply
    J r = call({{"v", 1}, {"type", "explain"}, {"decision", decided["decision"]}});
    if (!r.contains("error")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  call({{"v", 1}, {"type", "rules.reload"}});
  call({{"v", 1}, {"type", "outbound.pending"}, {"limit", 10}});
  call({{"v", 1}, {"type", "outbound.ack"}, {"ids", J::array({1, 2})}});
  call({{"v", 1}, {"type", "profile.delete"}, {"customer", "c3"}});
  // Refused by tailord: the schema must refuse each too.
  call(
      {{"v", 1}, {"type", "decide"}, {"channel", "web"}, {"placement", "home"}, {"placment", "x"}});
  call({{"v", 1}, {"type", "decide"}, {"channel", "web"}});
  call({{"v", 1}, {"type", "decide"}, {"channel", "web"}, {"placement", "home"}, {"limit", 0}});
  call({{"v", 1}, {"type", "event"}, {"customer", "c1"}, {"event", "teleport"}});
  call({{"v", 1}, {"type", "event"}, {"customer", "c1"}, {"event", "chat"}});
  call({{"v", 1}, {"type", "events"}, {"events", J::array()}});
  call({{"v", 1}, {"type", "profile.get"}, {"customer", ""}});
  call({{"v", 1}, {"type", "explain"}, {"decision", "no-such-decision"}});  // not_found
  pairs.close();
  ASSERT_EQ(d.Terminate(), 0);
  const std::string log = dir.file("schemas.log");
  EXPECT_EQ(Shell("/usr/bin/python3 " + std::string(TAILOR_SOURCE_DIR) +
                      "/tests/tools/check_schemas.py " + dir.file("pairs.jsonl"),
                  log),
            0)
      << ReadFile(log);
}

// clients/python installed into a fresh venv (offline: Debian's pyzmq and
// setuptools through --system-site-packages) and run against a real tailord.
TEST(Ops, ThePythonClientPackageInstallsIntoAVenvAndTalksToTailord) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord d({"", store, {}});
  ASSERT_TRUE(d.running());
  const std::string log = dir.file("venv.log"), venv = dir.file("venv"), src = dir.file("pkg");
  // A copy: building the package writes next to its sources.
  std::filesystem::copy(std::string(TAILOR_SOURCE_DIR) + "/clients/python", src,
                        std::filesystem::copy_options::recursive);
  ASSERT_EQ(Shell("/usr/bin/python3 -m venv --system-site-packages " + venv + " && " + venv +
                      "/bin/pip install -q --no-build-isolation --no-deps " + src,
                  log),
            0)
      << ReadFile(log);
  EXPECT_EQ(Shell(venv + "/bin/python " + std::string(TAILOR_SOURCE_DIR) +
                      "/tests/tools/python_client_test.py " + d.requests() + " " + d.events(),
                  log),
            0)
      << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("ok: AsyncClient"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(d.Terminate(), 0);
}

// `tailor plugin check` passes a shipped plugin and fails a broken one,
// naming the check.
TEST(Ops, PluginCheckPassesAGoodPluginAndNamesWhatABrokenOneFails) {
  TempDir dir;
  const std::string log = dir.file("check.log");
  EXPECT_EQ(Shell(TailorBin() + " plugin check " + TAILOR_PLUGIN_DIR + "/tailor_cf.so", log), 0)
      << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("PASS  save / load round trip"), std::string::npos) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("all checks passed"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(Shell(TailorBin() + " plugin check " + TAILOR_FIXTURE_DIR + "/score_nan.so", log), 1)
      << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("FAIL  scores untrained"), std::string::npos) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("non-finite value"), std::string::npos) << ReadFile(log);
}

// The installed tree must not point back into the source or build tree
// (ELF files are skipped: their debug info names sources by design).
void ExpectNoTreePaths(const std::string& prefix) {
  for (const auto& f : std::filesystem::recursive_directory_iterator(prefix)) {
    if (!f.is_regular_file()) continue;
    const std::string text = ReadFile(f.path().string());
    if (text.rfind("\x7f"
                   "ELF",
                   0) == 0)
      continue;
    EXPECT_EQ(text.find(TAILOR_SOURCE_DIR), std::string::npos) << f.path();
    EXPECT_EQ(text.find(TAILOR_BUILD_DIR), std::string::npos) << f.path();
  }
}

TEST(Ops, InstalledTailorServesItsExamplesAndBuildsAPluginOutOfTree) {
  TempDir dir;
  const std::string prefix = dir.file("prefix"), log = dir.file("install.log");
  ASSERT_EQ(
      Shell(std::string(TAILOR_CMAKE) + " --install " + TAILOR_BUILD_DIR + " --prefix " + prefix,
            log),
      0)
      << ReadFile(log);
  for (const char* f :
       {"bin/tailord", "bin/tailor", "lib/tailor/plugins/tailor_cf.so", "include/tailor/plugin.h",
        "include/tailor/plugin_sdk.hpp", "include/tailor/plugin_io.hpp",
        "include/tailor/plugin_util.hpp", "include/tailor/version.h",
        "lib/cmake/Tailor/TailorConfig.cmake", "lib/pkgconfig/tailor-plugin.pc",
        "share/tailor/examples/config/tailor.yaml", "share/tailor/examples/rules",
        "lib/systemd/system/tailord.service"})
    EXPECT_TRUE(std::filesystem::exists(prefix + "/" + f)) << f;
  ExpectNoTreePaths(prefix);
  const std::string unit = prefix + "/lib/systemd/system/tailord.service";
  EXPECT_NE(ReadFile(unit).find("ExecStart=" + prefix + "/bin/tailord"), std::string::npos)
      << ReadFile(unit);
  // systemd-analyze comes with Debian's systemd (tools/install-deps.sh).
  ASSERT_EQ(Shell("command -v systemd-analyze", log), 0) << "systemd-analyze is not installed";
  EXPECT_EQ(Shell("systemd-analyze verify " + unit, log), 0) << ReadFile(log);
  EXPECT_EQ(
      Shell("PKG_CONFIG_PATH=" + prefix + "/lib/pkgconfig pkg-config --cflags tailor-plugin", log),
      0);
  EXPECT_NE(ReadFile(log).find("-I" + prefix + "/lib/pkgconfig/../../include"), std::string::npos)
      << ReadFile(log);

  // The installed programs on the installed examples; tailord finds its
  // plugins beside itself (no --plugin-dir).
  const std::string store = dir.file("demo.db");
  ASSERT_EQ(Shell(prefix + "/bin/tailor demo --store " + store +
                      " --customers 300 --items 80 --days 20 --seed 3",
                  log),
            0)
      << ReadFile(log);
  {
    Tailord::Options o;
    o.config = prefix + "/share/tailor/examples/config/tailor.yaml";
    o.store = store;
    o.binary = prefix + "/bin/tailord";
    o.extra_args = {"--http", "127.0.0.1:0"};
    Tailord d(o);
    ASSERT_TRUE(d.running());
    const size_t colon = d.http().rfind(':');
    httplib::Client http(d.http().substr(0, colon), std::stoi(d.http().substr(colon + 1)));
    auto metrics = http.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("# TYPE tailor_requests_total counter"), std::string::npos);
    // The Python package, installed into a venv, decides against it.
    const std::string venv = dir.file("venv"), pkg = dir.file("pkg");
    std::filesystem::copy(std::string(TAILOR_SOURCE_DIR) + "/clients/python", pkg,
                          std::filesystem::copy_options::recursive);
    ASSERT_EQ(Shell("/usr/bin/python3 -m venv --system-site-packages " + venv + " && " + venv +
                        "/bin/pip install -q --no-build-isolation --no-deps " + pkg,
                    log),
              0)
        << ReadFile(log);
    EXPECT_EQ(
        Shell(venv + "/bin/python -c \"import tailor_client as t; d = t.Client('" + d.requests() +
                  "').decide('c42', channel='web', placement='home'); "
                  "assert d.offers, d; print(d.decision)\"",
              log),
        0)
        << ReadFile(log);
    Client c(d.requests());
    nlohmann::json h = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}})["health"];
    EXPECT_EQ(h["plugins"].size(), 5u) << h.dump();
    for (const auto& [name, p] : h["plugins"].items())
      EXPECT_NE(p.value("status", ""), "failed") << name << ": " << h.dump();
    nlohmann::json r = c.Call({{"v", 1},
                               {"type", "decide"},
                               {"id", "d"},
                               {"customer", "c42"},
                               {"channel", "web"},
                               {"placement", "home"}});
    EXPECT_FALSE(r.contains("error")) << r.dump();
    EXPECT_FALSE(r["offers"].empty()) << r.dump();
    EXPECT_EQ(d.Terminate(), 0);
  }

  // A plugin author's build: find_package(Tailor) from the prefix only.
  const std::string oot = dir.file("oot");
  ASSERT_EQ(Shell(std::string(TAILOR_CMAKE) + " -S " + TAILOR_SOURCE_DIR +
                      "/examples/plugin-out-of-tree -B " + oot + " -DCMAKE_PREFIX_PATH=" + prefix +
                      " && " + TAILOR_CMAKE + " --build " + oot + " && " + TAILOR_CMAKE +
                      " --install " + oot,
                  log),
            0)
      << ReadFile(log);
  PluginSpec spec;
  spec.name = "hello";
  spec.path = prefix + "/lib/tailor/plugins/tailor_hello.so";
  spec.config_json = R"({"score": 0.7})";
  std::string err;
  auto plugin = LoadedPlugin::Load(spec, nullptr, dir.path(), &err);
  ASSERT_NE(plugin, nullptr) << err;
  EXPECT_EQ(plugin->abi_minor(), static_cast<uint32_t>(TAILOR_PLUGIN_ABI_MINOR));
  const tailor_candidate offer{"o1", nullptr, nullptr};
  tailor_request_view req{nullptr, 0, "web", "home", "{}", 0, nullptr, 0};
  float score = 0;
  char reason[128] = {0};
  ASSERT_TRUE(plugin->Score(req, &offer, 1, &score, reason, sizeof reason).ok());
  EXPECT_FLOAT_EQ(score, 0.7f);
  EXPECT_STREQ(reason, "hello from outside the tree");
  // What its author runs before shipping, with the installed CLI.
  EXPECT_EQ(Shell(prefix + "/bin/tailor plugin check " + spec.path, log), 0) << ReadFile(log);
  EXPECT_NE(ReadFile(log).find("all checks passed"), std::string::npos) << ReadFile(log);
}

}  // namespace
}  // namespace tailor::testing
