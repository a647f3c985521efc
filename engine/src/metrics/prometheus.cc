#include "metrics/prometheus.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string_view>

#include "metrics/metrics.h"

namespace tailor {
namespace {

using nlohmann::json;

// Label values escape backslash, double quote and newline.
std::string Escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string Label(const char* k, std::string_view v) {
  return std::string(k) + "=\"" + Escape(v) + "\"";
}

class Writer {
 public:
  // Starts a family; samples follow with Sample.
  void Family(const std::string& name, const char* type, const char* help) {
    out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  // labels: already rendered `k="v",...` (may be empty).
  void Sample(const std::string& name, const std::string& labels, double v) {
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + Number(v) + "\n";
  }
  // One counter family from an object of name -> count, labelled label=name.
  void Counters(const std::string& name, const char* label, const json& obj, const char* help) {
    Family(name, "counter", help);
    if (!obj.is_object()) return;
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (it->is_number()) Sample(name, Label(label, it.key()), it->get<double>());
  }
  // The samples of one histogram (the family started by the caller).
  void Histogram(const std::string& name, const std::string& labels, const LatencyHistogram& h) {
    static constexpr double kBoundsS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                          0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                          1,      2.5,     5,      10};
    const std::string sep = labels.empty() ? "" : ",";
    for (double le : kBoundsS)
      Sample(name + "_bucket", labels + sep + "le=\"" + Number(le) + "\"",
             static_cast<double>(h.CountBelow(le * 1e6)));
    Sample(name + "_bucket", labels + sep + "le=\"+Inf\"", static_cast<double>(h.count()));
    Sample(name + "_sum", labels, static_cast<double>(h.sum_micros()) / 1e6);
    Sample(name + "_count", labels, static_cast<double>(h.count()));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void Latencies(const Metrics& m, Writer& w) {
  w.Family("tailor_request_duration_seconds", "histogram",
           "Server-side time from receipt to reply (decide) or to durable (event).");
  w.Histogram("tailor_request_duration_seconds", Label("type", "decide"), m.decide_us);
  w.Histogram("tailor_request_duration_seconds", Label("type", "event"), m.event_us);
  w.Family("tailor_decide_stage_duration_seconds", "histogram",
           "Time of each stage of a decision.");
  for (size_t s = 0; s < m.stage_us.size(); ++s)
    w.Histogram("tailor_decide_stage_duration_seconds",
                Label("stage", DecideStageName(static_cast<DecideStage>(s))), m.stage_us[s]);
}

// stats.plugins.<name>: <call>_calls, _errors, _overruns, _skipped, and mean
// times, as families labelled plugin and call.
void Plugins(const json& plugins, Writer& w) {
  static constexpr std::string_view kKinds[] = {"calls", "errors", "overruns", "skipped"};
  for (std::string_view kind : kKinds) {
    const std::string name = "tailor_plugin_" + std::string(kind) + "_total";
    w.Family(name, "counter", "Plugin calls by plugin and call (score, explain, annotate, ...).");
    if (!plugins.is_object()) continue;
    for (auto p = plugins.begin(); p != plugins.end(); ++p) {
      for (auto it = p->begin(); it != p->end(); ++it) {
        const std::string& key = it.key();
        const std::string suffix = "_" + std::string(kind);
        if (key.size() <= suffix.size() || !key.ends_with(suffix) || !it->is_number()) continue;
        w.Sample(name,
                 Label("plugin", p.key()) + "," +
                     Label("call", std::string_view(key).substr(0, key.size() - suffix.size())),
                 it->get<double>());
      }
    }
  }
  w.Family("tailor_plugin_seconds_total", "counter", "Time spent in plugin calls.");
  if (!plugins.is_object()) return;
  for (auto p = plugins.begin(); p != plugins.end(); ++p) {
    for (const char* call : {"score", "observe"}) {
      const double mean = p->value(std::string("mean_") + call + "_us", 0.0);
      const double calls = p->value(std::string(call) + "_calls", 0.0);
      w.Sample("tailor_plugin_seconds_total", Label("plugin", p.key()) + "," + Label("call", call),
               mean * calls / 1e6);
    }
  }
}

void Rules(const json& rules, Writer& w) {
  for (const char* kind : {"calls", "vetoes", "levers", "errors", "timeouts"}) {
    const std::string name = std::string("tailor_rule_") + kind + "_total";
    w.Family(name, "counter", "Rule hook calls and their outcomes, by rule.");
    if (!rules.is_object()) continue;
    for (auto r = rules.begin(); r != rules.end(); ++r)
      if (r->contains(kind)) w.Sample(name, Label("rule", r.key()), (*r)[kind].get<double>());
  }
}

void Gauges(const json& stats, const json& health, Writer& w) {
  const json& store = stats.value("store", json::object());
  w.Family("tailor_store_pending_writes", "gauge", "Writes queued to the store's writer.");
  w.Sample("tailor_store_pending_writes", "", store.value("pending_writes", 0.0));
  const json& outbound = stats.value("outbound", json::object());
  w.Family("tailor_outbound_unacked", "gauge", "Journey messages sent and not yet acknowledged.");
  w.Sample("tailor_outbound_unacked", "", outbound.value("unacked", 0.0));
  w.Family("tailor_outbound_given_up", "gauge", "Journey messages given up after max_attempts.");
  w.Sample("tailor_outbound_given_up", "", outbound.value("given_up", 0.0));
  w.Family("tailor_snapshot", "gauge", "The serving snapshot's number (one more per reload).");
  w.Sample("tailor_snapshot", "", stats.value("snapshot", 0.0));
  w.Family("tailor_healthy", "gauge", "1 when health says ok, 0 when degraded.");
  w.Sample("tailor_healthy", "", health.value("status", "") == "ok" ? 1 : 0);
  w.Family("tailor_health_problems", "gauge", "Problems health lists.");
  w.Sample("tailor_health_problems", "",
           static_cast<double>(health.value("problems", json::array()).size()));
}

}  // namespace

std::string RenderPrometheus(const Metrics& metrics, const json& stats, const json& health) {
  Writer w;
  w.Counters("tailor_requests_total", "type", stats.value("requests", json::object()),
             "Requests answered, by message type.");
  w.Counters("tailor_errors_total", "code", stats.value("errors", json::object()),
             "Error replies, by error code.");
  w.Counters("tailor_events_total", "type", stats.value("events", json::object()),
             "Events stored, by event type.");
  w.Counters("tailor_counter_total", "name", stats.value("counters", json::object()),
             "The engine's other counters (cache hits and misses, journeys, outbound, ...).");
  Latencies(metrics, w);
  Plugins(stats.value("plugins", json::object()), w);
  Rules(stats.value("rules", json::object()), w);
  Gauges(stats, health, w);
  return w.Take();
}

}  // namespace tailor
