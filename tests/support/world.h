// A small, hand-made world for tests: 30 items in three categories, 20
// customers, and events where item i1 is by far the most bought.
#pragma once

#include <string>

namespace tailor::testing {

// Creates (or overwrites) a store at path with that world.
void MakeSmallWorld(const std::string& path);

}  // namespace tailor::testing
