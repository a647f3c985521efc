// A decision's stored trace as a compact binary record, rendered to JSON only
// when someone reads it (explain, tailor report). The request thread writes
// only what the trace names (the ranked head and the first suppressed: a few
// dozen of possibly thousands of candidates) with no JSON built; the store
// keeps the bytes; RenderTrace gives back exactly the JSON DecisionTrace
// would have given at decision time.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decision/stages.h"

namespace tailor {

// The record of DecisionTrace(in, shown, snapshot_version, finalize_notes).
std::string EncodeTrace(const ExplainInput& in, size_t shown, uint64_t snapshot_version,
                        const std::vector<std::string>& finalize_notes);

// True when stored is such a record (older stores hold the JSON itself).
bool IsEncodedTrace(std::string_view stored);

// The trace's JSON text: a record rendered, JSON returned as it is; nullopt
// for a damaged record.
std::optional<std::string> RenderTrace(std::string_view stored);

}  // namespace tailor
