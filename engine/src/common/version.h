// What `--version` prints: the program, the project version and the plugin
// ABI it loads.
#pragma once

#include <string>

namespace tailor {

// e.g. "tailord 0.1.0 (plugin ABI 1.4)".
std::string VersionLine(const std::string& program);

}  // namespace tailor
