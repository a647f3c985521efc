// Parsing and validation of the JSON messages clients send (docs/protocol.md).
// Every failure names the offending field; nothing here throws.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "store/store.h"

namespace tailor {

struct ApiError {
  std::string code;     // TAILOR_ERR_* from tailor/messages.h
  std::string field;    // JSON path of the offending field, "" for the whole message
  std::string message;  // for humans
};

struct DecideRequest {
  std::string id;
  std::string customer;  // may be empty: anonymous
  std::string channel;
  std::string placement;
  int limit = 3;
  nlohmann::json context = nlohmann::json::object();
  std::optional<int64_t> now_ms;  // "ts": decide as of this time (replays, tests)
};

struct Request {
  enum class Type { kDecide, kEvent, kProfileGet, kHealth, kStats, kExplain, kReload };
  Type type = Type::kHealth;
  std::string id;
  DecideRequest decide;  // kDecide
  Event event;           // kEvent
  std::string customer;  // kProfileGet
  std::string decision;  // kExplain
};

// Event types the engine accepts; anything else is rejected naming the list.
const std::vector<std::string>& KnownEventTypes();

// Parses one request frame. On error, *id is the request's id when it could be
// read (so the error reply can carry it).
std::variant<Request, ApiError> ParseRequest(std::string_view body, size_t max_bytes,
                                             std::string* id);

// Validates an event object (the body of an event message, from either socket).
std::optional<ApiError> ParseEvent(const nlohmann::json& msg, Event* out);

// {"v":1,"id":...,"error":{...}}
std::string ErrorReply(const std::string& id, const ApiError& e);

}  // namespace tailor
