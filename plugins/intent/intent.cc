// intent: classifies the customer's chat line or search query (decide's
// context.message, else the newest chat event) and turns the intent into
// per-candidate scores through config/intents.yaml (boost / suppress offers
// and categories). See README.md.
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "intent/intent_model.h"
#include "tailor/plugin_io.hpp"
#include "tailor/plugin_sdk.hpp"
#include "tailor/plugin_util.hpp"

namespace {

using tailor::sdk::Host;
using tailor::sdk::InvalidConfig;
using tailor::sdk::NotFound;
using tailor::sdk::Reasons;
using tailor::sdk::Request;
namespace intent = tailor::intent;

constexpr char kMagic[] = "tailor-intent-plugin 1\n";
constexpr int64_t kMsPerMinute = 60000;

// What one intent does to candidates.
struct Action {
  std::set<std::string, std::less<>> boost_offers, boost_categories;
  std::set<std::string, std::less<>> suppress_offers, suppress_categories;
  bool suppress_others = false;  // e.g. cancel_contract: no upsell at all
  std::string journey;           // a journey trigger, named in the reason
  double strength = 1.0;         // how far a confident intent moves a score
  std::string where;             // file:line of its definition
};

struct Mapping {
  std::map<std::string, Action, std::less<>> intents;
  double threshold = -1;  // >= 0 overrides the trained threshold
  int64_t memory_minutes = 30;
  double neutral = 0.5;  // the base a boost or suppression moves from
  // Candidates the intent says nothing about (or no intent at all): no
  // opinion by default, so P is left to the other plugins.
  bool abstain = true;
};

std::string Where(const std::string& file, const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return file + ":1:1";
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

// Parses intents.yaml; every problem is reported at once as
// file:line:col: key.path: message, unknown keys listing the valid ones.
Mapping ParseMapping(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw InvalidConfig(file + ": cannot open (" + std::strerror(errno) + ")");
  } catch (const YAML::Exception& e) {
    throw InvalidConfig(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  Mapping m;
  std::vector<std::string> errors;
  auto err = [&](const YAML::Node& n, const std::string& path, const std::string& msg) {
    errors.push_back(Where(file, n) + ": " + path + ": " + msg);
  };
  auto unknown = [&](const YAML::Node& map, const std::string& path,
                     std::initializer_list<const char*> valid) {
    for (const auto& kv : map) {
      const std::string k = kv.first.Scalar();
      bool ok = false;
      std::string list;
      for (const char* v : valid) {
        ok |= k == v;
        list += (list.empty() ? "" : ", ") + std::string(v);
      }
      if (!ok)
        err(kv.first, path.empty() ? k : path + "." + k, "unknown key (valid: " + list + ")");
    }
  };
  auto number = [&](const YAML::Node& n, const std::string& path, double lo, double hi,
                    double* out) {
    double v;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || v < lo || v > hi) {
      std::ostringstream os;
      os << "expected a number between " << lo << " and " << hi;
      err(n, path, os.str());
      return;
    }
    *out = v;
  };
  auto strings = [&](const YAML::Node& n, const std::string& path,
                     std::set<std::string, std::less<>>* out) {
    if (n.IsScalar()) {
      out->insert(n.Scalar());
      return;
    }
    if (!n.IsSequence()) return err(n, path, "expected a list of strings");
    for (const auto& e : n) {
      if (!e.IsScalar()) return err(e, path, "expected a list of strings");
      out->insert(e.Scalar());
    }
  };
  if (!root.IsMap()) throw InvalidConfig(Where(file, root) + ": expected a mapping with 'intents'");
  unknown(root, "", {"threshold", "memory_minutes", "neutral", "abstain", "intents"});
  if (root["threshold"]) number(root["threshold"], "threshold", 0, 1, &m.threshold);
  if (root["neutral"]) number(root["neutral"], "neutral", 0, 1, &m.neutral);
  if (YAML::Node a = root["abstain"]) {
    if (!a.IsScalar() || (a.Scalar() != "true" && a.Scalar() != "false"))
      err(a, "abstain", "expected true or false");
    else
      m.abstain = a.Scalar() == "true";
  }
  if (root["memory_minutes"]) {
    double v = 30;
    number(root["memory_minutes"], "memory_minutes", 0, 525600, &v);
    m.memory_minutes = static_cast<int64_t>(v);
  }
  const YAML::Node intents = root["intents"];
  if (!intents) {
    err(root, "intents", "required key is missing");
  } else if (!intents.IsMap()) {
    err(intents, "intents", "expected a mapping of intent name -> action");
  } else {
    for (const auto& kv : intents) {
      const std::string name = kv.first.Scalar();
      const std::string path = "intents." + name;
      const YAML::Node a = kv.second;
      Action act;
      act.where = Where(file, kv.first);
      if (!a.IsMap()) {
        err(a, path, "expected a mapping (boost, suppress, suppress_others, journey, strength)");
        continue;
      }
      unknown(a, path, {"boost", "suppress", "suppress_others", "journey", "strength"});
      for (const char* part : {"boost", "suppress"}) {
        const YAML::Node b = a[part];
        if (!b) continue;
        const std::string bp = path + "." + part;
        if (!b.IsMap()) {
          err(b, bp, "expected a mapping with offers and/or categories");
          continue;
        }
        unknown(b, bp, {"offers", "categories"});
        const bool boost = std::strcmp(part, "boost") == 0;
        if (b["offers"])
          strings(b["offers"], bp + ".offers", boost ? &act.boost_offers : &act.suppress_offers);
        if (b["categories"]) {
          strings(b["categories"], bp + ".categories",
                  boost ? &act.boost_categories : &act.suppress_categories);
        }
      }
      if (const YAML::Node s = a["suppress_others"]) {
        if (!s.IsScalar() || !YAML::convert<bool>::decode(s, act.suppress_others))
          err(s, path + ".suppress_others", "expected true or false");
      }
      if (const YAML::Node j = a["journey"]) {
        if (!j.IsScalar()) {
          err(j, path + ".journey", "expected a journey name");
        } else {
          act.journey = j.Scalar();
        }
      }
      if (a["strength"]) number(a["strength"], path + ".strength", 0, 1, &act.strength);
      m.intents.emplace(name, std::move(act));
    }
  }
  if (!errors.empty()) {
    std::string msg;
    for (const auto& e : errors) msg += (msg.empty() ? "" : "\n") + e;
    throw InvalidConfig(msg);
  }
  return m;
}

struct Config {
  std::string intents_file;  // "" = no mapping: intents are named, scores stay neutral
  std::string data;          // CSV text,label for Train; "" = nothing to train on
  intent::Options options;
  Mapping mapping;
};

Config ParseConfig(std::string_view text) {
  using nlohmann::json;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw InvalidConfig("intent config: expected a JSON object");
  Config c;
  std::vector<std::string> errors;
  for (const auto& item : j.items()) {
    // Not a structured binding: clang 14 lets no lambda capture one.
    const std::string& k = item.key();
    const json& v = item.value();
    auto num = [&](double lo, double hi) -> double {
      if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi) {
        errors.push_back(k + ": expected a number in [" + std::to_string(lo) + ", " +
                         std::to_string(hi) + "], got " + v.dump());
        return lo;
      }
      return v.get<double>();
    };
    if (k == "intents" || k == "data" || k == "embeddings") {
      if (!v.is_string()) {
        errors.push_back(k + ": expected a file path");
        continue;
      }
      (k == "intents" ? c.intents_file
       : k == "data"  ? c.data
                      : c.options.embeddings) = v.get<std::string>();
    } else if (k == "embedding_words") {
      c.options.embedding_words = static_cast<int>(num(0, 1e7));
    } else if (k == "c") {
      c.options.c = num(1e-4, 1e4);
    } else if (k == "hash_bits") {
      c.options.hash_bits = static_cast<int>(num(10, 30));
    } else if (k == "min_count") {
      c.options.min_count = static_cast<int>(num(1, 1000));
    } else if (k == "threads") {
      c.options.threads = static_cast<int>(num(1, 64));
    } else if (k == "oos_recall") {
      c.options.oos_recall_target = num(0, 1);
    } else {
      errors.push_back("unknown key '" + k +
                       "' (known: intents, data, embeddings, embedding_words, c, hash_bits, "
                       "min_count, threads, oos_recall)");
    }
  }
  tailor::sdk::ThrowIfConfigErrors("intent", errors);
  if (!c.intents_file.empty()) c.mapping = ParseMapping(c.intents_file);
  return c;
}

// The message a decision is about: context.message, else the newest chat
// event within memory_minutes among the request's recent events.
std::string MessageOf(const Request& req, int64_t memory_ms) {
  const auto ctx = nlohmann::json::parse(req.context_json(), nullptr, false);
  if (ctx.is_object()) {
    auto it = ctx.find("message");
    if (it != ctx.end() && it->is_string()) return it->get<std::string>();
  }
  const auto recent = req.recent();
  for (size_t i = recent.size(); i-- > 0;) {
    const tailor_event_view& e = recent[i];
    if (e.type == nullptr || std::strcmp(e.type, "chat") != 0 || e.text == nullptr) continue;
    if (req.now_ms() - e.ts_ms <= memory_ms) return e.text;
    break;
  }
  return {};
}

class Intent {
 public:
  // Observe classifies outside any lock and stores one customer's intent
  // under its shard's lock.
  static constexpr bool kConcurrentObserve = true;

  static std::unique_ptr<Intent> Create(std::string_view config_json, const Host& host) {
    return std::unique_ptr<Intent>(new Intent(ParseConfig(config_json), host));
  }

  void Score(const Request& req, std::span<const tailor_candidate> candidates,
             std::span<float> scores, Reasons& reasons) const {
    const double neutral = cfg_.mapping.neutral;
    const float untouched =
        cfg_.mapping.abstain ? TAILOR_SCORE_ABSTAIN : static_cast<float>(neutral);
    for (float& s : scores) s = untouched;
    if (!model_.trained() || candidates.empty()) return;

    // The request's own message, else the customer's latest observed chat.
    Seen seen;
    const int64_t memory_ms = cfg_.mapping.memory_minutes * kMsPerMinute;
    if (std::string msg = MessageOf(req, memory_ms); !msg.empty()) {
      seen = Classify(msg, req.now_ms());
    } else if (auto id = req.customer_id()) {
      std::optional<Seen> last = last_.Get(*id);
      if (!last || req.now_ms() - last->ts_ms > memory_ms) return;
      seen = *last;
    } else {
      return;
    }
    if (seen.label < 0) return;
    const std::string& name = model_.labels()[static_cast<size_t>(seen.label)];
    char head[96];
    std::snprintf(head, sizeof head, "intent %s (%.2f)", name.c_str(), seen.confidence);
    if (seen.label == model_.oos_index() || seen.rejected) {
      for (size_t i = 0; i < candidates.size() && reasons.enabled(); ++i)
        reasons.Set(i, std::string(head) + ": out of scope");
      return;
    }
    auto act = cfg_.mapping.intents.find(name);
    if (act == cfg_.mapping.intents.end()) {
      for (size_t i = 0; i < candidates.size() && reasons.enabled(); ++i)
        reasons.Set(i, std::string(head) + ": no action");
      return;
    }
    const Action& a = act->second;
    // A confident intent moves the score from neutral towards 1 (boost) or
    // 0 (suppress) by confidence x strength.
    const double move = seen.confidence * a.strength;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const tailor_candidate& c = candidates[i];
      auto in = [](const auto& set, const char* v) { return v != nullptr && set.count(v) > 0; };
      std::string what;
      if (in(a.boost_offers, c.offer_id) || in(a.boost_categories, c.category)) {
        scores[i] = static_cast<float>(neutral + (1 - neutral) * move);
        what = "boosts ";
      } else if (in(a.suppress_offers, c.offer_id) || in(a.suppress_categories, c.category) ||
                 a.suppress_others) {
        scores[i] = static_cast<float>(neutral * (1 - move));
        what = "suppresses ";
      } else {
        if (reasons.enabled()) reasons.Set(i, std::string(head) + ": not affected");
        continue;
      }
      if (!reasons.enabled()) continue;  // a scoring pass: reasons come later, for a few
      what += c.offer_id != nullptr ? c.offer_id : (c.category != nullptr ? c.category : "this");
      if (!a.journey.empty()) what += "; journey " + a.journey;
      reasons.Set(i, std::string(head) + ": " + what);
    }
  }

  // ABI 1.1: the intent of the request's own message (context.message) for
  // rules and `why`: {"context": {"intent": NAME, "intent_confidence": C,
  // "intent_journey": J, "intent_suppress_others": true}}, the last two only
  // when intents.yaml maps them. Out of scope is intent "oos"; its confidence
  // is the oos class's probability, or 1 - the top intent's probability when
  // the threshold rejected that intent. Nothing without a message or model.
  std::string Annotate(const Request& req) const {
    if (!model_.trained()) return {};
    const auto ctx = nlohmann::json::parse(req.context_json(), nullptr, false);
    if (!ctx.is_object()) return {};
    auto m = ctx.find("message");
    if (m == ctx.end() || !m->is_string() || m->get_ref<const std::string&>().empty()) return {};
    const intent::Prediction p = model_.Predict(m->get_ref<const std::string&>());
    const bool oos = p.rejected || p.label < 0 || p.label == model_.oos_index();
    nlohmann::json out;
    out["intent"] =
        oos ? model_.options().oos_label : model_.labels()[static_cast<size_t>(p.label)];
    const double confidence = p.rejected ? 1.0 - p.confidence : p.confidence;
    out["intent_confidence"] = std::round(confidence * 1e4) / 1e4;
    if (!oos) {
      auto act = cfg_.mapping.intents.find(out["intent"].get_ref<const std::string&>());
      if (act != cfg_.mapping.intents.end()) {
        if (!act->second.journey.empty()) out["intent_journey"] = act->second.journey;
        if (act->second.suppress_others) out["intent_suppress_others"] = true;
      }
    }
    return nlohmann::json{{"context", std::move(out)}}.dump();
  }

  // Remembers the intent of each customer's newest chat line.
  void Observe(const tailor_event_view& ev) {
    if (!model_.trained() || ev.type == nullptr || std::strcmp(ev.type, "chat") != 0 ||
        ev.text == nullptr) {
      return;
    }
    const Seen s = Classify(ev.text, ev.ts_ms);  // the costly part, outside any lock
    last_.Update(ev.customer_id, [&](Seen& slot) {
      if (s.ts_ms >= slot.ts_ms) slot = s;
    });
  }

  // Trains from config "data" (CSV text,label; `tailor train intent --data`).
  // Erasure: the customer's newest chat intent goes.
  void Forget(std::string_view customer_id) { last_.Erase(customer_id); }

  void Train() {
    if (cfg_.data.empty()) {
      host_.Log(TAILOR_LOG_WARN,
                "no training data configured (config key 'data'); model unchanged");
      return;
    }
    std::vector<intent::Example> data;
    try {
      data = intent::ReadCsv(cfg_.data);
    } catch (const std::exception& e) {
      throw InvalidConfig(e.what());
    }
    host_.Log(TAILOR_LOG_INFO, "training on " + std::to_string(data.size()) + " examples from " +
                                   cfg_.data + " (threshold and temperature on a held-out tenth)");
    intent::Model m = intent::TrainCalibrated(data, cfg_.options, [&](int k, int n, double) {
      if (k == n || k % 25 == 0) {
        host_.Log(TAILOR_LOG_INFO, "intents " + std::to_string(k) + "/" + std::to_string(n));
      }
    });
    Adopt(std::move(m));
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "trained: %zu intents%s, %zu features, temperature %.1f, threshold %.3f",
                  model_.labels().size(), model_.oos_index() >= 0 ? " (with oos)" : "",
                  model_.features(), model_.temperature(), model_.threshold());
    host_.Log(TAILOR_LOG_INFO, buf);
  }

  void Save(const std::string& path) const {
    tailor::sdk::SaveModelFile(path, [&](std::ostream& out) {
      out << kMagic << (model_.trained() ? "trained\n" : "untrained\n");
      if (model_.trained()) model_.Save(out);
    });
  }

  void Load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw NotFound("cannot open model file " + path + ": " + std::strerror(errno));
    std::string magic(sizeof kMagic - 1, '\0'), state;
    in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
    if (!in || magic != kMagic) throw std::runtime_error(path + ": not an intent plugin model");
    std::getline(in, state);
    if (state == "untrained") {
      Adopt(intent::Model());
    } else if (state == "trained") {
      Adopt(intent::Model::Load(in, path));
    } else {
      throw std::runtime_error(path + ": corrupt intent plugin model");
    }
  }

 private:
  struct Seen {
    int label = -1;
    float confidence = 0;
    bool rejected = false;
    int64_t ts_ms = INT64_MIN;
  };

  Intent(Config cfg, const Host& host) : cfg_(std::move(cfg)), host_(host) {}

  Seen Classify(std::string_view text, int64_t ts_ms) const {
    const intent::Prediction p = model_.Predict(text);
    Seen s;
    s.label = p.rejected ? (model_.oos_index() >= 0 ? model_.oos_index() : p.top) : p.label;
    s.confidence = p.confidence;
    s.rejected = p.rejected;
    s.ts_ms = ts_ms;
    return s;
  }

  void Adopt(intent::Model m) {
    if (m.trained() && cfg_.mapping.threshold >= 0) m.set_threshold(cfg_.mapping.threshold);
    if (m.trained()) {
      for (const auto& [name, a] : cfg_.mapping.intents) {
        if (m.index_of(name) < 0) {
          host_.Log(TAILOR_LOG_WARN, a.where + ": intents." + name +
                                         ": the model has no such intent; this action never fires");
        }
      }
    }
    model_ = std::move(m);
    last_.Clear();
  }

  Config cfg_;
  const Host& host_;
  intent::Model model_;
  tailor::sdk::ShardedMap<Seen> last_;  // customer -> newest chat intent
};

}  // namespace

TAILOR_PLUGIN(Intent, "intent", "1.0.0");
