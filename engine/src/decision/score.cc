// Stages 2 and 3: plugin scores and facts, and the second, small reasons call
// for the candidates a large placement's reply names.
#include <algorithm>

#include "common/log.h"
#include "decision/stages.h"
#include "metrics/metrics.h"

namespace tailor {

void DropPlugin(const PluginCall& call, const std::string& plugin, const std::string& what,
                const Status& st, bool skipped) {
  call.metrics->counters.Add((skipped ? "plugin_skipped." : "plugin_errors.") + plugin);
  if (!skipped) log::Warn("plugin:" + plugin, st.message());
  (*call.dropped)[plugin + what] = st.message();
}

const char* PluginScores::reason(size_t k, size_t i) const {
  if (!explain_after) return reasons.data() + (k * n + i) * kReasonCap;
  const int at = i < explained_at.size() ? explained_at[i] : -1;  // -1 before ExplainNamed
  return at < 0 ? ""
                : reasons.data() + (k * explained.size() + static_cast<size_t>(at)) * kReasonCap;
}

bool ExplainAfter(size_t candidates, int limit) {
  return candidates > 2 * std::max(static_cast<size_t>(limit) * 4, kTraceEligible);
}

void ScoreCandidates(const PluginCall& call, const Candidates& candidates, bool explain_after,
                     const std::map<std::string, double>& weight_overrides, PluginScores* out) {
  const size_t n = candidates.size();
  const PluginList& plugins = call.plugins;
  out->n = n;
  out->explain_after = explain_after;
  out->explained.clear();
  out->explained_at.clear();
  out->scores.assign(plugins.size() * n, 0.0f);
  out->reasons.assign(explain_after ? 0 : plugins.size() * n * kReasonCap, '\0');
  out->weighted_sum.assign(n, 0.0);
  out->weight_sum.assign(n, 0.0);
  out->ok.assign(plugins.size(), false);
  out->names.clear();
  out->weights.clear();
  for (const auto& p : plugins) {
    out->names.push_back(p->name());
    auto w = weight_overrides.find(p->name());
    out->weights.push_back(w != weight_overrides.end() ? w->second : p->weight());
  }
  out->weight_total = 0;
  for (size_t k = 0; k < plugins.size(); ++k) {
    LoadedPlugin& p = *plugins[k];
    if (n == 0) break;
    const bool skipped = p.disabled();  // Score refuses at once, counted
    Status st = p.Score(call.view, candidates.list.data(), n, out->scores.data() + k * n,
                        explain_after ? nullptr : out->reasons.data() + k * n * kReasonCap,
                        explain_after ? 0 : kReasonCap);
    if (!st.ok()) {
      DropPlugin(call, p.name(), "", st, skipped);
      continue;
    }
    out->ok[k] = true;
    const double weight = out->weights[k];
    out->weight_total += weight;
    const float* sc = out->scores.data() + k * n;
    for (size_t i = 0; i < n; ++i) {
      if (sc[i] == TAILOR_SCORE_ABSTAIN) continue;  // only ABI >= 1.1 plugins get it through
      out->weighted_sum[i] += weight * sc[i];
      out->weight_sum[i] += weight;
    }
  }
}

nlohmann::json AnnotateFacts(const PluginCall& call, const nlohmann::json& request_context) {
  nlohmann::json facts = nlohmann::json::object();
  for (const auto& p : call.plugins) {
    if (!p->can_annotate()) continue;
    nlohmann::json f;
    const bool skipped = p->disabled();
    if (Status st = p->Annotate(call.view, &f); !st.ok()) {
      DropPlugin(call, p->name(), ".facts", st, skipped);
      continue;
    }
    if (f.is_null()) continue;
    for (auto part = f.begin(); part != f.end(); ++part) {
      nlohmann::json& into = facts[part.key()];
      for (auto it = part.value().begin(); it != part.value().end(); ++it) {
        if (part.key() == "context" && request_context.contains(it.key())) continue;
        if (!into.contains(it.key())) into[it.key()] = it.value();
      }
    }
  }
  return facts;
}

void ExplainNamed(const PluginCall& call, const Candidates& candidates,
                  const std::vector<Ranked>& ranked, const Judgement& judgement,
                  PluginScores* scores) {
  if (!scores->explain_after) return;
  // The candidates the reply and trace name: the ranked list and the first
  // suppressed, in that order.
  const size_t n = candidates.size();
  scores->explained.clear();
  scores->explained_at.assign(n, -1);
  auto name = [&](size_t i) {
    scores->explained_at[i] = static_cast<int>(scores->explained.size());
    scores->explained.push_back(candidates.list[i]);
  };
  for (const auto& r : ranked) name(r.candidate);
  for (size_t i = 0, named = 0; i < n && named < kTraceSuppressed; ++i) {
    if (!judgement.vetoed[i]) continue;
    name(i);
    ++named;
  }
  const size_t m = scores->explained.size();
  scores->reasons.assign(call.plugins.size() * m * kReasonCap, '\0');
  for (size_t k = 0; k < call.plugins.size() && m > 0; ++k) {
    if (!scores->ok[k]) continue;
    LoadedPlugin& p = *call.plugins[k];
    const bool skipped = p.disabled();
    if (Status st = p.Explain(call.view, scores->explained.data(), m,
                              scores->reasons.data() + k * m * kReasonCap, kReasonCap);
        !st.ok())
      DropPlugin(call, p.name(), ".reasons", st, skipped);
  }
}

}  // namespace tailor
