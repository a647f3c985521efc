#pragma once

#include <string>

namespace tailor {

// <directory of the running executable>/../plugins: build/bin/x -> build/plugins.
std::string DefaultPluginDir();

}  // namespace tailor
