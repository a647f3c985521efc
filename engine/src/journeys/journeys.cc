#include "journeys/journeys.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/fields.h"

namespace tailor {
namespace {

// Mirrors the event types the protocol accepts (service/protocol.cc), so a
// trigger on a misspelt event type is an error instead of never firing.
const std::vector<std::string> kEventTypes = {"view",        "click",   "add_to_cart", "purchase",
                                              "return",      "chat",    "search",      "impression",
                                              "offer_click", "convert", "dismiss"};

// Contacts are kept (and loaded) for this long, so no cap may look further back.
constexpr int64_t kMaxCapWindowMs = 90LL * 86'400'000;
constexpr int64_t kMaxDelayMs = 365LL * 86'400'000;

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

using config::Where;

// config::Fields with the journey files' stricter strings (no empty names or
// lists) and durations.
class Fields : public config::Fields {
 public:
  Fields(const YAML::Node& node, std::string file, std::string path,
         std::vector<std::string>* errors)
      : config::Fields(node, std::move(file), std::move(path), errors, /*nonempty_strings=*/true) {}

  // A duration like 2d; required keys report their absence.
  bool Duration(const std::string& key, int64_t* out, int64_t max_ms, bool required) {
    YAML::Node n = Get(key);
    if (!n) {
      if (required) Missing(key);
      return false;
    }
    std::optional<int64_t> ms;
    if (n.IsScalar()) ms = ParseJourneyDuration(n.Scalar());
    if (!ms) {
      Error(n, key,
            "expected a duration like 30m, 12h, 2d or 1w, got '" +
                (n.IsScalar() ? n.Scalar() : std::string("a ") + (n.IsMap() ? "mapping" : "list")) +
                "'");
      return false;
    }
    if (*ms > max_ms) {
      Error(n, key, "must be at most " + std::to_string(max_ms / 86'400'000) + "d");
      return false;
    }
    *out = *ms;
    return true;
  }
};

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// Checks every listed offer id against the catalog; the message lists the
// known ids so the marketer can fix a typo without opening offers.yaml.
void CheckOffers(Fields& f, const std::string& key, const std::vector<std::string>& ids,
                 const std::set<std::string>& known) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (known.count(ids[i])) continue;
    YAML::Node n = f.node()[key];
    YAML::Node at = n.IsSequence() && i < n.size() ? n[i] : n;
    f.Error(at, key,
            "unknown offer '" + ids[i] +
                "' (known: " + Join(std::vector<std::string>(known.begin(), known.end())) + ")");
  }
}

// Reads the event conditions shared by entry triggers and transitions from
// the same mapping (the caller declares its own extra keys on f).
void ParseTrigger(Fields& f, const std::set<std::string>& offers, JourneyTrigger* t) {
  if (f.StrList("event", &t->events)) {
    for (size_t i = 0; i < t->events.size(); ++i) {
      if (std::find(kEventTypes.begin(), kEventTypes.end(), t->events[i]) != kEventTypes.end())
        continue;
      YAML::Node n = f.node()["event"];
      f.Error(n.IsSequence() ? n[i] : n, "event",
              "unknown event type '" + t->events[i] + "' (valid: " + Join(kEventTypes) + ")");
    }
  }
  f.StrList("category", &t->categories);
  f.StrList("item", &t->items);
  if (f.StrList("offer", &t->offers)) CheckOffers(f, "offer", t->offers, offers);
  f.StrList("channel", &t->channels);
  f.StrList("intent", &t->intents);
  f.Num("min_value", &t->min_value);
  if (f.Num("max_value", &t->max_value) && t->min_value && *t->max_value < *t->min_value)
    f.Error(f.node()["max_value"], "max_value", "must be at least min_value");
  f.Bool("new_customer", &t->new_customer);
  t->source = Where(f.file(), f.node());
}

// Resolves a stage name; reports an unknown one listing the journey's stages.
std::optional<size_t> StageRef(Fields& f, const std::string& key, const YAML::Node& at,
                               const std::string& name, const Journey& j) {
  int i = j.StageIndex(name);
  if (i >= 0) return static_cast<size_t>(i);
  std::vector<std::string> names;
  for (const auto& s : j.stages) names.push_back(s.name);
  f.Error(at, key, "unknown stage '" + name + "' (stages: " + Join(names) + ")");
  return std::nullopt;
}

void ParseStage(const YAML::Node& node, const std::string& file, const std::string& path,
                const std::set<std::string>& offers, JourneyStage* s, std::set<std::string>* steps,
                std::vector<std::string>* errors) {
  Fields f(node, file, path, errors);
  if (f.Str("name", &s->name, true) && !ValidName(s->name))
    f.Error(node["name"], "name", "use letters, digits, _ and - (at most 64)");
  f.Str("description", &s->description);
  if (f.StrList("offers", &s->offers)) CheckOffers(f, "offers", s->offers, offers);
  f.StrList("categories", &s->categories);
  f.StrList("channels", &s->channels);
  if (YAML::Node caps = f.Get("caps")) {
    if (!caps.IsSequence()) {
      f.Error(caps, "caps", "expected a list like [{channel: email, max: 2, per: 7d}]");
    } else {
      for (size_t i = 0; i < caps.size(); ++i) {
        Fields cf(caps[i], file, f.Path("caps[" + std::to_string(i) + "]"), errors);
        JourneyCap c;
        cf.Str("channel", &c.channel);
        bool ok = cf.Integer("max", &c.max, 0, 1000, true);
        ok = cf.Duration("per", &c.per_ms, kMaxCapWindowMs, true) && ok;
        if (ok && c.per_ms <= 0) {
          cf.Error(caps[i]["per"], "per", "must be longer than 0");
          ok = false;
        }
        cf.Done();
        if (!ok) continue;
        c.per_text = caps[i]["per"].Scalar();
        s->caps.push_back(std::move(c));
      }
    }
  }
  if (YAML::Node list = f.Get("steps")) {
    if (!list.IsSequence()) {
      f.Error(list, "steps", "expected a list of steps");
    } else {
      for (size_t i = 0; i < list.size(); ++i) {
        Fields sf(list[i], file, f.Path("steps[" + std::to_string(i) + "]"), errors);
        JourneyStep st;
        if (sf.Str("name", &st.name, true)) {
          if (!ValidName(st.name))
            sf.Error(list[i]["name"], "name", "use letters, digits, _ and - (at most 64)");
          else if (!steps->insert(st.name).second)
            sf.Error(list[i]["name"], "name",
                     "step '" + st.name + "' is already defined in this journey");
        }
        sf.Duration("delay", &st.delay_ms, kMaxDelayMs, true);
        sf.Str("channel", &st.channel, true);
        if (sf.Str("offer", &st.offer, true)) CheckOffers(sf, "offer", {st.offer}, offers);
        sf.Bool("requires_stage", &st.requires_stage);
        sf.Done();
        s->steps.push_back(std::move(st));
      }
    }
  }
  f.Done();
}

void ParseJourney(const YAML::Node& root, const std::string& file,
                  const std::set<std::string>& offers, Journey* j,
                  std::vector<std::string>* errors) {
  j->file = file;
  Fields top(root, file, "", errors);
  if (!top.Str("name", &j->name)) j->name = std::filesystem::path(file).stem().string();
  if (!ValidName(j->name))
    top.Error(root["name"] ? root["name"] : root, "name",
              "journey name '" + j->name + "': use letters, digits, _ and - (at most 64)");
  top.Str("description", &j->description);
  top.Bool("reentry", &j->reentry);

  YAML::Node stages = top.Get("stages");
  if (!stages) {
    if (root.IsMap()) top.Error(root, "stages", "required key is missing");
  } else if (!stages.IsSequence() || stages.size() == 0) {
    top.Error(stages, "stages", "expected a non-empty list of stages");
  } else {
    std::set<std::string> stage_names, step_names;
    for (size_t i = 0; i < stages.size(); ++i) {
      JourneyStage s;
      std::string path = "stages[" + std::to_string(i) + "]";
      ParseStage(stages[i], file, path, offers, &s, &step_names, errors);
      if (!s.name.empty() && !stage_names.insert(s.name).second)
        errors->push_back(Where(file, stages[i]["name"]) + ": " + path + ".name: stage '" + s.name +
                          "' is already defined in this journey");
      j->stages.push_back(std::move(s));
    }
  }

  YAML::Node entry = top.Get("entry");
  if (!entry) {
    if (root.IsMap()) top.Error(root, "entry", "required key is missing (how customers enter)");
  } else if (!entry.IsSequence() || entry.size() == 0) {
    top.Error(entry, "entry", "expected a non-empty list of triggers");
  } else {
    for (size_t i = 0; i < entry.size(); ++i) {
      Fields f(entry[i], file, "entry[" + std::to_string(i) + "]", errors);
      JourneyEntry e;
      ParseTrigger(f, offers, &e.trigger);
      if (e.trigger.events.empty() && entry[i].IsMap() && !f.node()["event"])
        f.Error(entry[i], "event", "required key is missing");
      std::string stage;
      if (f.Str("stage", &stage)) {
        if (auto idx = StageRef(f, "stage", entry[i]["stage"], stage, *j)) e.stage = *idx;
      }
      f.Done();
      j->entries.push_back(std::move(e));
    }
  }

  if (YAML::Node list = top.Get("transitions")) {
    if (!list.IsSequence()) {
      top.Error(list, "transitions", "expected a list of transitions");
    } else {
      for (size_t i = 0; i < list.size(); ++i) {
        Fields f(list[i], file, "transitions[" + std::to_string(i) + "]", errors);
        JourneyTransition t;
        t.source = Where(file, list[i]);
        std::vector<std::string> from;
        if (f.StrList("from", &from)) {
          YAML::Node n = list[i]["from"];
          for (size_t k = 0; k < from.size(); ++k) {
            if (auto idx = StageRef(f, "from", n.IsSequence() ? n[k] : n, from[k], *j))
              t.from.push_back(*idx);
          }
        }
        std::string to;
        bool has_to = f.Str("to", &to);
        f.Bool("exit", &t.exit);
        if (has_to == t.exit && list[i].IsMap())
          f.Error(list[i], "to", "set exactly one of to: <stage> or exit: true");
        if (has_to) {
          if (auto idx = StageRef(f, "to", list[i]["to"], to, *j)) t.to = *idx;
        }
        bool has_inactive = f.Duration("inactive", &t.inactive_ms, kMaxDelayMs, false);
        if (has_inactive && t.inactive_ms <= 0)
          f.Error(list[i]["inactive"], "inactive", "must be longer than 0");
        JourneyTrigger trig;
        ParseTrigger(f, offers, &trig);
        bool has_event = static_cast<bool>(list[i]["event"]);
        if (list[i].IsMap() && has_event == has_inactive)
          f.Error(list[i], "event", "set exactly one of event: <type> or inactive: <duration>");
        if (!has_event &&
            (!trig.categories.empty() || !trig.items.empty() || !trig.offers.empty() ||
             !trig.channels.empty() || trig.min_value || trig.max_value))
          f.Error(list[i], "", "event conditions need an event: key");
        if (has_event) t.trigger = std::move(trig);
        f.Done();
        j->transitions.push_back(std::move(t));
      }
    }
  }
  top.Done();
}

std::optional<YAML::Node> ParseYaml(const std::string& file, const std::string& text,
                                    std::vector<std::string>* errors) {
  return config::ParseYamlText(file, text, errors);
}

}  // namespace

std::optional<int64_t> ParseJourneyDuration(const std::string& text) {
  if (text.size() < 2 || text.size() > 12) return std::nullopt;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    n = n * 10 + (text[i] - '0');
  }
  int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1000;
      break;
    case 'm':
      unit = 60'000;
      break;
    case 'h':
      unit = 3'600'000;
      break;
    case 'd':
      unit = 86'400'000;
      break;
    case 'w':
      unit = 7 * 86'400'000LL;
      break;
    default:
      return std::nullopt;
  }
  return n * unit;
}

int Journey::StageIndex(const std::string& stage) const {
  for (size_t i = 0; i < stages.size(); ++i)
    if (stages[i].name == stage) return static_cast<int>(i);
  return -1;
}

const Journey* Journeys::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &journeys_[it->second];
}

std::shared_ptr<const Journeys> Journeys::FromSources(
    const std::vector<std::pair<std::string, std::string>>& sources,
    const std::set<std::string>& known_offer_ids, std::vector<std::string>* errors) {
  size_t before = errors->size();
  auto out = std::make_shared<Journeys>();
  std::map<std::string, std::string> defined;  // name -> file
  for (const auto& [file, text] : sources) {
    auto root = ParseYaml(file, text, errors);
    if (!root) continue;
    if (!root->IsMap()) {
      errors->push_back(Where(file, *root) + ": expected a mapping with name, stages, entry");
      continue;
    }
    Journey j;
    try {
      ParseJourney(*root, file, known_offer_ids, &j, errors);
    } catch (const YAML::Exception& e) {
      // A shape no check above foresaw: an error with its place, not a crash.
      errors->push_back(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": " + e.msg);
      continue;
    }
    if (auto it = defined.find(j.name); it != defined.end()) {
      errors->push_back(Where(file, (*root)["name"] ? (*root)["name"] : *root) +
                        ": name: journey '" + j.name + "' is already defined in " + it->second);
      continue;
    }
    defined[j.name] = file;
    for (const auto& s : j.stages)
      for (const auto& c : s.caps) out->longest_cap_ms_ = std::max(out->longest_cap_ms_, c.per_ms);
    out->index_[j.name] = out->journeys_.size();
    out->journeys_.push_back(std::move(j));
  }
  if (errors->size() != before) return nullptr;
  return out;
}

std::shared_ptr<const Journeys> Journeys::Load(const std::string& dir,
                                               const std::set<std::string>& known_offer_ids,
                                               std::vector<std::string>* errors) {
  std::error_code ec;
  std::vector<std::string> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string ext = it->path().extension().string();
    if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml"))
      files.push_back(it->path().string());
  }
  if (ec) {
    errors->push_back(dir + ":1:1: cannot read journeys directory: " + ec.message());
    return nullptr;
  }
  std::sort(files.begin(), files.end());
  std::vector<std::pair<std::string, std::string>> sources;
  size_t before = errors->size();
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      errors->push_back(f + ":1:1: cannot read file");
      continue;
    }
    sources.emplace_back(f, text.str());
  }
  auto out = FromSources(sources, known_offer_ids, errors);
  return errors->size() == before ? out : nullptr;
}

}  // namespace tailor
