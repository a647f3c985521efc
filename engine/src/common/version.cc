#include "common/version.h"

#include "tailor/plugin.h"
#include "tailor/version.h"

namespace tailor {

std::string VersionLine(const std::string& program) {
  return program + " " + TAILOR_VERSION + " (plugin ABI " +
         std::to_string(TAILOR_PLUGIN_ABI_MAJOR) + "." + std::to_string(TAILOR_PLUGIN_ABI_MINOR) +
         ")";
}

}  // namespace tailor
