// What an operator sees of the programs themselves: versions.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "support/tailord.h"
#include "support/temp_dir.h"
#include "tailor/plugin.h"
#include "tailor/version.h"

namespace tailor::testing {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Ops, BothProgramsSayTheirVersionAndThePluginAbi) {
  TempDir dir;
  const std::string abi =
      std::to_string(TAILOR_PLUGIN_ABI_MAJOR) + "." + std::to_string(TAILOR_PLUGIN_ABI_MINOR);
  for (const std::string& bin : {TailordBin(), TailorBin()}) {
    const std::string log = dir.file("version.log");
    ASSERT_EQ(Shell(bin + " --version", log), 0) << Read(log);
    const std::string name = bin.substr(bin.rfind('/') + 1);
    EXPECT_EQ(Read(log), name + " " + TAILOR_VERSION + " (plugin ABI " + abi + ")\n");
  }
}

}  // namespace
}  // namespace tailor::testing
