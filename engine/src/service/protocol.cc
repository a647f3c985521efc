#include "service/protocol.h"

#include <algorithm>
#include <cstdint>

#include "common/json_limits.h"
#include "common/time.h"
#include "tailor/messages.h"

namespace tailor {
namespace {

using nlohmann::json;

constexpr size_t kMaxIdLength = 128;
constexpr int kMaxLimit = 100;
// Entries in each of decide's exclude, include_categories, exclude_categories.
constexpr size_t kMaxFilterEntries = 1000;

ApiError Bad(std::string field, std::string message) {
  return ApiError{TAILOR_ERR_BAD_REQUEST, std::move(field), std::move(message)};
}

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    default:
      return "a number";
  }
}

// Field-by-field reader of one JSON object. The first problem wins; later calls
// become no-ops so that a handler can read every field and check once.
class Fields {
 public:
  explicit Fields(const json& obj) : obj_(obj) {}

  bool Id(const char* key, std::string* out, bool required) {
    if (!Str(key, out, required, kMaxIdLength)) return false;
    if (!out->empty() || !Has(key)) return true;
    return Fail(Bad(key, std::string(key) + " must not be empty"));
  }

  bool Str(const char* key, std::string* out, bool required, size_t max_len) {
    seen_.push_back(key);
    if (err_) return false;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      if (required) return Fail(Bad(key, std::string("missing required field '") + key + "'"));
      return true;
    }
    if (!it->is_string())
      return Fail(Bad(key, std::string(key) + " must be a string, got " + TypeName(*it)));
    const std::string& s = it->get_ref<const std::string&>();
    if (s.size() > max_len)
      return Fail(
          Bad(key, std::string(key) + " is longer than " + std::to_string(max_len) + " bytes"));
    *out = s;
    return true;
  }

  bool Number(const char* key, double* out, double lo, double hi) {
    seen_.push_back(key);
    if (err_) return false;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return true;
    if (!it->is_number())
      return Fail(Bad(key, std::string(key) + " must be a number, got " + TypeName(*it)));
    double v = it->get<double>();
    if (!(v >= lo && v <= hi))
      return Fail(Bad(key, std::string(key) + " must be between " + std::to_string(lo) + " and " +
                               std::to_string(hi)));
    *out = v;
    return true;
  }

  bool Integer(const char* key, int* out, int lo, int hi) {
    int64_t v = *out;
    if (!Int64(key, &v, lo, hi)) return false;
    *out = static_cast<int>(v);
    return true;
  }

  bool Int64(const char* key, int64_t* out, int64_t lo, int64_t hi) {
    seen_.push_back(key);
    if (err_) return false;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return true;
    if (!it->is_number_integer())
      return Fail(Bad(key, std::string(key) + " must be an integer, got " + TypeName(*it)));
    int64_t v = it->get<int64_t>();
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX)) v = INT64_MAX;
    if (v < lo || v > hi)
      return Fail(Bad(key, std::string(key) + " must be between " + std::to_string(lo) + " and " +
                               std::to_string(hi)));
    *out = v;
    return true;
  }

  // A required non-empty array of at most max_entries positive integers.
  bool IdNumbers(const char* key, std::vector<int64_t>* out, size_t max_entries) {
    seen_.push_back(key);
    if (err_) return false;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null())
      return Fail(Bad(key, std::string("missing required field '") + key + "'"));
    if (!it->is_array() || it->empty())
      return Fail(Bad(
          key, std::string(key) + " must be a non-empty array of integers, got " + TypeName(*it)));
    if (it->size() > max_entries)
      return Fail(Bad(key, std::string(key) + " has " + std::to_string(it->size()) +
                               " entries; the limit is " + std::to_string(max_entries)));
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      if (!e.is_number_integer() || e.get<int64_t>() <= 0)
        return Fail(Bad(key, std::string(key) + "[" + std::to_string(i) +
                                 "] must be a positive integer, got " + e.dump()));
      out->push_back(e.get<int64_t>());
    }
    return true;
  }

  // "ts": an ISO 8601 string or epoch milliseconds.
  bool Time(const char* key, std::optional<int64_t>* out) {
    seen_.push_back(key);
    if (err_) return false;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return true;
    if (it->is_number_integer()) {
      *out = it->get<int64_t>();
      return true;
    }
    if (it->is_string()) {
      if (auto ms = parse_iso8601_ms(it->get_ref<const std::string&>())) {
        *out = *ms;
        return true;
      }
    }
    return Fail(Bad(
        key, std::string(key) + " must be an ISO 8601 time like 2026-11-23T21:15:00Z or epoch ms"));
  }

  // A list of at most max_entries non-empty strings of at most kMaxIdLength
  // bytes; an empty list is refused when nonempty (leave the field out).
  bool StrList(const char* key, std::vector<std::string>* out, size_t max_entries, bool nonempty) {
    seen_.push_back(key);
    if (err_) return false;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return true;
    if (!it->is_array())
      return Fail(
          Bad(key, std::string(key) + " must be an array of strings, got " + TypeName(*it)));
    if (it->size() > max_entries)
      return Fail(Bad(key, std::string(key) + " has " + std::to_string(it->size()) +
                               " entries; the limit is " + std::to_string(max_entries)));
    if (nonempty && it->empty())
      return Fail(Bad(key, std::string(key) + " must not be empty (leave it out for no filter)"));
    out->clear();
    out->reserve(it->size());
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      const std::string at = std::string(key) + "[" + std::to_string(i) + "]";
      if (!e.is_string()) return Fail(Bad(key, at + " must be a string, got " + TypeName(e)));
      const std::string& s = e.get_ref<const std::string&>();
      if (s.empty()) return Fail(Bad(key, at + " must not be empty"));
      if (s.size() > kMaxIdLength)
        return Fail(Bad(key, at + " is longer than " + std::to_string(kMaxIdLength) + " bytes"));
      out->push_back(s);
    }
    return true;
  }

  bool Object(const char* key, json* out) {
    seen_.push_back(key);
    if (err_) return false;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return true;
    if (!it->is_object())
      return Fail(Bad(key, std::string(key) + " must be an object, got " + TypeName(*it)));
    *out = *it;
    return true;
  }

  // Unknown fields are errors: a typo ("custmer") should not pass silently.
  void NoOthers() {
    if (err_) return;
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (std::find(seen_.begin(), seen_.end(), it.key()) != seen_.end()) continue;
      std::string known;
      for (const auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
      Fail(Bad(it.key(), "unknown field '" + it.key() + "' (known: " + known + ")"));
      return;
    }
  }

  bool Fail(ApiError e) {
    if (!err_) err_ = std::move(e);
    return false;
  }
  const std::optional<ApiError>& error() const { return err_; }
  bool Has(const char* key) const { return obj_.contains(key); }

 private:
  const json& obj_;
  std::vector<std::string> seen_{"v", "type", "id"};
  std::optional<ApiError> err_;
};

// decide's "shadow": {"offers": [...]} or {"items": [...]}, the application's
// own choice in its order: distinct ids, at most kMaxLimit of them.
void ParseShadow(Fields& f, const json& msg, std::optional<ShadowChoice>* out) {
  json obj;
  if (!f.Object("shadow", &obj) || !msg.contains("shadow") || msg["shadow"].is_null()) return;
  const bool offers = obj.contains("offers"), items = obj.contains("items");
  if (offers == items) {
    f.Fail(Bad("shadow", "shadow must hold exactly one of offers, items"));
    return;
  }
  if (obj.size() != 1) {
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (it.key() != "offers" && it.key() != "items") {
        f.Fail(Bad("shadow." + it.key(),
                   "unknown field 'shadow." + it.key() + "' (known: offers, items)"));
        return;
      }
  }
  const std::string key = offers ? "offers" : "items";
  const std::string field = "shadow." + key;
  const json& list = obj[key];
  if (!list.is_array()) {
    f.Fail(Bad(field, field + " must be an array of ids, got " + TypeName(list)));
    return;
  }
  if (list.size() > static_cast<size_t>(kMaxLimit)) {
    f.Fail(Bad(field, field + " has " + std::to_string(list.size()) + " entries; the limit is " +
                          std::to_string(kMaxLimit)));
    return;
  }
  ShadowChoice choice;
  choice.items = items;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = field + "[" + std::to_string(i) + "]";
    if (!list[i].is_string() || list[i].get_ref<const std::string&>().empty()) {
      f.Fail(Bad(at, list[i].is_string() ? at + " must not be empty"
                                         : at + " must be a string, got " + TypeName(list[i])));
      return;
    }
    const std::string& id = list[i].get_ref<const std::string&>();
    if (id.size() > kMaxIdLength) {
      f.Fail(Bad(at, at + " is longer than " + std::to_string(kMaxIdLength) + " bytes"));
      return;
    }
    if (std::find(choice.ids.begin(), choice.ids.end(), id) != choice.ids.end()) {
      f.Fail(Bad(at, at + " repeats '" + id + "'"));
      return;
    }
    choice.ids.push_back(id);
  }
  *out = std::move(choice);
}

}  // namespace

const std::vector<std::string>& KnownEventTypes() {
  static const std::vector<std::string> kTypes = {
      "view",   "click",      "add_to_cart", "purchase", "return", "chat",
      "search", "impression", "offer_click", "convert",  "dismiss"};
  return kTypes;
}

std::optional<ApiError> ParseEvent(const json& msg, Event* out) {
  Fields f(msg);
  f.Id("customer", &out->customer_id, true);
  f.Str("event", &out->type, true, 32);
  if (!f.error()) {
    const auto& types = KnownEventTypes();
    if (std::find(types.begin(), types.end(), out->type) == types.end()) {
      std::string known;
      for (const auto& t : types) known += (known.empty() ? "" : ", ") + t;
      f.Fail(Bad("event", "unknown event '" + out->type + "' (known: " + known + ")"));
    }
  }
  f.Id("item", &out->item_id, false);
  f.Id("offer", &out->offer_id, false);
  f.Id("decision", &out->decision_id, false);
  f.Str("channel", &out->channel, false, 64);
  f.Str("text", &out->text, false, 4096);
  std::optional<int64_t> ts;
  f.Time("ts", &ts);
  f.Number("value", &out->value, -1e12, 1e12);
  f.Number("quantity", &out->quantity, -1e9, 1e9);
  json props = json::object();
  f.Object("properties", &props);
  f.NoOthers();
  if (f.error()) return f.error();
  if (out->type == "chat" && out->text.empty())
    return Bad("text", "a chat event needs the chat line in 'text'");
  out->ts_ms = ts ? *ts : now_ms();
  out->properties_json = props.dump();
  return std::nullopt;
}

namespace {

// {"events":[{event}, ...]}: all or nothing, so a client retries the whole
// batch; an error names the event's index, e.g. events[3].customer.
std::optional<ApiError> ParseEventBatch(const json& msg, std::vector<Event>* out) {
  for (const auto& [key, value] : msg.items())
    if (key != "v" && key != "type" && key != "id" && key != "events")
      return Bad(key, "unknown field '" + key + "' (an events message has v, type, id, events)");
  auto it = msg.find("events");
  if (it == msg.end()) return Bad("events", "missing required field 'events' (an array of events)");
  if (!it->is_array())
    return Bad("events", std::string("events must be an array, got ") + TypeName(*it));
  if (it->empty()) return Bad("events", "events must not be empty");
  if (it->size() > kMaxBatchEvents)
    return Bad("events", "events holds " + std::to_string(it->size()) + " events; the limit is " +
                             std::to_string(kMaxBatchEvents));
  out->resize(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string at = "events[" + std::to_string(i) + "]";
    const json& e = (*it)[i];
    if (!e.is_object()) return Bad(at, at + " must be an object, got " + std::string(TypeName(e)));
    if (auto err = ParseEvent(e, &(*out)[i])) {
      err->field = err->field.empty() ? at : at + "." + err->field;
      return err;
    }
  }
  return std::nullopt;
}

}  // namespace

std::variant<Request, ApiError> ParseRequest(std::string_view body, size_t max_bytes,
                                             std::string* id) {
  if (body.size() > max_bytes)
    return ApiError{TAILOR_ERR_TOO_LARGE, "",
                    "message is " + std::to_string(body.size()) + " bytes; the limit is " +
                        std::to_string(max_bytes)};
  // Depth first, before anything is built: every later walk over the message
  // (copies, dumps, the rules' Lua tables) is then bounded.
  if (JsonDepth d = ScanJsonDepth(body); d.depth > kMaxJsonDepth) {
    if (d.id.size() <= kMaxIdLength) *id = d.id;
    const std::string what = d.field.empty() ? "message" : d.field;
    return Bad(d.field, what + " is nested deeper than " + std::to_string(kMaxJsonDepth) +
                            " levels (the limit, counting the message itself)");
  }
  json msg = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded()) return Bad("", "message is not valid JSON");
  if (!msg.is_object())
    return Bad("", std::string("message must be a JSON object, got ") + TypeName(msg));
  // Read the id first so that every later error can carry it.
  if (auto it = msg.find("id"); it != msg.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().size() > kMaxIdLength)
      return Bad("id", "id must be a string of at most 128 bytes");
    *id = it->get<std::string>();
  }
  auto v = msg.find("v");
  if (v == msg.end()) return Bad("v", "missing required field 'v' (schema version, use 1)");
  if (!v->is_number_integer())
    return Bad("v", std::string("v must be an integer, got ") + TypeName(*v));
  if (v->get<int64_t>() != TAILOR_SCHEMA_VERSION)
    return ApiError{TAILOR_ERR_UNSUPPORTED_VERSION, "v",
                    "schema version " + v->dump() + " is not supported (this server speaks 1)"};
  auto t = msg.find("type");
  if (t == msg.end()) return Bad("type", "missing required field 'type'");
  if (!t->is_string())
    return Bad("type", std::string("type must be a string, got ") + TypeName(*t));
  const std::string& type = t->get_ref<const std::string&>();

  Request req;
  req.id = *id;
  Fields f(msg);
  if (type == TAILOR_MSG_DECIDE) {
    req.type = Request::Type::kDecide;
    DecideRequest& d = req.decide;
    d.id = *id;
    f.Id("customer", &d.customer, false);
    f.Str("channel", &d.channel, true, 64);
    f.Str("placement", &d.placement, true, 64);
    f.Integer("limit", &d.limit, 1, kMaxLimit);
    f.Object("context", &d.context);
    f.Time("ts", &d.now_ms);
    f.StrList("exclude", &d.exclude, kMaxFilterEntries, false);
    f.StrList("include_categories", &d.include_categories, kMaxFilterEntries, true);
    f.StrList("exclude_categories", &d.exclude_categories, kMaxFilterEntries, false);
    ParseShadow(f, msg, &d.shadow);
    f.NoOthers();
    if (!f.error() && d.channel.empty()) f.Fail(Bad("channel", "channel must not be empty"));
    if (!f.error() && d.placement.empty()) f.Fail(Bad("placement", "placement must not be empty"));
  } else if (type == TAILOR_MSG_EVENT) {
    req.type = Request::Type::kEvent;
    json body_fields = msg;
    body_fields.erase("v");
    body_fields.erase("type");
    body_fields.erase("id");
    if (auto e = ParseEvent(body_fields, &req.event)) return *e;
  } else if (type == TAILOR_MSG_EVENTS) {
    req.type = Request::Type::kEvents;
    if (auto e = ParseEventBatch(msg, &req.events)) return *e;
  } else if (type == TAILOR_MSG_PROFILE_GET) {
    req.type = Request::Type::kProfileGet;
    f.Id("customer", &req.customer, true);
    f.NoOthers();
  } else if (type == TAILOR_MSG_PROFILE_DELETE) {
    req.type = Request::Type::kProfileDelete;
    f.Id("customer", &req.customer, true);
    f.NoOthers();
  } else if (type == TAILOR_MSG_EXPLAIN) {
    req.type = Request::Type::kExplain;
    f.Id("decision", &req.decision, true);
    f.NoOthers();
  } else if (type == TAILOR_MSG_RULES_RELOAD) {
    req.type = Request::Type::kReload;
    f.NoOthers();
  } else if (type == TAILOR_MSG_OUTBOUND_ACK) {
    req.type = Request::Type::kOutboundAck;
    f.IdNumbers("ids", &req.outbound_ids, kMaxOutboundBatch);
    f.NoOthers();
  } else if (type == TAILOR_MSG_OUTBOUND_PENDING) {
    req.type = Request::Type::kOutboundPending;
    f.Int64("after", &req.outbound_after, 0, INT64_MAX);
    int limit = static_cast<int>(req.outbound_limit);
    f.Integer("limit", &limit, 1, static_cast<int>(kMaxOutboundBatch));
    req.outbound_limit = static_cast<size_t>(limit);
    f.NoOthers();
  } else if (type == TAILOR_MSG_HEALTH || type == TAILOR_MSG_STATS) {
    req.type = type == TAILOR_MSG_HEALTH ? Request::Type::kHealth : Request::Type::kStats;
    f.NoOthers();
  } else {
    return ApiError{TAILOR_ERR_UNKNOWN_TYPE, "type",
                    "unknown message type '" + type +
                        "' (known: decide, event, events, profile.get, profile.delete, explain, "
                        "rules.reload, health, stats, outbound.ack, outbound.pending)"};
  }
  if (f.error()) return *f.error();
  return req;
}

const char* RequestTypeName(Request::Type t) {
  switch (t) {
    case Request::Type::kDecide:
      return TAILOR_MSG_DECIDE;
    case Request::Type::kEvent:
      return TAILOR_MSG_EVENT;
    case Request::Type::kEvents:
      return TAILOR_MSG_EVENTS;
    case Request::Type::kProfileGet:
      return TAILOR_MSG_PROFILE_GET;
    case Request::Type::kProfileDelete:
      return TAILOR_MSG_PROFILE_DELETE;
    case Request::Type::kHealth:
      return TAILOR_MSG_HEALTH;
    case Request::Type::kStats:
      return TAILOR_MSG_STATS;
    case Request::Type::kExplain:
      return TAILOR_MSG_EXPLAIN;
    case Request::Type::kReload:
      return TAILOR_MSG_RULES_RELOAD;
    case Request::Type::kOutboundAck:
      return TAILOR_MSG_OUTBOUND_ACK;
    case Request::Type::kOutboundPending:
      return TAILOR_MSG_OUTBOUND_PENDING;
  }
  return "unknown";
}

std::string ErrorReply(const std::string& id, const ApiError& e) {
  json j = {{"v", TAILOR_SCHEMA_VERSION},
            {"id", id.empty() ? json(nullptr) : json(id)},
            {"error", {{"code", e.code}, {"field", e.field}, {"message", e.message}}}};
  // The id and field of a message that did not parse are its raw bytes,
  // which need not be UTF-8: replaced, never thrown (a throw here took the
  // whole service down; found by tests/fuzz/request_fuzz.cc).
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace tailor
