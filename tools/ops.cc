// `tailor health|stats|reload|explain|profile`: the operator's view of a
// running tailord, pretty by default, --json for scripts. Exit codes: 0 ok,
// 1 tailord answered with an error, 2 bad usage or key files, 3 no reply,
// 4 (health) tailord answered but is not ok.
#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client.h"
#include "commands.h"
#include "runtime.h"

namespace tailor::cli {
namespace {

using nlohmann::json;

constexpr int kServerError = 1, kNoReply = 3, kNotOk = 4;

struct OpsArgs {
  std::string endpoint = "tcp://127.0.0.1:5555";
  int timeout_ms = 5000;
  bool json_out = false;
  ClientKeys keys;
  std::string target;  // the decision or the customer
};

bool Scalar(const json& v) { return !v.is_object() && !v.is_array(); }

std::string Text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// YAML-like: "key: value" per scalar, nested objects indented, arrays of
// scalars on one line, other arrays as "- " items.
void Pretty(const json& v, int indent, std::ostream& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const json& x = it.value();
      const bool inline_array = x.is_array() && std::all_of(x.begin(), x.end(), Scalar);
      if (Scalar(x) || (x.is_object() && x.empty())) {
        out << pad << it.key() << ": " << (x.is_object() ? "{}" : Text(x)) << "\n";
      } else if (inline_array) {
        out << pad << it.key() << ": [";
        for (size_t i = 0; i < x.size(); ++i) out << (i ? ", " : "") << Text(x[i]);
        out << "]\n";
      } else {
        out << pad << it.key() << ":\n";
        Pretty(x, indent + 2, out);
      }
    }
  } else if (v.is_array()) {
    for (const json& x : v) {
      if (Scalar(x)) {
        out << pad << "- " << Text(x) << "\n";
      } else {
        out << pad << "-\n";
        Pretty(x, indent + 2, out);
      }
    }
  } else {
    out << pad << Text(v) << "\n";
  }
}

// Sends request, prints the reply's `member` (or the raw reply with --json)
// and returns the exit code.
int Run(const OpsArgs& a, json request, const std::string& member) {
  request["v"] = 1;
  request["id"] = "tailor-cli";
  Client client(a.endpoint, a.timeout_ms, a.keys);
  auto r = client.Call(request.dump());
  if (!r) {
    std::cerr << "tailor: no reply from " << a.endpoint << " within " << a.timeout_ms << " ms\n";
    return kNoReply;
  }
  json reply = json::parse(*r, nullptr, false);
  if (!reply.is_object()) {
    std::cerr << "tailor: not a JSON reply: " << *r << "\n";
    return kServerError;
  }
  if (a.json_out) std::cout << reply.dump(2) << "\n";
  if (reply.contains("error")) {
    const json& e = reply["error"];
    if (!a.json_out) {
      std::cerr << "tailor: " << e.value("code", "error") << ": " << e.value("message", "") << "\n";
      if (e.contains("errors")) Pretty(e["errors"], 2, std::cerr);
    }
    return kServerError;
  }
  if (!a.json_out) {
    reply.erase("v");
    reply.erase("id");
    json shown = reply.contains(member) ? reply[member] : reply;
    if (shown.is_object() && shown.contains("status")) {  // the answer first
      std::cout << "status: " << Text(shown["status"]) << "\n";
      shown.erase("status");
    }
    Pretty(shown, 0, std::cout);
  }
  if (member == "health" && reply[member].value("status", "") != "ok") return kNotOk;
  return 0;
}

CLI::App* Command(CLI::App& app, const std::string& name, const std::string& help,
                  std::shared_ptr<OpsArgs> a) {
  CLI::App* c = app.add_subcommand(name, help);
  c->add_option("--endpoint", a->endpoint, "tailord request endpoint")->capture_default_str();
  c->add_option("--timeout-ms", a->timeout_ms, "reply timeout")->capture_default_str();
  c->add_flag("--json", a->json_out, "print the raw reply (for scripts)");
  AddKeyOptions(c, &a->keys);
  return c;
}

// CLI11 ends the program with the callback's exit code through RuntimeError.
void Exit(int code) {
  if (code != 0) throw CLI::RuntimeError(code);
}

}  // namespace

void RegisterOps(CLI::App& app) {
  auto health = std::make_shared<OpsArgs>();
  Command(app, "health", "Is tailord ok? Status, problems, plugins, store (exit 4 when not ok)",
          health)
      ->callback([health] {
        Exit(Run(*health, {{"type", "health"}}, "health"));
      });

  auto stats = std::make_shared<OpsArgs>();
  Command(app, "stats", "Counters and latencies of a running tailord", stats)->callback([stats] {
    Exit(Run(*stats, {{"type", "stats"}}, "stats"));
  });

  auto reload = std::make_shared<OpsArgs>();
  Command(app, "reload",
          "Reload offers, rules, journeys, client keys and models (admin); lists every error",
          reload)
      ->callback([reload] {
        Exit(Run(*reload, {{"type", "rules.reload"}}, ""));
      });

  auto explain = std::make_shared<OpsArgs>();
  Command(app, "explain", "A logged decision: its offers, why, and its outcomes (reader)", explain)
      ->callback([explain] {
        Exit(Run(*explain, {{"type", "explain"}, {"decision", explain->target}}, "explain"));
      })
      ->add_option("decision", explain->target, "decision id")
      ->required();

  auto profile = std::make_shared<OpsArgs>();
  Command(app, "profile", "A customer's profile: attributes, consent, recent events (reader)",
          profile)
      ->callback([profile] {
        Exit(Run(*profile, {{"type", "profile.get"}, {"customer", profile->target}}, "profile"));
      })
      ->add_option("customer", profile->target, "customer id")
      ->required();
}

}  // namespace tailor::cli
