// The Prometheus text exposition format (version 0.0.4) of a running
// tailord: what GET /metrics answers (service/http.h).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace tailor {

struct Metrics;

// Every family with its # HELP and # TYPE: requests and errors by type and
// code, events by type, the engine's other counters, latency histograms
// (decide, event, each Decide stage), plugin calls, errors, overruns and
// time, rule calls, vetoes and errors, the store's writer queue, the
// outbound queue, journeys, and health. stats and health are the `stats` and
// `health` replies' bodies (Engine::Stats, Engine::Health).
std::string RenderPrometheus(const Metrics& metrics, const nlohmann::json& stats,
                             const nlohmann::json& health);

}  // namespace tailor
