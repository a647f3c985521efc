// The libFuzzer entry point of a binary that links exactly one target.
#include <cstdlib>

#include "fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tailor::fuzz::TargetFn fn = tailor::fuzz::Only();
  if (fn == nullptr) std::abort();
  fn(data, size);
  return 0;
}
