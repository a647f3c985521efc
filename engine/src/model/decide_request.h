// A decide request as the engine takes it, once the protocol layer has
// parsed and validated it (service/protocol.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace tailor {

struct DecideRequest {
  std::string id;
  std::string customer;  // may be empty: anonymous
  std::string channel;
  std::string placement;
  int limit = 3;
  nlohmann::json context = nlohmann::json::object();
  std::optional<int64_t> now_ms;  // "ts": decide as of this time (replays, tests)
};

}  // namespace tailor
