// Each `tailor` subcommand lives in its own file and registers itself here;
// tools/main.cc calls every Register function once.
#pragma once

namespace CLI {
class App;
}

namespace tailor::cli {

void RegisterDecide(CLI::App& app);  // tools/decide.cc
void RegisterImport(CLI::App& app);  // tools/import.cc
void RegisterDemo(CLI::App& app);    // tools/demo.cc
void RegisterBench(CLI::App& app);   // tools/bench.cc
void RegisterTrain(CLI::App& app);   // tools/train.cc

}  // namespace tailor::cli
