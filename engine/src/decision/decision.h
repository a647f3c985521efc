// What Engine::Decide returns: a made decision, before any wire format
// (service/reply.h renders the reply; the engine stores its own record).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/feedback.h"

namespace tailor {

struct Decision {
  std::string id;          // the decision id events refer back to
  std::string request_id;  // the client's request id, echoed
  bool personalised = false;
  size_t candidates = 0;
  nlohmann::json offers = nlohmann::json::array();  // shown, best first, each with `why`
  std::vector<std::string> finalize;                // notes of finalize hooks that acted
  nlohmann::json trace;                 // the stored trace, when DecideOptions::trace_in_reply
  std::vector<Impression> impressions;  // one per shown offer or item
  // The experiment and arm it ran under ('' outside one; "holdout") and its
  // mode: live, or shadow when the offers are the application's own choice.
  std::string experiment, arm;
  std::string mode = "live";
};

}  // namespace tailor
