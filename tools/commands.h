// Each `tailor` subcommand lives in its own file and registers itself here;
// tools/main.cc calls every Register function once.
#pragma once

namespace CLI {
class App;
}

namespace tailor::cli {

void RegisterDecide(CLI::App& app);    // tools/decide.cc
void RegisterImport(CLI::App& app);    // tools/import.cc
void RegisterDemo(CLI::App& app);      // tools/demo.cc
void RegisterBench(CLI::App& app);     // tools/bench.cc
void RegisterTrain(CLI::App& app);     // tools/train.cc
void RegisterEval(CLI::App& app);      // tools/eval.cc: `tailor eval <what>`
void RegisterRules(CLI::App& app);     // tools/rules.cc: `tailor rules check|test`
void RegisterSimulate(CLI::App& app);  // tools/simulate.cc: `tailor simulate`
void RegisterReport(CLI::App& app);    // tools/report.cc: `tailor report`
void RegisterKeygen(CLI::App& app);    // tools/keygen.cc: `tailor keygen`
void RegisterOps(CLI::App& app);
void RegisterPlugin(CLI::App& app);  // tools/plugin_check.cc: `tailor plugin check`       //
                                     // tools/ops.cc: `tailor health|stats|reload|explain|profile`

// `tailor eval` subcommands, each in its own file, added to the `eval` app.
void RegisterEvalRecs(CLI::App& eval);        // tools/eval_recs.cc
void RegisterEvalIntent(CLI::App& eval);      // tools/eval_intent.cc
void RegisterEvalPropensity(CLI::App& eval);  // tools/eval_propensity.cc

}  // namespace tailor::cli
