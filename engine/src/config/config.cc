#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>
#include <sstream>

#include "common/host_port.h"
#include "common/time.h"
#include "config/fields.h"
#include "pricing/pricing.h"

namespace tailor {
namespace {

using config::Fields;
using config::LoadYamlFile;
using config::Where;

bool ParseTime(Fields& f, const std::string& key, int64_t* out) {
  YAML::Node n = f.Get(key);
  if (!n) return false;
  if (n.IsScalar()) {
    if (auto ms = parse_iso8601_ms(n.Scalar())) {
      *out = *ms;
      return true;
    }
  }
  f.Error(n, key, "expected a date or time like 2026-11-23 or 2026-11-23T21:15:00Z");
  return false;
}

void ParseOffer(const YAML::Node& node, const std::string& file, const std::string& path, Offer* o,
                std::vector<std::string>* errors) {
  Fields f(node, file, path, errors);
  f.Str("id", &o->id, true);
  f.Str("name", &o->name);
  if (YAML::Node p = f.Get("promotes")) {
    Fields pf(p, file, f.Path("promotes"), errors);
    pf.Str("item", &o->item);
    pf.Str("category", &o->category);
    pf.Str("content", &o->content);
    pf.Done();
    int n = !o->item.empty() + !o->category.empty() + !o->content.empty();
    if (p.IsMap() && n != 1) pf.Error(p, "", "set exactly one of item, category, content");
  }
  f.Num("value", &o->value, 0, 1e12);
  f.StrList("channels", &o->channels);
  f.StrList("placements", &o->placements);
  if (YAML::Node v = f.Get("valid")) {
    Fields vf(v, file, f.Path("valid"), errors);
    ParseTime(vf, "from", &o->valid_from_ms);
    if (ParseTime(vf, "until", &o->valid_until_ms) && o->valid_until_ms < o->valid_from_ms)
      vf.Error(v, "until", "ends before it starts");
    vf.Done();
  }
  if (YAML::Node t = f.Get("tags")) {
    if (!t.IsMap()) {
      f.Error(t, "tags", "expected a mapping of tag: value");
    } else {
      for (const auto& kv : t) {
        if (!kv.second.IsScalar()) {
          f.Error(kv.second, "tags." + kv.first.Scalar(), "expected a scalar");
          continue;
        }
        o->tags[kv.first.Scalar()] = kv.second.Scalar();
      }
    }
  }
  if (YAML::Node d = f.Get("discount")) {
    Fields df(d, file, f.Path("discount"), errors);
    double lo = 0, hi = 0;
    bool has_lo = df.Num("min", &lo, 0, 1);
    bool has_hi = df.Num("max", &hi, 0, 1);
    // Pricing chooses among min, min + step, ..., max: at most 101 levels.
    df.Num("step", &o->discount_step, 0.01, 1);
    df.Done();
    o->discount_where = Where(file, d);
    if (has_lo || has_hi) {
      if (!has_hi) hi = lo;
      if (hi < lo)
        df.Error(d, "max", "must be at least min");
      else
        o->discount = std::make_pair(lo, hi);
    }
  }
  // Price and cost of one conversion, for the margin dynamic discounts maximise.
  double price = 0;
  if (f.Num("price", &price, 1e-9, 1e12)) o->price = price;
  if (f.Num("cost", &o->cost, 0, 1e12) && o->cost >= (o->price ? *o->price : o->value))
    f.Error(f.Get("cost"), "cost", "must be below the price (or value when no price is set)");
  if (YAML::Node w = f.Get("channel_weights")) {
    if (!w.IsMap()) {
      f.Error(w, "channel_weights", "expected a mapping of channel: weight");
    } else {
      Fields wf(w, file, f.Path("channel_weights"), errors);
      for (const auto& kv : w) {
        double x = 1;
        if (wf.Num(kv.first.Scalar(), &x, 0, 100)) o->channel_weights[kv.first.Scalar()] = x;
      }
      wf.Done();
    }
  }
  f.Done();
  YAML::Mark m = node.Mark();
  o->source = file + ":" + std::to_string(m.line + 1);
}

// Replaces `${config_dir}` in every string of a plugin's config block.
void SubstituteConfigDir(nlohmann::json* j, const std::string& dir) {
  static const std::string kVar = "${config_dir}";
  if (j->is_string()) {
    std::string v = j->get<std::string>();
    for (size_t at = v.find(kVar); at != std::string::npos; at = v.find(kVar, at + dir.size()))
      v.replace(at, kVar.size(), dir);
    *j = v;
  } else if (j->is_structured()) {
    for (auto& e : *j) SubstituteConfigDir(&e, dir);
  }
}

// Plugins get their config block as JSON. Plain scalars become numbers, booleans
// or null when they read as such; quoted scalars stay strings.
nlohmann::json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json j = nlohmann::json::object();
      for (const auto& kv : n) j[kv.first.Scalar()] = YamlToJson(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& e : n) j.push_back(YamlToJson(e));
      return j;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      int64_t i;
      double d;
      bool b;
      if (YAML::convert<int64_t>::decode(n, i)) return i;
      if (YAML::convert<double>::decode(n, d)) return d;
      if (YAML::convert<bool>::decode(n, b)) return b;
      if (s == "~" || s == "null") return nullptr;
      return s;
    }
    default:
      return nullptr;
  }
}

// `plugin_weights: {popularity: 1.0, cf: 0}`: each name must be a configured
// plugin, each weight a number in [0, 1000] like the plugins' own.
void ParsePluginWeights(const YAML::Node& w, const std::vector<PluginSpec>& plugins,
                        const std::string& file, const std::string& path,
                        std::vector<std::string>* errors, PlacementConfig* p) {
  Fields wf(w, file, path, errors);
  if (!w.IsMap()) return;  // Fields reported it
  std::string known;
  for (const PluginSpec& s : plugins) known += (known.empty() ? "" : ", ") + s.name;
  for (const auto& kv : w) {
    const std::string name = kv.first.Scalar();
    bool configured = false;
    for (const PluginSpec& s : plugins) configured |= s.name == name;
    if (!configured) {
      wf.Get(name);  // reported here, not again as an unknown key
      wf.Error(kv.first, name,
               "no plugin '" + name +
                   "' is configured (known: " + (known.empty() ? "none" : known) + ")");
      continue;
    }
    double x = 0;
    if (wf.Num(name, &x, 0, 1000)) p->plugin_weights[name] = x;
  }
  wf.Done();
}

// tailor.yaml `pricing:`: the guardrails of dynamic discounts. Fails
// closed: every inconsistency is an error at its key.
void ParsePricing(const YAML::Node& node, const std::string& path, PricingConfig* out,
                  std::vector<std::string>* errors) {
  Fields f(node, path, "pricing", errors, /*nonempty_strings=*/true);
  out->configured = true;
  f.Num("min_margin", &out->min_margin, 0, 0.999);
  f.StrList("protected", &out->protected_attrs);
  f.StrList("features", &out->features);
  f.Num("max_disparity", &out->max_disparity, 0, 1000);
  f.Str("group_by", &out->group_by);
  f.Integer("window", &out->window, 10, 10000000);
  f.Integer("min_group", &out->min_group, 1, 1000000);
  f.Num("prior_rate", &out->prior_rate, 0.0001, 0.9999);
  f.Num("prior_strength", &out->prior_strength, 0.01, 1e6);
  f.Done();
  if (!node.IsMap()) return;
  if (out->max_disparity != 0 && out->max_disparity < 1)
    f.Error(node["max_disparity"], "max_disparity",
            "a ratio of max group / min group: at least 1 (0 turns the cap off)");
  if (out->max_disparity > 0 && out->group_by.empty())
    f.Error(node, "group_by",
            "required with max_disparity (the attribute whose groups it compares)");
  if (!out->group_by.empty() && !pricing::IsProtected(out->protected_attrs, out->group_by))
    f.Error(node["group_by"], "group_by",
            "'" + out->group_by + "' is not in protected: the cap compares protected groups");
  for (size_t i = 0; i < out->features.size(); ++i) {
    if (!pricing::IsProtected(out->protected_attrs, out->features[i])) continue;
    YAML::Node at = node["features"].IsSequence() ? node["features"][i] : node["features"];
    f.Error(at, "features[" + std::to_string(i) + "]",
            "'" + out->features[i] + "' is protected: the pricing model may never use it");
  }
}

// Offers priced on some placement: their range must leave a level above the
// margin floor. A placement with `pricing: on` needs the guardrails block.
void CheckPricing(const EngineConfig& cfg, const std::map<std::string, std::string>& pricing_at,
                  std::vector<std::string>* errors) {
  for (const auto& [name, where] : pricing_at)
    if (!cfg.pricing.configured)
      errors->push_back(where + ": placements." + name +
                        ".pricing: needs the top-level `pricing:` block (its guardrails)");
  if (pricing_at.empty()) return;
  for (const Offer& o : cfg.offers) {
    if (!o.discount) continue;
    bool priced = o.placements.empty();
    for (const std::string& pl : o.placements) priced |= pricing_at.count(pl) > 0;
    if (!priced) continue;
    bool any = false;
    for (double d : pricing::Levels(o)) any |= pricing::PassesFloor(o, d, cfg.pricing.min_margin);
    if (!any)
      errors->push_back(o.discount_where + ": offer '" + o.id + "'.discount: even the smallest " +
                        "discount leaves less than pricing.min_margin of the price as margin");
  }
}

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return (std::filesystem::path(base_dir) / p).lexically_normal().string();
}

// tailor.yaml `suppression:`, a list of contact policies. Placements must be
// configured and the store must hold the events a policy looks back over
// (within_days + suppress_days); offer ids are checked against the catalog
// when the engine builds it (stored offers are not known here).
void ParseSuppression(const YAML::Node& list, Fields& top, const EngineConfig& cfg,
                      std::vector<SuppressionPolicy>* out, std::vector<std::string>* errors) {
  const std::string& file = top.file();
  if (!list.IsSequence()) {
    top.Error(list, "suppression", "expected a list of policies");
    return;
  }
  std::map<std::string, std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    Fields f(list[i], file, "suppression[" + std::to_string(i) + "]", errors,
             /*nonempty_strings=*/true);
    SuppressionPolicy p;
    p.where = Where(file, list[i]);
    f.Str("name", &p.name, true);
    if (f.StrList("offers", &p.offers)) p.offers_where = Where(file, list[i]["offers"]);
    f.StrList("items", &p.items);
    f.StrList("categories", &p.categories);
    if (f.StrList("placements", &p.placements)) {
      for (const std::string& pl : p.placements) {
        if (cfg.placements.count(pl)) continue;
        std::string known;
        for (const auto& [name, _] : cfg.placements) known += (known.empty() ? "" : ", ") + name;
        f.Error(list[i]["placements"], "placements",
                "unknown placement '" + pl + "' (known: " + known + ")");
      }
    }
    // Exactly one trigger: N dismissals, or N impressions without a click.
    const bool has_dismissals = list[i].IsMap() && list[i]["dismissals"];
    const bool has_impressions = list[i].IsMap() && list[i]["impressions_without_click"];
    f.Integer("dismissals", &p.threshold, 1, 1000000);
    f.Integer("impressions_without_click", &p.threshold, 1, 1000000);
    if (has_dismissals && has_impressions)
      f.Error(list[i]["impressions_without_click"], "impressions_without_click",
              "set one of dismissals, impressions_without_click, not both");
    else if (!has_dismissals && !has_impressions && list[i].IsMap())
      f.Error(list[i], "", "set one of dismissals, impressions_without_click");
    p.trigger = has_impressions ? SuppressionPolicy::Trigger::kImpressionsWithoutClick
                                : SuppressionPolicy::Trigger::kDismissals;
    const bool within = f.Integer("within_days", &p.within_days, 1, 36500, true);
    const bool suppress = f.Integer("suppress_days", &p.suppress_days, 1, 36500, true);
    f.Done();
    if (within && suppress &&
        p.within_days + p.suppress_days > static_cast<int64_t>(cfg.store.history_days))
      f.Error(list[i]["within_days"], "within_days",
              "within_days + suppress_days (" + std::to_string(p.within_days + p.suppress_days) +
                  ") exceed store.history_days (" + std::to_string(cfg.store.history_days) +
                  "): the events that suppress would not be loaded");
    if (p.name.empty()) continue;
    if (auto it = names.find(p.name); it != names.end()) {
      f.Error(list[i]["name"], "name",
              "policy '" + p.name + "' is already defined at " + it->second);
      continue;
    }
    names[p.name] = p.where;
    out->push_back(std::move(p));
  }
}

}  // namespace

std::string DirName(const std::string& path) {
  std::string d = std::filesystem::path(path).parent_path().string();
  return d.empty() ? "." : d;
}

bool LoadOffers(const std::string& path, std::vector<Offer>* out,
                std::vector<std::string>* errors) {
  size_t before = errors->size();
  auto root = LoadYamlFile(path, errors);
  if (!root) return false;
  Fields top(*root, path, "", errors);
  YAML::Node list = top.Get("offers");
  top.Done();
  if (!list) {
    errors->push_back(path + ":1:1: offers: required key is missing");
    return false;
  }
  if (!list.IsSequence()) {
    top.Error(list, "offers", "expected a list of offers");
    return false;
  }
  std::map<std::string, std::string> seen;
  for (size_t i = 0; i < list.size(); ++i) {
    Offer o;
    ParseOffer(list[i], path, "offers[" + std::to_string(i) + "]", &o, errors);
    if (o.id.empty()) continue;
    if (auto it = seen.find(o.id); it != seen.end()) {
      errors->push_back(Where(path, list[i]) + ": offers[" + std::to_string(i) + "].id: offer '" +
                        o.id + "' is already defined at " + it->second);
      continue;
    }
    seen[o.id] = o.source;
    out->push_back(std::move(o));
  }
  return errors->size() == before;
}

bool ParseOfferJson(const std::string& json_text, const std::string& source, Offer* out,
                    std::string* error) {
  std::vector<std::string> errors;
  try {
    // JSON is YAML, so stored offers share the YAML validation.
    YAML::Node node = YAML::Load(json_text);
    ParseOffer(node, source, "", out, &errors);
  } catch (const YAML::Exception& e) {
    errors.push_back(source + ": " + e.msg);
  }
  if (errors.empty()) return true;
  *error = errors.front();
  return false;
}

std::optional<EngineConfig> LoadConfig(const std::string& path,
                                       const std::string& plugin_dir_default,
                                       std::vector<std::string>* errors) {
  size_t before = errors->size();
  auto root = LoadYamlFile(path, errors);
  if (!root) return std::nullopt;
  EngineConfig cfg;
  cfg.file = path;
  const std::string base = DirName(path);
  Fields top(*root, path, "", errors);

  if (YAML::Node s = top.Get("service")) {
    Fields f(s, path, "service", errors);
    f.Str("requests", &cfg.service.requests);
    f.Str("events", &cfg.service.events);
    f.Str("outbound", &cfg.service.outbound);
    f.Integer("workers", &cfg.service.workers, 1, 256);
    f.Integer("max_message_bytes", &cfg.service.max_message_bytes, 256, 64 << 20);
    f.Bool("inline_when_idle", &cfg.service.inline_when_idle);
    f.Integer("max_in_flight", &cfg.service.max_in_flight, 1, 1'000'000);
    if (f.Str("http", &cfg.service.http) && !cfg.service.http.empty()) {
      std::string host;
      int port = 0;
      if (!SplitHostPort(cfg.service.http, &host, &port))
        errors->push_back(Where(path, s["http"]) + ": service.http: expected host:port, e.g. " +
                          "127.0.0.1:9464, got '" + cfg.service.http + "'");
    }
    if (YAML::Node d = f.Get("outbound_delivery")) {
      Fields df(d, path, "service.outbound_delivery", errors);
      OutboundDelivery& od = cfg.service.outbound_delivery;
      df.Bool("acks", &od.acks);
      df.Integer("retry_after_s", &od.retry_after_s, 1, int64_t{30} * 86400);
      df.Integer("max_retry_s", &od.max_retry_s, 1, int64_t{30} * 86400);
      df.Integer("max_attempts", &od.max_attempts, 1, 1000);
      df.Done();
    }
    f.Done();
  }
  if (YAML::Node s = top.Get("security")) {
    Fields f(s, path, "security", errors);
    SecurityConfig& sec = cfg.service.security;
    if (YAML::Node c = f.Get("curve")) {
      Fields cf(c, path, "security.curve", errors);
      if (cf.Str("server_key", &sec.server_key, true))
        sec.server_key = Resolve(base, sec.server_key);
      if (cf.Str("clients", &sec.clients, true)) sec.clients = Resolve(base, sec.clients);
      cf.Done();
    }
    f.Bool("insecure", &sec.insecure);
    f.Integer("max_event_age_s", &sec.max_event_age_s, 0, int64_t{100} * 365 * 86400);
    f.Integer("max_event_ahead_s", &sec.max_event_ahead_s, 0, int64_t{365} * 86400);
    f.Bool("allow_replay", &sec.allow_replay);
    std::string ids;
    if (f.Str("log_customer_ids", &ids)) {
      if (ids == "hashed" || ids == "plain")
        sec.log_plain_customer_ids = ids == "plain";
      else
        f.Error(s["log_customer_ids"], "log_customer_ids",
                "expected hashed or plain, got '" + ids + "'");
    }
    if (f.Str("log_key_file", &sec.log_key_file))
      sec.log_key_file = Resolve(base, sec.log_key_file);
    f.Done();
  }
  if (YAML::Node s = top.Get("store")) {
    Fields f(s, path, "store", errors);
    f.Str("path", &cfg.store.path);
    std::string sync;
    if (f.Str("synchronous", &sync)) {
      if (sync == "full" || sync == "normal")
        cfg.store.synchronous_full = sync == "full";
      else
        f.Error(s["synchronous"], "synchronous", "expected full or normal, got '" + sync + "'");
    }
    f.Integer("profile_cache", &cfg.store.profile_cache, 0, 100000000);
    f.Integer("recent_events", &cfg.store.recent_events, 0, 10000);
    f.Integer("history_days", &cfg.store.history_days, 1, 36500);
    f.Bool("durable_decisions", &cfg.store.durable_decisions);
    if (YAML::Node r = f.Get("retention")) {
      Fields rf(r, path, "store.retention", errors);
      Retention& ret = cfg.store.retention;
      rf.Integer("events", &ret.events_days, 0, 36500);
      rf.Integer("decisions", &ret.decisions_days, 0, 36500);
      rf.Integer("traces", &ret.traces_days, 0, 36500);
      rf.Integer("chat_text", &ret.chat_text_days, 0, 36500);
      rf.Done();
    }
    f.Done();
  }
  std::string plugin_dir;
  cfg.plugin_dir =
      top.Str("plugin_dir", &plugin_dir) ? Resolve(base, plugin_dir) : plugin_dir_default;
  if (YAML::Node list = top.Get("plugins")) {
    if (!list.IsSequence()) {
      top.Error(list, "plugins", "expected a list");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < list.size(); ++i) {
        Fields f(list[i], path, "plugins[" + std::to_string(i) + "]", errors);
        PluginSpec spec;
        std::string lib;
        f.Str("name", &spec.name, true);
        f.Str("path", &lib);
        f.Num("weight", &spec.weight, 0, 1000);
        f.Bool("train_on_start", &spec.train_on_start);
        f.Bool("train_in_background", &spec.train_in_background);
        f.Integer("budget_us", &spec.budget_us, 0, 60'000'000);
        f.Integer("max_overruns", &spec.max_overruns, 1, 1'000'000);
        if (YAML::Node c = f.Get("config")) {
          if (!c.IsMap()) {
            f.Error(c, "config", "expected a mapping");
          } else {
            // `${config_dir}` in a string lets plugin files sit beside tailor.yaml.
            nlohmann::json j = YamlToJson(c);
            SubstituteConfigDir(&j, base);
            // Bytes yaml-cpp let through that are not UTF-8: replaced.
            spec.config_json = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          }
        }
        f.Done();
        if (spec.name.empty()) continue;
        if (!names.insert(spec.name).second)
          f.Error(list[i], "name", "plugin '" + spec.name + "' is listed twice");
        // A bare name means build/plugins/tailor_<name>.so; a path is relative to
        // this file.
        spec.path =
            lib.empty() ? cfg.plugin_dir + "/tailor_" + spec.name + ".so" : Resolve(base, lib);
        cfg.plugins.push_back(std::move(spec));
      }
    }
  }
  std::map<std::string, std::string> pricing_at;  // placements with pricing: on
  if (YAML::Node pl = top.Get("placements")) {
    if (!pl.IsMap()) {
      top.Error(pl, "placements", "expected a mapping of placement name: settings");
    } else {
      for (const auto& kv : pl) {
        PlacementConfig p;
        p.name = kv.first.Scalar();
        Fields f(kv.second, path, "placements." + p.name, errors);
        std::string kind = "offers";
        if (f.Str("kind", &kind) && kind != "offers" && kind != "items")
          f.Error(kv.second["kind"], "kind", "expected offers or items, got '" + kind + "'");
        p.kind = kind == "items" ? PlacementConfig::Kind::kItems : PlacementConfig::Kind::kOffers;
        p.value_exponent = p.kind == PlacementConfig::Kind::kItems ? 0.0 : 1.0;
        f.Num("weight", &p.weight, 0, 100);
        f.Num("value_exponent", &p.value_exponent, 0, 10);
        f.Integer("max_candidates", &p.max_candidates, 1, 1000000);
        p.rules_candidates = p.kind == PlacementConfig::Kind::kItems ? 200 : 0;
        f.Integer("rules_candidates", &p.rules_candidates, 0, 1000000);
        f.StrList("channels", &p.channels);
        // `diversity: 0.07` is short for `diversity: {lambda: 0.07}`.
        if (YAML::Node d = f.Get("diversity"); d && d.IsScalar()) {
          f.Num("diversity", &p.diversity, 0, 10);
        } else if (d) {
          Fields df(d, path, f.Path("diversity"), errors);
          df.Num("lambda", &p.diversity, 0, 10);
          df.Integer("pool", &p.diversity_pool, 2, 1000);
          if (df.Str("by", &p.diversity_by) && !p.diversity_by.empty()) {
            bool known = false;
            for (const PluginSpec& s : cfg.plugins) known |= s.name == p.diversity_by;
            if (!known) df.Error(d["by"], "by", "no plugin '" + p.diversity_by + "' is configured");
          }
          df.Done();
        }
        if (YAML::Node pn = f.Get("policy")) config::ParsePolicy(f, pn, errors, &p.policy);
        if (YAML::Node r = f.Get("response")) {
          Fields rf(r, path, f.Path("response"), errors, /*nonempty_strings=*/true);
          rf.Bool("learn", &p.response.learn);
          rf.Num("half_life_days", &p.response.half_life_days, 0.01, 36500);
          rf.Num("prior_strength", &p.response.prior_strength, 0, 1e6);
          rf.StrList("segment_traits", &p.response.segment_traits);
          rf.Done();
        }
        if (YAML::Node w = f.Get("plugin_weights"))
          ParsePluginWeights(w, cfg.plugins, path, f.Path("plugin_weights"), errors, &p);
        std::string impressions;
        if (f.Str("impressions", &impressions)) {
          if (impressions == "explicit")
            p.impressions = PlacementConfig::Impressions::kExplicit;
          else if (impressions != "on_decide")
            f.Error(kv.second["impressions"], "impressions",
                    "expected on_decide or explicit, got '" + impressions + "'");
        }
        f.Num("attribution_hours", &p.attribution_hours, 0, 24 * 365);
        if (f.Bool("pricing", &p.pricing) && p.pricing) {
          if (p.kind != PlacementConfig::Kind::kOffers)
            f.Error(kv.second["pricing"], "pricing", "only offers placements price discounts");
          pricing_at[p.name] = Where(path, kv.second["pricing"]);
        }
        std::string mode;
        if (f.Str("mode", &mode)) {
          if (mode == "shadow")
            p.mode = PlacementConfig::Mode::kShadow;
          else if (mode != "live")
            f.Error(kv.second["mode"], "mode", "expected live or shadow, got '" + mode + "'");
        }
        f.Done();
        cfg.placements[p.name] = std::move(p);
      }
    }
  }
  top.Num("fallback_propensity", &cfg.fallback_propensity, 0, 1);
  std::string dir;
  if (top.Str("rules", &dir)) cfg.rules_dir = Resolve(base, dir);
  if (top.Str("journeys", &dir)) cfg.journeys_dir = Resolve(base, dir);
  if (top.Str("experiments", &dir)) {
    cfg.experiments_file = Resolve(base, dir);
  } else if (std::error_code ec; std::filesystem::exists(Resolve(base, "experiments.yaml"), ec)) {
    cfg.experiments_file = Resolve(base, "experiments.yaml");
  }
  if (YAML::Node rl = top.Get("rule_limits")) {
    Fields f(rl, path, "rule_limits", errors);
    f.Integer("instructions", &cfg.rule_limits.instructions, 1000, 1000000000);
    f.Integer("time_us", &cfg.rule_limits.time_us, 10, 10000000);
    f.Integer("request_time_us", &cfg.rule_limits.request_time_us, 100, 60000000);
    size_t kb = cfg.rule_limits.call_memory >> 10, mb = cfg.rule_limits.state_memory >> 20;
    if (f.Integer("call_memory_kb", &kb, 16, 1 << 20)) cfg.rule_limits.call_memory = kb << 10;
    if (f.Integer("state_memory_mb", &mb, 1, 4096)) cfg.rule_limits.state_memory = mb << 20;
    f.Done();
  }
  if (YAML::Node sn = top.Get("sensitive")) {
    Fields f(sn, path, "sensitive", errors, /*nonempty_strings=*/true);
    f.Str("tag", &cfg.sensitive.tag);
    f.Str("consent", &cfg.sensitive.consent);
    f.Integer("min_age", &cfg.sensitive.min_age, 0, 150);
    f.Done();
  }
  if (YAML::Node sp = top.Get("suppression"))
    ParseSuppression(sp, top, cfg, &cfg.suppression, errors);
  if (YAML::Node pr = top.Get("pricing")) ParsePricing(pr, path, &cfg.pricing, errors);
  std::string offers;
  if (top.Str("offers", &offers)) {
    cfg.offers_file = Resolve(base, offers);
    LoadOffers(cfg.offers_file, &cfg.offers, errors);
  }
  top.Done();
  for (const Offer& o : cfg.offers) {
    for (const std::string& pl : o.placements) {
      if (!cfg.placements.count(pl)) {
        std::string known;
        for (const auto& [name, _] : cfg.placements) known += (known.empty() ? "" : ", ") + name;
        errors->push_back(o.source + ":1: offer '" + o.id + "': unknown placement '" + pl +
                          "' (known: " + known + ")");
      }
    }
  }
  CheckPricing(cfg, pricing_at, errors);
  if (cfg.placements.empty())
    errors->push_back(path + ":1:1: placements: define at least one placement");
  if (errors->size() != before) return std::nullopt;
  return cfg;
}

namespace config {

void ParsePolicy(Fields& placement, const YAML::Node& n, std::vector<std::string>* errors,
                 learning::PolicyConfig* out) {
  const auto kind = [&](Fields& f, const YAML::Node& at, const std::string& key,
                        const std::string& name) {
    if (!learning::ParsePolicyKind(name, &out->kind))
      f.Error(at, key, "expected greedy, thompson, linear_ts or epsilon, got '" + name + "'");
  };
  if (n.IsScalar()) {
    kind(placement, n, "policy", n.Scalar());
    return;
  }
  Fields f(n, placement.file(), placement.Path("policy"), errors);
  std::string name;
  if (f.Str("kind", &name)) kind(f, n["kind"], "kind", name);
  f.Num("exploration", &out->exploration, 0, 1);
  f.Integer("samples", &out->samples, 1, 4096);
  f.Done();
}

}  // namespace config
}  // namespace tailor
