// tailor.yaml as an operator might get it wrong (the loader reads a file).
#include <string>
#include <vector>

#include "config/config.h"
#include "fuzz_target.h"

TAILOR_FUZZ_TARGET(config) {
  std::string path = tailor::fuzz::WriteScratch("tailor.yaml", data, size);
  std::vector<std::string> errors;
  (void)tailor::LoadConfig(path, tailor::fuzz::ScratchDir(), &errors);
}
