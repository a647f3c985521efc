// Loading a Lua rule file: compiling it and running its top level in the
// sandbox, under the shipped limits (a loop at top level must be stopped).
#include <string>
#include <utility>
#include <vector>

#include "fuzz_target.h"
#include "rules/rules.h"

TAILOR_FUZZ_TARGET(rules) {
  static const tailor::RuleLimits limits;
  std::vector<std::pair<std::string, std::string>> sources = {
      {"fuzz.lua", std::string(reinterpret_cast<const char*>(data), size)}};
  std::vector<std::string> errors;
  (void)tailor::RuleSet::FromSources(sources, limits, &errors);
}
