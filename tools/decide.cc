// `tailor decide`: one decision, pretty-printed; `tailor send`: one raw message.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client.h"
#include "commands.h"
#include "runtime.h"
#include "service/reply.h"

namespace tailor::cli {
namespace {

using nlohmann::json;

struct DecideArgs {
  std::string endpoint, config = "config/tailor.yaml", store, plugin_dir;
  std::string customer, channel = "web", placement = "home", context = "{}";
  int limit = 3;
  int timeout_ms = 5000;
  bool json_out = false;
  ClientKeys keys;
};

void Print(const json& reply) {
  if (reply.contains("error")) {
    const json& e = reply["error"];
    std::cout << "error " << e.value("code", "") << " (field '" << e.value("field", "")
              << "'): " << e.value("message", "") << "\n";
    return;
  }
  std::cout << "decision " << reply.value("decision", "") << "  ("
            << (reply.value("personalised", false) ? "personalised" : "not personalised") << ", "
            << reply.value("candidates", 0) << " candidates)\n";
  for (const json& o : reply["offers"]) {
    const json& why = o["why"];
    std::string what =
        o.contains("offer") ? o["offer"].get<std::string>() : o.value("item", std::string("?"));
    if (o.contains("offer") && o.contains("item")) what += " -> " + o["item"].get<std::string>();
    if (o.contains("category")) what += " [" + o["category"].get<std::string>() + "]";
    std::printf("%2d. %-40s priority %.4f = P %.3f x C %.2f x V %.3f x L %.2f\n",
                o.value("rank", 0), what.c_str(), why.value("priority", 0.0),
                why.value("propensity", 0.0), why.value("context", 0.0), why.value("value", 0.0),
                why.value("levers", 0.0));
    for (const auto& [name, p] : why["plugins"].items()) {
      if (p.value("abstained", false)) {
        std::printf("      %-12s  --   (weight %.2f)  no opinion\n", name.c_str(),
                    p.value("weight", 0.0));
        continue;
      }
      std::printf("      %-12s %.3f (weight %.2f)  %s\n", name.c_str(), p.value("score", 0.0),
                  p.value("weight", 0.0), p.value("reason", std::string()).c_str());
    }
    for (const auto& note : why.value("rules", nlohmann::json::array()))
      std::printf("      rule         %s\n", note.get<std::string>().c_str());
    if (why.contains("facts")) std::printf("      facts        %s\n", why["facts"].dump().c_str());
    if (why.contains("dropped"))
      for (const auto& [name, msg] : why["dropped"].items())
        std::printf("      %-12s dropped: %s\n", name.c_str(), msg.get<std::string>().c_str());
  }
  if (reply["offers"].empty()) std::cout << "(no eligible offers)\n";
}

void RunDecide(const DecideArgs& a) {
  json ctx = json::parse(a.context, nullptr, false);
  if (!ctx.is_object()) Fail("--context must be a JSON object", 2);
  json req = {{"v", 1},
              {"type", "decide"},
              {"id", "cli"},
              {"channel", a.channel},
              {"placement", a.placement},
              {"limit", a.limit},
              {"context", ctx}};
  if (!a.customer.empty()) req["customer"] = a.customer;
  json reply;
  if (!a.endpoint.empty()) {
    Client client(a.endpoint, a.timeout_ms, a.keys);
    auto r = client.Call(req.dump());
    if (!r) Fail("no reply from " + a.endpoint + " within " + std::to_string(a.timeout_ms) + " ms");
    reply = json::parse(*r, nullptr, false);
  } else {
    auto rt = Runtime::Open(a.config, a.store, a.plugin_dir);
    DecideRequest d;
    d.id = "cli";
    d.customer = a.customer;
    d.channel = a.channel;
    d.placement = a.placement;
    d.limit = a.limit;
    d.context = ctx;
    auto out = DecideJson(*rt->engine, d);
    if (auto* e = std::get_if<ApiError>(&out))
      reply = {{"error", {{"code", e->code}, {"field", e->field}, {"message", e->message}}}};
    else
      reply = std::get<json>(out);
    rt->store->Flush();
  }
  if (a.json_out)
    std::cout << reply.dump(2) << "\n";
  else
    Print(reply);
  if (reply.contains("error")) throw CLI::RuntimeError(1);
}

}  // namespace

void RegisterDecide(CLI::App& app) {
  auto args = std::make_shared<DecideArgs>();
  CLI::App* d =
      app.add_subcommand("decide", "Ask for one decision and print the offers with their reasons");
  d->add_option("--endpoint", args->endpoint,
                "tailord request endpoint (e.g. tcp://127.0.0.1:5555); without it the engine "
                "runs in-process on --config/--store");
  d->add_option("-c,--config", args->config, "engine config")->capture_default_str();
  d->add_option("--store", args->store, "store path (overrides the config)");
  d->add_option("--plugin-dir", args->plugin_dir, "plugin directory");
  d->add_option("--customer", args->customer, "customer id (omit for anonymous)");
  d->add_option("--channel", args->channel, "channel")->capture_default_str();
  d->add_option("--placement", args->placement, "placement")->capture_default_str();
  d->add_option("--limit", args->limit, "offers to return")->capture_default_str();
  d->add_option("--context", args->context, "context JSON object")->capture_default_str();
  d->add_option("--timeout-ms", args->timeout_ms, "reply timeout")->capture_default_str();
  d->add_flag("--json", args->json_out, "print the raw reply");
  AddKeyOptions(d, &args->keys);
  d->callback([args] { RunDecide(*args); });

  auto send_endpoint = std::make_shared<std::string>("tcp://127.0.0.1:5555");
  auto body = std::make_shared<std::string>();
  auto keys = std::make_shared<ClientKeys>();
  CLI::App* s = app.add_subcommand(
      "send", "Send one JSON message to tailord's request socket and print the reply");
  s->add_option("message", *body, "the JSON message, e.g. '{\"v\":1,\"type\":\"health\"}'")
      ->required();
  s->add_option("--endpoint", *send_endpoint, "request endpoint")->capture_default_str();
  AddKeyOptions(s, keys.get());
  s->callback([send_endpoint, body, keys] {
    Client client(*send_endpoint, 5000, *keys);
    auto r = client.Call(*body);
    if (!r) Fail("no reply from " + *send_endpoint);
    json j = json::parse(*r, nullptr, false);
    std::cout << (j.is_discarded() ? *r : j.dump(2)) << "\n";
    if (j.is_object() && j.contains("error")) throw CLI::RuntimeError(1);
  });
}

}  // namespace tailor::cli
