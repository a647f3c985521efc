// `tailor eval`: model quality on held-out data, each model against simple
// baselines computed by the same command.
#include <CLI/CLI.hpp>

#include "commands.h"

namespace tailor::cli {

// Weak while the evaluations are being written: a build without one of the
// files still links, and `tailor eval --help` lists what is there.
void RegisterEvalRecs(CLI::App& eval) __attribute__((weak));
void RegisterEvalIntent(CLI::App& eval) __attribute__((weak));
void RegisterEvalPropensity(CLI::App& eval) __attribute__((weak));
void RegisterEvalCalibration(CLI::App& eval) __attribute__((weak));
void RegisterEvalPolicy(CLI::App& eval) __attribute__((weak));

void RegisterEval(CLI::App& app) {
  CLI::App* eval = app.add_subcommand("eval", "Evaluate models on held-out data");
  eval->require_subcommand(1);
  if (RegisterEvalRecs) RegisterEvalRecs(*eval);
  if (RegisterEvalIntent) RegisterEvalIntent(*eval);
  if (RegisterEvalPropensity) RegisterEvalPropensity(*eval);
  if (RegisterEvalCalibration) RegisterEvalCalibration(*eval);
  if (RegisterEvalPolicy) RegisterEvalPolicy(*eval);
}

}  // namespace tailor::cli
