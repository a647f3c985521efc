// Journey YAML, checked against the shipped offers' ids.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_target.h"
#include "journeys/journeys.h"

TAILOR_FUZZ_TARGET(journeys) {
  static const std::set<std::string> offers = {"o_accessory_addon", "o_loyalty_app", "o_audio_week",
                                               "o_toys_gifts"};
  std::vector<std::pair<std::string, std::string>> sources = {
      {"fuzz.yaml", std::string(reinterpret_cast<const char*>(data), size)}};
  std::vector<std::string> errors;
  (void)tailor::Journeys::FromSources(sources, offers, &errors);
}
