// Retention: how long the store keeps each kind of record. Its own header so
// that the config (tailor.yaml store.retention) need not include the store.
#pragma once

#include <cstdint>

namespace tailor {

// How long each kind of record is kept (tailor.yaml store.retention), in
// days; 0 keeps it forever.
struct Retention {
  int64_t events_days = 0;         // the event log (journeys and models read it)
  int64_t decisions_days = 0;      // decisions, with impressions, outcomes, shadow picks
  int64_t traces_days = 0;         // the per-candidate why of a decision (explain)
  int64_t chat_text_days = 0;      // the text of chat events; the event stays
  int64_t every_ms = 3600 * 1000;  // how often the writer looks
  bool any() const { return events_days || decisions_days || traces_days || chat_text_days; }
};

}  // namespace tailor
