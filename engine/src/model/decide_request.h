// A decide request as the engine takes it, once the protocol layer has
// parsed and validated it (service/protocol.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tailor {

// Shadow mode: what the application serves itself ("shadow": {"offers": [...]}
// or {"items": [...]}), in its order; Tailor returns it unchanged on a
// placement or experiment arm in shadow mode and ignores it elsewhere.
struct ShadowChoice {
  bool items = false;            // the ids are items, not offers
  std::vector<std::string> ids;  // distinct, at most 100
};

struct DecideRequest {
  std::string id;
  std::string customer;  // may be empty: anonymous
  std::string channel;
  std::string placement;
  int limit = 3;
  nlohmann::json context = nlohmann::json::object();
  std::optional<int64_t> now_ms;  // "ts": decide as of this time (replays, tests)
  // The request's own filters, honoured in every placement and shown in the
  // trace (decision/suppression.h RequestFilter). Empty = no filter.
  std::vector<std::string> exclude;             // offer or item ids
  std::vector<std::string> include_categories;  // only these categories
  std::vector<std::string> exclude_categories;  // never these categories
  std::optional<ShadowChoice> shadow;
};

}  // namespace tailor
