// `tailor`: the command-line companion of tailord.
#include <CLI/CLI.hpp>

#include "commands.h"
#include "common/version.h"

int main(int argc, char** argv) {
  CLI::App app{"tailor: import data, generate a demo world, decide, train and benchmark"};
  app.set_version_flag("--version", tailor::VersionLine("tailor"));
  app.require_subcommand(1);
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
  CLI11_PARSE(app, argc, argv);
  return 0;
}
