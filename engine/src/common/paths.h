#pragma once

#include <string>

namespace tailor {

// Where plugins are looked up by name: PREFIX/lib/tailor/plugins beside an
// installed PREFIX/bin/x, else <directory of the running executable>/../plugins
// (build/bin/x -> build/plugins).
std::string DefaultPluginDir();

}  // namespace tailor
