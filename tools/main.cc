// `tailor`: the command-line companion of tailord.
#include <CLI/CLI.hpp>
#include <set>
#include <string>

#include "commands.h"
#include "common/log.h"
#include "common/version.h"

namespace {

// Quick commands (decide, rules, send, health, ...) print their answer and
// only warnings; the long ones (training, evaluation, imports) keep the
// info lines that report their stages. -v gives every command info lines.
void SetCliLogLevel(int argc, char** argv) {
  static const std::set<std::string> kLong = {"train", "eval",   "simulate", "bench",
                                              "demo",  "import", "report"};
  bool verbose = false, long_running = false, seen_command = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-v" || a == "--verbose") verbose = true;
    if (!seen_command && !a.empty() && a[0] != '-') {
      seen_command = true;
      long_running = kLong.count(a) > 0;
    }
  }
  tailor::log::SetLevel(verbose || long_running ? tailor::log::Level::kInfo
                                                : tailor::log::Level::kWarn);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tailor: import data, generate a demo world, decide, train and benchmark"};
  app.set_version_flag("--version", tailor::VersionLine("tailor"));
  bool verbose = false;  // read before parsing (SetCliLogLevel); declared for --help
  app.add_flag("-v,--verbose", verbose, "info log lines too (quick commands show only warnings)");
  app.fallthrough();  // -v after the subcommand works too
  app.require_subcommand(1);
  SetCliLogLevel(argc, argv);
  tailor::cli::RegisterDecide(app);
  tailor::cli::RegisterImport(app);
  tailor::cli::RegisterDemo(app);
  tailor::cli::RegisterBench(app);
  tailor::cli::RegisterTrain(app);
  tailor::cli::RegisterEval(app);
  tailor::cli::RegisterRules(app);
  tailor::cli::RegisterSimulate(app);
  tailor::cli::RegisterReport(app);
  tailor::cli::RegisterKeygen(app);
  tailor::cli::RegisterOps(app);
  tailor::cli::RegisterPlugin(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
