#include "common/paths.h"

#include <filesystem>

namespace tailor {

std::string DefaultPluginDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "plugins";
  const auto prefix = exe.parent_path().parent_path();
  // Installed (cmake --install): PREFIX/bin/tailord, PREFIX/lib/tailor/plugins.
  if (auto installed = prefix / "lib" / "tailor" / "plugins";
      std::filesystem::is_directory(installed, ec))
    return installed.string();
  return (prefix / "plugins").string();  // the build tree: build/bin, build/plugins
}

}  // namespace tailor
