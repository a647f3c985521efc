// A decision's stored trace, off the request path: the request thread copies
// only what the trace names (the ranked head and the first suppressed, a few
// dozen of possibly thousands of candidates) and the store's writer renders
// and dumps the JSON. Explain reads the same JSON as before.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "decision/stages.h"

namespace tailor {

// Returns a function that renders DecisionTrace(in, shown, ...) as JSON text,
// byte for byte, on any thread. keep_alive holds what the candidates' ids
// and in.placement point into (the decision's snapshot).
std::function<std::string()> CaptureTrace(const ExplainInput& in, size_t shown,
                                          uint64_t snapshot_version,
                                          const std::vector<std::string>& finalize_notes,
                                          std::shared_ptr<const void> keep_alive);

}  // namespace tailor
