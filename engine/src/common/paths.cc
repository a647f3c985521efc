#include "common/paths.h"

#include <filesystem>

namespace tailor {

std::string DefaultPluginDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "plugins";
  return (exe.parent_path().parent_path() / "plugins").string();
}

}  // namespace tailor
