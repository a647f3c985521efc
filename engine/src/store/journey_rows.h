// The rows behind journeys (journeys/runtime.h), as the store reads and
// writes them: the runtime keeps the logic, the store keeps the SQL.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tailor {

// One journey_state row: where the customer is in one journey.
struct JourneyStateRow {
  std::string journey, stage;
  int64_t entered_ms = 0;
  std::string data_json;  // the runtime's own bookkeeping
};

// What the runtime needs to know about a customer, read in one snapshot.
struct JourneyCustomerRows {
  std::vector<JourneyStateRow> states;
  // Impression events with a channel since the horizon: (channel, ts_ms).
  std::vector<std::pair<std::string, int64_t>> contacts;
  int64_t first_active_ms = 0;  // oldest event other than an impression; 0: none
  int64_t last_active_ms = 0;
};

// A scheduled step or inactivity timer not yet taken (journey_steps).
struct JourneyStepRow {
  int64_t id = 0;
  std::string customer_id, journey, step;
  int64_t due_ms = 0;
  std::string payload_json;
};

// One change to journey_state / journey_steps.
struct JourneyWrite {
  enum class Kind {
    kUpsertState,  // customer, journey, name = stage, time = entered_ms, json = data
    kInsertStep,   // customer, journey, name = step, time = due_ms, json = payload
    // id, time = sent_ms, json = payload; with a message, it goes to the
    // outbox: first attempt now, the next at next_ms unless acknowledged
    kFinishStep,
    kMoveStep,   // id, time = new due_ms
    kAttempted,  // id, attempts, next_ms (0: no more attempts)
    kAcked,      // id, time = acked_ms (a second ack changes nothing)
  };
  Kind kind = Kind::kUpsertState;
  std::string customer, journey, name;
  int64_t time = 0;
  std::string json;
  int64_t id = 0;
  std::string message;   // kFinishStep
  int64_t next_ms = 0;   // kFinishStep, kAttempted
  int64_t attempts = 0;  // kAttempted
};

// An outbound message in the outbox (journey_steps.message), not yet
// acknowledged by a consumer.
struct OutboxRow {
  int64_t id = 0;
  std::string message;
  int64_t attempts = 0;
};

struct OutboxCounts {
  int64_t unacked = 0;   // sent, waiting for an ack
  int64_t given_up = 0;  // of those, past their last attempt
};

}  // namespace tailor
