#include "decision/trace.h"

#include <cstring>
#include <type_traits>

namespace tailor {
namespace {

using nlohmann::json;

// Not '{': a stored trace that starts with this is a record.
constexpr char kMagic[] = "\x7fTR1";
constexpr size_t kMagicSize = 4;

class Writer {
 public:
  Writer() { out_.assign(kMagic, kMagicSize); }
  template <typename T>
  void Put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void Str(std::string_view s) {
    Put(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  // A C string that may be NULL.
  void CStr(const char* s) {
    Put(static_cast<uint8_t>(s != nullptr));
    if (s) Str(s);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in.substr(kMagicSize)) {}
  bool ok() const { return ok_; }
  template <typename T>
  T Get() {
    T v{};
    if (!Need(sizeof v)) return v;
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return v;
  }
  std::string Str() {
    const auto n = Get<uint32_t>();
    if (!Need(n)) return {};
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  // A count of things each at least min_bytes long, checked against what is left.
  size_t Count(size_t min_bytes) {
    const auto n = Get<uint64_t>();
    if (min_bytes > 0 && n > in_.size() / min_bytes) ok_ = false;
    return ok_ ? static_cast<size_t>(n) : 0;
  }

 private:
  bool Need(size_t n) {
    if (!ok_ || in_.size() < n) ok_ = false;
    return ok_;
  }
  std::string_view in_;
  bool ok_ = true;
};

// The candidates a trace names, in candidate order: the first
// kTraceSuppressed vetoed, every ranked one, and those a diversity note
// names. *index maps a named candidate to its place in the record.
std::vector<size_t> Traced(const ExplainInput& in, size_t* vetoed_total,
                           std::vector<uint64_t>* index) {
  const size_t n = in.candidates.size();
  std::vector<uint64_t>& keep = *index;  // 1 = named, until it becomes the place
  keep.assign(n, 0);
  size_t vetoed = 0;
  for (size_t i = 0; i < n; ++i)
    if (in.judgement.vetoed[i] && vetoed++ < kTraceSuppressed) keep[i] = 1;
  for (const Ranked& r : in.ranked) keep[r.candidate] = 1;
  for (const Diversified& d : in.diversified) keep[d.candidate] = keep[d.similar_to] = 1;
  *vetoed_total = vetoed;
  std::vector<size_t> out;
  for (size_t i = 0; i < n; ++i)
    if (keep[i]) {
      keep[i] = out.size();
      out.push_back(i);
    }
  return out;
}

// A decoded record: ExplainInput's parts over the traced candidates only,
// which DecisionTrace reads as if they were the whole decision.
struct Decoded {
  PlacementConfig placement;
  std::vector<std::string> strings;  // what the candidates' C strings point into
  Candidates candidates;
  PluginScores scores;
  Judgement judgement;
  std::vector<Ranked> ranked;
  std::vector<Diversified> diversified;
  json dropped, facts;
  Responses responses;
  PolicyPicks picks;
  bool has_picks = false;
  size_t shown = 0;
  uint64_t version = 0;
  std::vector<std::string> finalize;
  TraceTotals totals;
};

void PutCandidate(Writer& w, const tailor_candidate& c) {
  w.CStr(c.offer_id);
  w.CStr(c.item_id);
  w.CStr(c.category);
}

// Reads a candidate's strings into d->strings (reserved up front, so the
// pointers stay put) and returns the candidate.
tailor_candidate GetCandidate(Reader& r, Decoded* d) {
  const char* s[3] = {nullptr, nullptr, nullptr};
  for (const char*& p : s)
    if (r.Get<uint8_t>() && d->strings.size() < d->strings.capacity()) {
      d->strings.push_back(r.Str());
      p = d->strings.back().c_str();
    }
  return {s[0], s[1], s[2]};
}

void PutDoubles(Writer& w, const std::vector<double>& v, const std::vector<size_t>& at) {
  for (size_t i : at) w.Put(v[i]);
}

void GetDoubles(Reader& r, size_t m, std::vector<double>* v) {
  v->resize(m);
  for (double& x : *v) x = r.Get<double>();
}

void EncodeScores(Writer& w, const PluginScores& s, const std::vector<size_t>& at) {
  const size_t k_n = s.names.size();
  w.Put(static_cast<uint64_t>(k_n));
  for (size_t k = 0; k < k_n; ++k) {
    w.Str(s.names[k]);
    w.Put(static_cast<uint8_t>(s.ok[k]));
    w.Put(s.weights[k]);
  }
  w.Put(s.weight_total);
  PutDoubles(w, s.weight_sum, at);
  for (size_t k = 0; k < k_n; ++k)
    for (size_t i : at) {
      w.Put(s.score(k, i));
      w.Str(s.ok[k] ? s.reason(k, i) : "");
    }
}

void DecodeScores(Reader& r, size_t m, PluginScores* s) {
  const size_t k_n = r.Count(13);
  s->n = m;
  s->explain_after = false;
  for (size_t k = 0; k < k_n; ++k) {
    s->names.push_back(r.Str());
    s->ok.push_back(r.Get<uint8_t>() != 0);
    s->weights.push_back(r.Get<double>());
  }
  s->weight_total = r.Get<double>();
  GetDoubles(r, m, &s->weight_sum);
  s->scores.resize(k_n * m);
  s->reasons.assign(k_n * m * kReasonCap, 0);
  for (size_t k = 0; k < k_n && r.ok(); ++k)
    for (size_t j = 0; j < m; ++j) {
      s->scores[k * m + j] = r.Get<float>();
      const std::string reason = r.Str();
      std::memcpy(s->reasons.data() + (k * m + j) * kReasonCap, reason.data(),
                  std::min(reason.size(), kReasonCap - 1));
    }
}

void EncodeJudgement(Writer& w, const Judgement& j, const std::vector<size_t>& at) {
  w.Put(j.max_value);
  for (size_t i : at) {
    w.Put(j.propensity[i]);
    w.Put(j.levers[i]);
    w.Put(j.priority[i]);
    w.Put(static_cast<uint8_t>(j.vetoed[i]));
    w.Put(static_cast<uint64_t>(j.notes[i].size()));
    for (const std::string& note : j.notes[i]) w.Str(note);
  }
}

void DecodeJudgement(Reader& r, size_t m, Judgement* j) {
  j->max_value = r.Get<double>();
  j->notes.resize(m);
  for (size_t i = 0; i < m && r.ok(); ++i) {
    j->propensity.push_back(r.Get<double>());
    j->levers.push_back(r.Get<double>());
    j->priority.push_back(r.Get<double>());
    j->vetoed.push_back(static_cast<char>(r.Get<uint8_t>()));
    const size_t notes = r.Count(4);
    for (size_t k = 0; k < notes; ++k) j->notes[i].push_back(r.Str());
  }
}

void EncodeResponses(Writer& w, const Responses* res, const std::vector<size_t>& at) {
  const bool active = res && res->active;
  w.Put(static_cast<uint8_t>(active));
  if (!active) return;
  w.Str(res->segment);
  for (size_t i : at) {
    w.Put(res->estimates[i]);
    w.Put(res->model_p[i]);
    w.Put(res->correction[i]);
  }
}

void DecodeResponses(Reader& r, size_t m, Responses* res) {
  res->active = r.Get<uint8_t>() != 0;
  if (!res->active) return;
  res->segment = r.Str();
  for (size_t i = 0; i < m && r.ok(); ++i) {
    res->estimates.push_back(r.Get<learning::ResponseEstimate>());
    res->model_p.push_back(r.Get<double>());
    res->correction.push_back(r.Get<double>());
  }
}

void EncodePicks(Writer& w, const PolicyPicks* p) {
  w.Put(static_cast<uint8_t>(p != nullptr));
  if (!p) return;
  w.Put(static_cast<uint64_t>(p->propensity.size()));
  for (size_t r = 0; r < p->propensity.size(); ++r) {
    w.Put(p->propensity[r]);
    w.Put(r < p->propensity_se.size() ? p->propensity_se[r] : 0.0);
    w.Put(static_cast<uint8_t>(r < p->explore.size() && p->explore[r]));
  }
  w.Put(p->samples);
}

void DecodePicks(Reader& r, Decoded* d) {
  d->has_picks = r.Get<uint8_t>() != 0;
  if (!d->has_picks) return;
  const size_t n = r.Count(17);
  for (size_t k = 0; k < n; ++k) {
    d->picks.propensity.push_back(r.Get<double>());
    d->picks.propensity_se.push_back(r.Get<double>());
    d->picks.explore.push_back(static_cast<char>(r.Get<uint8_t>()));
  }
  d->picks.samples = r.Get<uint32_t>();
}

std::optional<Decoded> Decode(std::string_view stored) {
  Reader r(stored);
  Decoded d;
  d.version = r.Get<uint64_t>();
  d.shown = r.Get<uint64_t>();
  d.totals.candidates = r.Get<uint64_t>();
  d.totals.suppressed_not_kept = r.Get<uint64_t>();
  d.placement.value_exponent = r.Get<double>();
  d.placement.policy.kind = static_cast<learning::PolicyConfig::Kind>(r.Get<uint8_t>());
  const size_t notes = r.Count(4);
  for (size_t k = 0; k < notes; ++k) d.finalize.push_back(r.Str());
  d.dropped = json::parse(r.Str(), nullptr, false);
  d.facts = json::parse(r.Str(), nullptr, false);
  const size_t m = r.Count(19);
  const size_t excluded = r.Count(7);
  // Three strings per candidate at most; reserved so c_str()s stay valid.
  d.strings.reserve(3 * (m + excluded));
  for (size_t j = 0; j < m && r.ok(); ++j) {
    d.candidates.list.push_back(GetCandidate(r, &d));
    d.candidates.context.push_back(r.Get<double>());
    d.candidates.values.push_back(r.Get<double>());
  }
  for (size_t k = 0; k < excluded && r.ok(); ++k) {
    tailor_candidate c = GetCandidate(r, &d);
    d.candidates.excluded.push_back({c, r.Str()});
  }
  d.candidates.excluded_total = r.Get<uint64_t>();
  DecodeScores(r, m, &d.scores);
  DecodeJudgement(r, m, &d.judgement);
  const size_t ranked = r.Count(24);
  for (size_t k = 0; k < ranked && r.ok(); ++k) {
    Ranked x{};
    x.candidate = r.Get<uint64_t>();
    x.id = r.Str();
    x.priority = r.Get<double>();
    x.category = r.Str();
    if (x.candidate >= m) return std::nullopt;
    d.ranked.push_back(std::move(x));
  }
  const size_t diversified = r.Count(32);
  for (size_t k = 0; k < diversified && r.ok(); ++k) {
    Diversified x{};
    x.candidate = r.Get<uint64_t>();
    x.similar_to = r.Get<uint64_t>();
    x.penalty = r.Get<double>();
    x.similarity = r.Get<double>();
    if (x.candidate >= m || x.similar_to >= m) return std::nullopt;
    d.diversified.push_back(x);
  }
  DecodeResponses(r, m, &d.responses);
  DecodePicks(r, &d);
  if (!r.ok() || d.dropped.is_discarded() || d.facts.is_discarded()) return std::nullopt;
  return d;
}

}  // namespace

std::string EncodeTrace(const ExplainInput& in, size_t shown, uint64_t snapshot_version,
                        const std::vector<std::string>& finalize_notes) {
  size_t vetoed = 0;
  std::vector<uint64_t> index;  // candidate -> place in the record
  const std::vector<size_t> at = Traced(in, &vetoed, &index);
  Writer w;
  w.Put(snapshot_version);
  w.Put(static_cast<uint64_t>(shown));
  w.Put(static_cast<uint64_t>(in.candidates.size()));
  w.Put(static_cast<uint64_t>(vetoed - std::min(vetoed, kTraceSuppressed)));
  w.Put(in.placement.value_exponent);
  w.Put(static_cast<uint8_t>(in.placement.policy.kind));
  w.Put(static_cast<uint64_t>(finalize_notes.size()));
  for (const std::string& note : finalize_notes) w.Str(note);
  w.Str(in.dropped.dump(-1, ' ', false, json::error_handler_t::replace));
  w.Str(in.facts.dump(-1, ' ', false, json::error_handler_t::replace));
  w.Put(static_cast<uint64_t>(at.size()));
  w.Put(static_cast<uint64_t>(in.candidates.excluded.size()));
  for (size_t i : at) {
    PutCandidate(w, in.candidates.list[i]);
    w.Put(in.candidates.context[i]);
    w.Put(in.candidates.values[i]);
  }
  for (const Candidates::Excluded& x : in.candidates.excluded) {
    PutCandidate(w, x.candidate);
    w.Str(x.note);
  }
  w.Put(static_cast<uint64_t>(in.candidates.excluded_total));
  EncodeScores(w, in.scores, at);
  EncodeJudgement(w, in.judgement, at);
  w.Put(static_cast<uint64_t>(in.ranked.size()));
  for (const Ranked& r : in.ranked) {
    w.Put(index[r.candidate]);
    w.Str(r.id);
    w.Put(r.priority);
    w.Str(r.category);
  }
  w.Put(static_cast<uint64_t>(in.diversified.size()));
  for (const Diversified& d : in.diversified) {
    w.Put(index[d.candidate]);
    w.Put(index[d.similar_to]);
    w.Put(d.penalty);
    w.Put(d.similarity);
  }
  EncodeResponses(w, in.responses, at);
  EncodePicks(w, in.picks);
  return w.Take();
}

bool IsEncodedTrace(std::string_view stored) {
  return stored.size() >= kMagicSize && stored.compare(0, kMagicSize, kMagic, kMagicSize) == 0;
}

std::optional<std::string> RenderTrace(std::string_view stored) {
  if (!IsEncodedTrace(stored)) return std::string(stored);
  std::optional<Decoded> d = Decode(stored);
  if (!d) return std::nullopt;
  const ExplainInput in{
      d->placement,   d->candidates, d->scores, d->judgement,  d->ranked,
      d->diversified, d->dropped,    d->facts,  &d->responses, d->has_picks ? &d->picks : nullptr};
  return DecisionTrace(in, d->shown, d->version, d->finalize, &d->totals)
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace tailor
