// `tailor rules check`: the whole load path (YAML, offers, Lua compile, a dry
// run on sample requests) without serving. `tailor rules test REQUEST.json`:
// one decision with the per-candidate trace.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "commands.h"
#include "common/paths.h"
#include "common/time.h"
#include "config/config.h"
#include "decision/engine.h"
#include "experiments/experiments.h"
#include "metrics/metrics.h"
#include "plugin_host/host.h"
#include "runtime.h"
#include "service/protocol.h"
#include "service/reply.h"
#include "store/store.h"

namespace tailor::cli {
namespace {

using nlohmann::json;

struct CheckArgs {
  std::string config = "config/tailor.yaml", rules_dir;
};

// "name: hook why: file.lua:12: message (effect dropped)" ->
// "file.lua:12: rule 'name' (hook why): message", so editors can jump to it.
std::string FileFirst(const std::string& note) {
  size_t lua = note.find(".lua:");
  size_t colon = note.find(": ");
  if (lua == std::string::npos || colon == std::string::npos) return "rule " + note;
  size_t start = note.rfind(' ', lua);
  start = start == std::string::npos ? 0 : start + 1;
  std::string where_and_msg = note.substr(start);
  const std::string suffix = " (effect dropped)";
  if (where_and_msg.size() > suffix.size() &&
      where_and_msg.compare(where_and_msg.size() - suffix.size(), suffix.size(), suffix) == 0)
    where_and_msg.resize(where_and_msg.size() - suffix.size());
  std::string head = note.substr(0, start);  // "name: hook why: "
  while (!head.empty() && (head.back() == ' ' || head.back() == ':')) head.pop_back();
  size_t name_end = head.find(": ");
  std::string name = head.substr(0, name_end);
  std::string hook = name_end == std::string::npos ? "" : head.substr(name_end + 2);
  size_t line_end = where_and_msg.find(": ", where_and_msg.find(".lua:") + 5);
  if (line_end == std::string::npos) return where_and_msg;
  return where_and_msg.substr(0, line_end) + ": rule '" + name + "' (" + hook +
         "): " + where_and_msg.substr(line_end + 2);
}

// --config accepts the config file or the folder holding tailor.yaml.
std::string ConfigFile(const std::string& path) {
  return std::filesystem::is_directory(path) ? path + "/tailor.yaml" : path;
}

// A throwaway store with one known, consenting customer, for the dry run.
std::unique_ptr<Store> DryRunStore(const std::string& path) {
  std::string err;
  Store::Options o;
  o.path = path;
  auto store = Store::Open(o, &err);
  if (!store) Fail(err);
  Customer c;
  c.id = "dry-run-customer";
  c.attributes_json = R"({"age":35,"dna":{"deal_seeker":"high","night_owl":"high"}})";
  c.consent_json = R"({"personalization":true,"sensitive":true})";
  store->UpsertCustomer(c);
  Event e;
  e.customer_id = c.id;
  e.type = "impression";
  e.ts_ms = now_ms() - 3600 * 1000;
  store->AppendEvent(e).wait();
  return store;
}

void RunCheck(CheckArgs a) {
  a.config = ConfigFile(a.config);
  std::vector<std::string> errors;
  auto cfg = LoadConfig(a.config, DefaultPluginDir(), &errors);
  if (cfg && !a.rules_dir.empty()) cfg->rules_dir = a.rules_dir;
  size_t rule_count = 0, experiment_count = 0;
  if (cfg) {
    // Compile and declare, collecting every error.
    if (!cfg->rules_dir.empty()) {
      auto set = RuleSet::Load(cfg->rules_dir, cfg->rule_limits, &errors);
      if (set) rule_count = set->rules().size();
    }
    // experiments.yaml, against the config's placements, plugins and offers
    // (arms' rule folders compile here too).
    if (!cfg->experiments_file.empty()) {
      std::set<std::string> offer_ids;
      for (const Offer& o : cfg->offers) offer_ids.insert(o.id);
      if (auto set =
              experiments::ExperimentSet::Load(cfg->experiments_file, {*cfg, &offer_ids}, &errors))
        experiment_count = set->experiments().size();
    }
  }
  if (cfg && errors.empty()) {
    // Dry run: every placement, on its channels, for a known customer at a
    // night hour and an anonymous visitor; every rule error is a finding.
    std::string tmp = (std::filesystem::temp_directory_path() /
                       ("tailor-check-" + std::to_string(now_ms()) + ".db"))
                          .string();
    {
      auto store = DryRunStore(tmp);
      Metrics metrics;
      PluginHost host(store.get(), tmp + ".models");
      EngineConfig ec = *cfg;
      ec.plugins.clear();  // rules are checked against the fallback propensity
      Engine engine(ec, store.get(), &host, &metrics);
      if (Status s = engine.LoadCatalog(); !s.ok()) errors.push_back(s.message());
      std::set<std::string> seen;
      for (const auto& [name, placement] : cfg->placements) {
        std::vector<std::string> channels = placement.channels;
        if (channels.empty()) channels = {"web", "app", "email"};
        for (const std::string& channel : channels) {
          for (const char* customer : {"dry-run-customer", ""}) {
            DecideRequest req;
            req.id = "check";
            req.customer = customer;
            req.channel = channel;
            req.placement = name;
            req.limit = 5;
            req.context = {{"hour", 23}, {"intent", "upgrade_phone"}, {"device", "mobile"}};
            auto out = DecideJson(engine, req, DecideOptions{true});
            if (auto* e = std::get_if<ApiError>(&out)) {
              errors.push_back(a.config + ": dry run " + name + "/" + channel + ": " + e->message);
              continue;
            }
            const json& reply = std::get<json>(out);
            for (const json& t : reply["trace"]["entries"])
              for (const json& note : t["why"].value("rules", json::array()))
                if (note.get<std::string>().find("(effect dropped)") != std::string::npos &&
                    seen.insert(note.get<std::string>()).second)
                  errors.push_back(FileFirst(note.get<std::string>()));
            for (const json& note : reply["trace"].value("finalize", json::array()))
              if (note.get<std::string>().find("(effect dropped)") != std::string::npos &&
                  seen.insert(note.get<std::string>()).second)
                errors.push_back(FileFirst(note.get<std::string>()));
          }
        }
      }
      store->Flush();
    }
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(tmp + suffix);
    std::filesystem::remove_all(tmp + ".models");
  }
  for (const auto& e : errors) std::cout << e << "\n";
  if (!errors.empty()) {
    std::cerr << "tailor rules check: " << errors.size() << " error(s)\n";
    throw CLI::RuntimeError(1);
  }
  std::cout << "ok: " << a.config << ", " << cfg->offers.size() << " offers, "
            << cfg->placements.size() << " placements, " << rule_count << " rules, "
            << experiment_count << " experiments; dry run clean\n";
}

struct TestArgs {
  std::string request_file, config = "config/tailor.yaml", store, plugin_dir;
  bool json_out = false;
};

void PrintTrace(const json& reply) {
  std::printf("decision %s (%s, %d candidates, snapshot %d)\n", reply.value("decision", "").c_str(),
              reply.value("personalised", false) ? "personalised" : "not personalised",
              reply.value("candidates", 0), reply["trace"].value("snapshot", 0));
  for (const json& t : reply["trace"]["entries"]) {
    const json& why = t["why"];
    std::string what =
        t.contains("offer") ? t["offer"].get<std::string>() : t.value("item", std::string("?"));
    std::string status = t.value("status", "");
    if (t.contains("rank")) status += " #" + std::to_string(t["rank"].get<int>());
    std::printf("%-14s %-24s priority %.4f = P %.3f x C %.2f x V %.3f x L %.3f\n", status.c_str(),
                what.c_str(), why.value("priority", 0.0), why.value("propensity", 0.0),
                why.value("context", 0.0), why.value("value", 0.0), why.value("levers", 0.0));
    for (const auto& [name, p] : why["plugins"].items()) {
      if (p.value("abstained", false))
        std::printf("%16s plugin %-12s  --    no opinion\n", "", name.c_str());
      else
        std::printf("%16s plugin %-12s %.3f  %s\n", "", name.c_str(), p.value("score", 0.0),
                    p.value("reason", std::string()).c_str());
    }
    for (const json& note : why.value("rules", json::array()))
      std::printf("%16s rule   %s\n", "", note.get<std::string>().c_str());
    if (why.contains("dropped"))
      for (const auto& [name, msg] : why["dropped"].items())
        std::printf("%16s plugin %-12s dropped: %s\n", "", name.c_str(),
                    msg.get<std::string>().c_str());
  }
  for (const json& note : reply["trace"].value("finalize", json::array()))
    std::printf("finalize: %s\n", note.get<std::string>().c_str());
  if (json facts = reply["trace"].value("facts", json::object()); !facts.empty())
    std::printf("facts: %s\n", facts.dump().c_str());
}

void RunTest(const TestArgs& a) {
  std::ifstream in(a.request_file);
  if (!in) Fail("cannot read " + a.request_file);
  std::stringstream ss;
  ss << in.rdbuf();
  json body = json::parse(ss.str(), nullptr, false);
  if (!body.is_object()) Fail(a.request_file + ": not a JSON object");
  // A bare decide body is fine too.
  if (!body.contains("v")) body["v"] = 1;
  if (!body.contains("type")) body["type"] = "decide";
  std::string id;
  auto parsed = ParseRequest(body.dump(), 1 << 20, &id);
  if (auto* e = std::get_if<ApiError>(&parsed))
    Fail(a.request_file + ": " + e->field + ": " + e->message);
  const Request& req = std::get<Request>(parsed);
  if (req.type != Request::Type::kDecide)
    Fail(a.request_file + ": only decide requests can be tested");
  auto rt = Runtime::Open(ConfigFile(a.config), a.store, a.plugin_dir);
  auto out = DecideJson(*rt->engine, req.decide, DecideOptions{true});
  rt->store->Flush();
  if (auto* e = std::get_if<ApiError>(&out)) Fail(e->field + ": " + e->message);
  const json& reply = std::get<json>(out);
  if (a.json_out)
    std::cout << reply.dump(2) << "\n";
  else
    PrintTrace(reply);
}

}  // namespace

void RegisterRules(CLI::App& app) {
  CLI::App* rules =
      app.add_subcommand("rules", "Check and test marketer rules, offers and journeys");
  rules->require_subcommand(1);

  auto c = std::make_shared<CheckArgs>();
  CLI::App* check = rules->add_subcommand(
      "check", "Run the whole load path (YAML, Lua, dry run) without serving; exit 1 on errors");
  check
      ->add_option("-c,--config", c->config,
                   "engine config file, or the folder holding tailor.yaml")
      ->capture_default_str();
  check->add_option("--rules", c->rules_dir, "rules directory (overrides the config)");
  check->callback([c] { RunCheck(*c); });

  auto t = std::make_shared<TestArgs>();
  CLI::App* test = rules->add_subcommand(
      "test", "Decide one request in-process and print every candidate's trace");
  test->add_option("request", t->request_file, "decide request as JSON")->required();
  test->add_option("-c,--config", t->config,
                   "engine config file, or the folder holding tailor.yaml")
      ->capture_default_str();
  test->add_option("--store", t->store, "store path (overrides the config)");
  test->add_option("--plugin-dir", t->plugin_dir, "plugin directory");
  test->add_flag("--json", t->json_out, "print the raw reply with its trace");
  test->callback([t] { RunTest(*t); });
}

}  // namespace tailor::cli
