// Parsing and validation of the JSON messages clients send (docs/protocol.md).
// Every failure names the offending field; nothing here throws.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "model/api_error.h"
#include "model/decide_request.h"
#include "model/types.h"

namespace tailor {

struct Request {
  enum class Type {
    kDecide,
    kEvent,
    kEvents,
    kProfileGet,
    kProfileDelete,
    kHealth,
    kStats,
    kExplain,
    kReload,
    kOutboundAck,     // a consumer confirms outbound messages by id
    kOutboundPending  // a consumer asks for the messages not yet confirmed
  };
  Type type = Type::kHealth;
  std::string id;
  DecideRequest decide;               // kDecide
  Event event;                        // kEvent
  std::vector<Event> events;          // kEvents
  std::string customer;               // kProfileGet, kProfileDelete
  std::string decision;               // kExplain
  std::vector<int64_t> outbound_ids;  // kOutboundAck
  int64_t outbound_after = 0;         // kOutboundPending: ids above this
  size_t outbound_limit = 100;        // kOutboundPending
};

// The most ids one outbound.ack carries, and messages outbound.pending returns.
constexpr size_t kMaxOutboundBatch = 1000;

// The most events one `events` message may carry.
constexpr size_t kMaxBatchEvents = 1000;

// Event types the engine accepts; anything else is rejected naming the list.
const std::vector<std::string>& KnownEventTypes();

// Parses one request frame. On error, *id is the request's id when it could be
// read (so the error reply can carry it).
std::variant<Request, ApiError> ParseRequest(std::string_view body, size_t max_bytes,
                                             std::string* id);

// Validates an event object (the body of an event message, from either socket).
std::optional<ApiError> ParseEvent(const nlohmann::json& msg, Event* out);

// The wire name of a request type ("profile.get").
const char* RequestTypeName(Request::Type t);

// {"v":1,"id":...,"error":{...}}
std::string ErrorReply(const std::string& id, const ApiError& e);

}  // namespace tailor
