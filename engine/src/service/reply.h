// The wire reply to a decide request: the engine's Decision in the protocol's
// shape (docs in README § Messages).
#pragma once

#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include "decision/engine.h"

namespace tailor {

// {"v","id","decision","personalised","candidates","offers"[,"finalize"][,"trace"]}
nlohmann::json DecideReply(Decision d);

// Decides and renders the reply; for the CLI and benchmarks that hold an
// engine in-process.
std::variant<nlohmann::json, ApiError> DecideJson(Engine& engine, const DecideRequest& req,
                                                  DecideOptions options = {});

}  // namespace tailor
