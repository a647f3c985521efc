#include "ingest/importer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/json_limits.h"
#include "common/time.h"
#include "ingest/csv.h"
#include "store/store.h"

namespace tailor::ingest {

namespace {

using json = nlohmann::json;

// A CSV cell is bytes, not always UTF-8: bad bytes become U+FFFD in the stored
// JSON rather than an exception that would end the import.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

constexpr int64_t kProgressEveryRows = 4096;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Quotes a user's value for a message, shortened so one bad cell cannot flood
// the terminal.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  if (s.size() > kMax) return "'" + std::string(s.substr(0, kMax)) + "...'";
  return "'" + std::string(s) + "'";
}

// True for a value that means "not given": JSON null or an empty/blank string.
bool Absent(const json* v) {
  return v == nullptr || v->is_null() ||
         (v->is_string() && Trim(v->get_ref<const std::string&>()).empty());
}

const json* Find(const json& row, const char* key) {
  auto it = row.find(key);
  return it == row.end() ? nullptr : &*it;
}

// Any scalar as text; CSV cells are strings already.
std::string Text(const json* v) {
  if (Absent(v)) return {};
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

// Strict decimal: the whole (trimmed) text must be a finite number.
bool ParseDouble(std::string_view text, double* out) {
  std::string s(Trim(text));
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(d)) return false;
  // strtod also takes hex floats, "inf" and "nan"; a data file means none of them.
  for (char c : s) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' ||
          c == 'e' || c == 'E'))
      return false;
  }
  *out = d;
  return true;
}

bool Number(const json* v, const char* name, std::optional<double>* out, std::string* err) {
  out->reset();
  if (Absent(v)) return true;
  if (v->is_number()) {
    double d = v->get<double>();
    if (!std::isfinite(d)) {
      *err = std::string(name) + ": not a finite number";
      return false;
    }
    *out = d;
    return true;
  }
  double d = 0;
  if (v->is_string() && ParseDouble(v->get_ref<const std::string&>(), &d)) {
    *out = d;
    return true;
  }
  *err = std::string(name) + ": " + Quote(Text(v)) + " is not a number";
  return false;
}

bool Bool(const json* v, const std::string& name, std::optional<bool>* out, std::string* err) {
  out->reset();
  if (Absent(v)) return true;
  if (v->is_boolean()) {
    *out = v->get<bool>();
    return true;
  }
  if (v->is_number_integer() || v->is_number_unsigned()) {
    int64_t i = v->get<int64_t>();
    if (i == 0 || i == 1) {
      *out = i == 1;
      return true;
    }
  }
  if (v->is_string()) {
    std::string s = Lower(Trim(v->get_ref<const std::string&>()));
    if (s == "true" || s == "1" || s == "yes" || s == "y" || s == "t") {
      *out = true;
      return true;
    }
    if (s == "false" || s == "0" || s == "no" || s == "n" || s == "f") {
      *out = false;
      return true;
    }
  }
  *err = name + ": " + Quote(Text(v)) + " is not a boolean (true/false, 1/0, yes/no)";
  return false;
}

// Parses JSON text, turning the library's exception into a message. Text
// nested deeper than kMaxJsonDepth is refused before parsing: what lands in
// the store is later copied, dumped and handed to rules recursively.
bool ParseJson(std::string_view text, json* out, std::string* err) {
  if (ScanJsonDepth(text).depth > kMaxJsonDepth) {
    *err = "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels (the limit)";
    return false;
  }
  try {
    *out = json::parse(text);
    return true;
  } catch (const json::parse_error& e) {
    // Drop the "[json.exception.parse_error.101] " prefix; the rest says where.
    std::string what = e.what();
    size_t close = what.find("] ");
    *err = close == std::string::npos ? what : what.substr(close + 2);
    return false;
  }
}

// A JSON object given either as an object (JSONL) or as JSON text (CSV).
// Absent means an empty object.
bool Object(const json* v, const char* name, json* out, std::string* err) {
  *out = json::object();
  if (Absent(v)) return true;
  if (v->is_object()) {
    *out = *v;
    return true;
  }
  if (v->is_string()) {
    std::string perr;
    if (!ParseJson(v->get_ref<const std::string&>(), out, &perr)) {
      *err = std::string(name) + ": bad JSON: " + perr;
      return false;
    }
    if (out->is_object()) return true;
  }
  *err = std::string(name) + ": expected a JSON object";
  return false;
}

// A timestamp as ISO 8601 text or epoch milliseconds. Numbers below 1e11 are
// taken as epoch seconds: as milliseconds they would fall in 1973.
bool Timestamp(const json* v, const char* name, std::optional<int64_t>* out, std::string* err) {
  out->reset();
  if (Absent(v)) return true;
  auto from_number = [&](double d) {
    if (std::fabs(d) < 1e11) d *= 1000;
    *out = static_cast<int64_t>(std::llround(d));
  };
  if (v->is_number()) {
    from_number(v->get<double>());
    return true;
  }
  if (v->is_string()) {
    std::string_view s = Trim(v->get_ref<const std::string&>());
    double d = 0;
    if (ParseDouble(s, &d)) {
      from_number(d);
      return true;
    }
    if (auto ms = parse_iso8601_ms(s)) {
      *out = *ms;
      return true;
    }
  }
  *err = std::string(name) + ": " + Quote(Text(v)) +
         " is not an ISO 8601 time (2026-11-23T21:15:00Z) or epoch milliseconds";
  return false;
}

// A CSV cell copied into attributes/properties: numbers and true/false become
// JSON numbers and booleans, except numbers with leading zeros (zip codes,
// phone numbers) which stay text.
json DetectScalar(const std::string& cell) {
  std::string_view s = Trim(cell);
  if (s == "true") return true;
  if (s == "false") return false;
  std::string_view digits = s;
  if (!digits.empty() && (digits.front() == '-' || digits.front() == '+')) digits.remove_prefix(1);
  bool leading_zero = digits.size() > 1 && digits[0] == '0' && digits[1] != '.';
  double d = 0;
  if (!leading_zero && ParseDouble(s, &d)) {
    bool integral = s.find_first_of(".eE") == std::string_view::npos;
    if (integral && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    return d;
  }
  return std::string(s);
}

// Copies the row's columns that are not in `known` into *into.
void CopyExtras(const json& row, bool from_csv, std::initializer_list<std::string_view> known,
                std::string_view skip_prefix, json* into) {
  for (auto it = row.begin(); it != row.end(); ++it) {
    const std::string& key = it.key();
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (!skip_prefix.empty() && key.rfind(skip_prefix, 0) == 0) continue;
    if (Absent(&it.value())) continue;
    (*into)[key] = from_csv && it->is_string() ? DetectScalar(it->get<std::string>()) : *it;
  }
}

bool RequiredText(const json& row, const char* name, std::string* out, std::string* err) {
  *out = std::string(Trim(Text(Find(row, name))));
  if (out->empty()) {
    *err = std::string("missing ") + name;
    return false;
  }
  return true;
}

// --- Row conversion, one function per kind ---------------------------------

bool ToCustomer(const json& row, bool from_csv, Customer* c, std::string* err) {
  if (!RequiredText(row, "customer_id", &c->id, err)) return false;
  json attributes, consent;
  if (!Object(Find(row, "attributes"), "attributes", &attributes, err)) return false;
  if (!Object(Find(row, "consent"), "consent", &consent, err)) return false;
  for (auto it = row.begin(); it != row.end(); ++it) {
    if (it.key().rfind("consent_", 0) != 0) continue;
    std::optional<bool> b;
    if (!Bool(&it.value(), it.key(), &b, err)) return false;
    if (b) consent[it.key().substr(8)] = *b;
  }
  CopyExtras(row, from_csv, {"customer_id", "attributes", "consent", "created"}, "consent_",
             &attributes);
  std::optional<int64_t> created;
  if (!Timestamp(Find(row, "created"), "created", &created, err)) return false;
  c->attributes_json = Dump(attributes);
  c->consent_json = Dump(consent);
  c->created_ms = created.value_or(0);  // 0: the store stamps the import time
  c->updated_ms = 0;
  return true;
}

bool ToItem(const json& row, bool from_csv, Item* item, std::string* err) {
  if (!RequiredText(row, "item_id", &item->id, err)) return false;
  item->title = Text(Find(row, "title"));
  item->description = Text(Find(row, "description"));
  item->category = std::string(Trim(Text(Find(row, "category"))));
  item->brand = std::string(Trim(Text(Find(row, "brand"))));
  std::optional<double> price;
  if (!Number(Find(row, "price"), "price", &price, err)) return false;
  if (price && *price < 0) {
    *err = "price: must not be negative";
    return false;
  }
  item->price = price.value_or(0);
  json attributes;
  if (!Object(Find(row, "attributes"), "attributes", &attributes, err)) return false;
  CopyExtras(row, from_csv,
             {"item_id", "title", "description", "category", "brand", "price", "attributes"}, {},
             &attributes);
  item->attributes_json = Dump(attributes);
  return true;
}

bool ToOffer(const json& row, bool from_csv, OfferRecord* offer, std::string* err) {
  if (!RequiredText(row, "offer_id", &offer->id, err)) return false;
  json definition;
  if (const json* d = Find(row, "definition"); d != nullptr) {
    if (!Object(d, "definition", &definition, err)) return false;
    if (definition.empty()) {
      *err = "definition: empty";
      return false;
    }
  } else {
    // No definition column: the row itself is the definition.
    CopyExtras(row, from_csv, {"offer_id"}, {}, &definition);
  }
  if (!definition.contains("id")) definition["id"] = offer->id;
  offer->definition_json = Dump(definition);
  return true;
}

bool ToEvent(const json& row, bool from_csv, Event* e, std::string* err) {
  if (!RequiredText(row, "customer_id", &e->customer_id, err)) return false;
  const char* type_key = Find(row, "event") != nullptr ? "event" : "type";
  e->type = Lower(Trim(Text(Find(row, type_key))));
  if (e->type.empty()) {
    *err = "missing event";
    return false;
  }
  const auto& known = KnownEventTypes();
  if (std::find(known.begin(), known.end(), e->type) == known.end()) {
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    *err = "unknown event type " + Quote(e->type) + " (expected one of " + list + ")";
    return false;
  }
  std::optional<int64_t> ts;
  if (!Timestamp(Find(row, "ts"), "ts", &ts, err)) return false;
  if (!ts) {
    *err = "missing ts";
    return false;
  }
  e->ts_ms = *ts;
  e->item_id = std::string(Trim(Text(Find(row, "item_id"))));
  e->offer_id = std::string(Trim(Text(Find(row, "offer_id"))));
  e->decision_id = std::string(Trim(Text(Find(row, "decision_id"))));
  e->channel = std::string(Trim(Text(Find(row, "channel"))));
  e->text = Text(Find(row, "text"));
  std::optional<double> value, quantity;
  if (!Number(Find(row, "value"), "value", &value, err)) return false;
  if (!Number(Find(row, "quantity"), "quantity", &quantity, err)) return false;
  e->value = value.value_or(0);
  // A basket line without a quantity is one unit.
  bool basket = e->type == "purchase" || e->type == "add_to_cart" || e->type == "return";
  e->quantity = quantity.value_or(basket ? 1 : 0);
  json properties;
  if (!Object(Find(row, "properties"), "properties", &properties, err)) return false;
  CopyExtras(row, from_csv,
             {"customer_id", "event", "type", "ts", "item_id", "offer_id", "decision_id", "value",
              "quantity", "channel", "text", "properties"},
             {}, &properties);
  e->properties_json = Dump(properties);
  return true;
}

// Columns a CSV header must have; JSONL rows are checked one by one instead.
std::vector<std::vector<std::string>> RequiredColumns(ImportKind kind) {
  switch (kind) {
    case ImportKind::kCustomers:
      return {{"customer_id"}};
    case ImportKind::kItems:
      return {{"item_id"}};
    case ImportKind::kOffers:
      return {{"offer_id"}};
    case ImportKind::kEvents:
      return {{"customer_id"}, {"event", "type"}, {"ts"}};
  }
  return {};
}

// Converts and writes rows; owns the per-import state (known customers).
class Loader {
 public:
  Loader(Store& store, Store::Bulk& bulk, const ImportOptions& options, ImportSummary* summary)
      : store_(store), bulk_(bulk), options_(options), summary_(summary) {}

  void RowError(int64_t line, const std::string& message) {
    ++summary_->skipped;
    if (summary_->errors.size() < options_.max_errors)
      summary_->errors.push_back(options_.path + ":" + std::to_string(line) + ": " + message);
  }

  // Returns a fatal error only when the store fails; bad rows are recorded.
  Status Row(const json& row, bool from_csv, int64_t line) {
    std::string err;
    Status s;
    switch (options_.kind) {
      case ImportKind::kCustomers: {
        Customer c;
        if (!ToCustomer(row, from_csv, &c, &err)) break;
        s = bulk_.Customer(c);
        seen_customers_.insert(c.id);
        break;
      }
      case ImportKind::kItems: {
        Item item;
        if (!ToItem(row, from_csv, &item, &err)) break;
        s = bulk_.Item(item);
        break;
      }
      case ImportKind::kOffers: {
        OfferRecord offer;
        if (!ToOffer(row, from_csv, &offer, &err)) break;
        s = bulk_.Offer(offer);
        break;
      }
      case ImportKind::kEvents: {
        Event e;
        if (!ToEvent(row, from_csv, &e, &err)) break;
        s = EnsureCustomer(e.customer_id, e.ts_ms);
        if (s.ok()) s = bulk_.Event(e);
        break;
      }
    }
    if (!err.empty()) {
      RowError(line, err);
      return Status::Ok();
    }
    if (!s.ok())
      return Status::Error(options_.path + ":" + std::to_string(line) + ": " + s.message());
    ++summary_->imported;
    return Status::Ok();
  }

 private:
  // Bulk::Event does not create customers, and Bulk::Customer would overwrite
  // a known customer's attributes, so only customers the store has never seen
  // get a bare row (created at their first imported event).
  Status EnsureCustomer(const std::string& id, int64_t ts_ms) {
    if (seen_customers_.count(id)) return Status::Ok();
    seen_customers_.insert(id);
    if (store_.GetCustomer(id)) return Status::Ok();
    Customer c;
    c.id = id;
    c.created_ms = ts_ms;
    c.updated_ms = ts_ms;
    Status s = bulk_.Customer(c);
    if (s.ok()) ++summary_->customers_created;
    return s;
  }

  Store& store_;
  Store::Bulk& bulk_;
  const ImportOptions& options_;
  ImportSummary* summary_;
  std::unordered_set<std::string> seen_customers_;
};

Status ImportCsv(std::istream& in, Loader& loader, const ImportOptions& options,
                 ImportSummary* summary, ImportProgress* progress,
                 const ImportProgressFn& progress_fn) {
  CsvReader reader(in);
  std::vector<std::string> header;
  switch (reader.Next(&header)) {
    case CsvReader::Result::kEnd:
      return Status::Error(options.path + ": empty file; a header row is required");
    case CsvReader::Result::kError:
      return Status::Error(options.path + ":" + std::to_string(reader.line()) +
                           ": header: " + reader.error());
    case CsvReader::Result::kRecord:
      break;
  }
  for (size_t i = 0; i < header.size(); ++i) {
    header[i] = std::string(Trim(header[i]));
    if (header[i].empty())
      return Status::Error(options.path + ":" + std::to_string(reader.line()) +
                           ": header: column " + std::to_string(i + 1) + " has no name");
    for (size_t j = 0; j < i; ++j) {
      if (header[j] == header[i])
        return Status::Error(options.path + ":" + std::to_string(reader.line()) +
                             ": header: column " + Quote(header[i]) + " appears twice");
    }
  }
  for (const auto& alternatives : RequiredColumns(options.kind)) {
    bool found = std::any_of(alternatives.begin(), alternatives.end(), [&](const std::string& a) {
      return std::find(header.begin(), header.end(), a) != header.end();
    });
    if (!found) {
      std::string have;
      for (const auto& h : header) have += (have.empty() ? "" : ", ") + h;
      return Status::Error(options.path + ":" + std::to_string(reader.line()) +
                           ": header: missing required column " + Quote(alternatives[0]) + " for " +
                           ImportKindName(options.kind) + " (columns: " + have + ")");
    }
  }

  std::vector<std::string> fields;
  for (;;) {
    CsvReader::Result r = reader.Next(&fields);
    if (r == CsvReader::Result::kEnd) break;
    ++summary->read;
    if (r == CsvReader::Result::kError) {
      loader.RowError(reader.line(), reader.error());
    } else if (fields.size() != header.size()) {
      loader.RowError(reader.line(), "expected " + std::to_string(header.size()) +
                                         " fields (as in the header), found " +
                                         std::to_string(fields.size()));
    } else {
      json row = json::object();
      for (size_t i = 0; i < header.size(); ++i) row[header[i]] = std::move(fields[i]);
      if (Status s = loader.Row(row, true, reader.line()); !s.ok()) return s;
    }
    if (progress_fn && summary->read % kProgressEveryRows == 0) {
      progress->rows = summary->read;
      progress->bytes = reader.bytes();
      progress_fn(*progress);
    }
  }
  progress->bytes = reader.bytes();
  return Status::Ok();
}

Status ImportJsonl(std::istream& in, Loader& loader, ImportSummary* summary,
                   ImportProgress* progress, const ImportProgressFn& progress_fn) {
  std::string line;
  int64_t line_no = 0;
  int64_t bytes = 0;
  while (std::getline(in, line)) {
    ++line_no;
    bytes += static_cast<int64_t>(line.size()) + 1;
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    std::string_view text = Trim(line);
    if (text.empty()) continue;
    ++summary->read;
    json row;
    std::string err;
    if (!ParseJson(text, &row, &err)) {
      loader.RowError(line_no, "bad JSON: " + err);
    } else if (!row.is_object()) {
      loader.RowError(line_no, "expected a JSON object, found " + std::string(row.type_name()));
    } else if (Status s = loader.Row(row, false, line_no); !s.ok()) {
      return s;
    }
    if (progress_fn && summary->read % kProgressEveryRows == 0) {
      progress->rows = summary->read;
      progress->bytes = bytes;
      progress_fn(*progress);
    }
  }
  progress->bytes = bytes;
  return Status::Ok();
}

}  // namespace

std::optional<ImportKind> ParseImportKind(std::string_view name) {
  std::string n = Lower(name);
  if (n == "customers" || n == "customer") return ImportKind::kCustomers;
  if (n == "items" || n == "item") return ImportKind::kItems;
  if (n == "offers" || n == "offer") return ImportKind::kOffers;
  if (n == "events" || n == "event") return ImportKind::kEvents;
  return std::nullopt;
}

std::optional<ImportFormat> ParseImportFormat(std::string_view name) {
  std::string n = Lower(name);
  if (n == "csv") return ImportFormat::kCsv;
  if (n == "jsonl" || n == "ndjson" || n == "json") return ImportFormat::kJsonl;
  if (n == "auto" || n.empty()) return ImportFormat::kAuto;
  return std::nullopt;
}

const char* ImportKindName(ImportKind kind) {
  switch (kind) {
    case ImportKind::kCustomers:
      return "customers";
    case ImportKind::kItems:
      return "items";
    case ImportKind::kOffers:
      return "offers";
    case ImportKind::kEvents:
      return "events";
  }
  return "?";
}

const std::vector<std::string>& KnownEventTypes() {
  static const std::vector<std::string> kTypes = {
      "view",   "click",      "add_to_cart", "purchase", "return", "chat",
      "search", "impression", "offer_click", "convert",  "dismiss"};
  return kTypes;
}

Status Import(Store& store, const ImportOptions& options, ImportSummary* summary,
              const ImportProgressFn& progress_fn) {
  int64_t start_ns = mono_ns();
  *summary = ImportSummary{};
  std::ifstream in(options.path, std::ios::binary);
  if (!in) return Status::Error("cannot open " + options.path + ": " + std::strerror(errno));
  std::error_code ec;
  if (std::filesystem::is_directory(options.path, ec))
    return Status::Error(options.path + ": is a directory");

  ImportFormat format = options.format;
  if (format == ImportFormat::kAuto) {
    std::string ext = Lower(std::filesystem::path(options.path).extension().string());
    format = ext == ".jsonl" || ext == ".ndjson" || ext == ".json" ? ImportFormat::kJsonl
                                                                   : ImportFormat::kCsv;
  }
  summary->format = format;

  ImportProgress progress;
  uintmax_t size = std::filesystem::file_size(options.path, ec);
  progress.total_bytes = ec ? 0 : static_cast<int64_t>(size);

  std::string err;
  std::unique_ptr<Store::Bulk> bulk = store.BeginBulk(&err);
  if (!bulk) return Status::Error("cannot write to store " + store.path() + ": " + err);
  Loader loader(store, *bulk, options, summary);
  Status s = format == ImportFormat::kCsv
                 ? ImportCsv(in, loader, options, summary, &progress, progress_fn)
                 : ImportJsonl(in, loader, summary, &progress, progress_fn);
  if (!s.ok()) return s;  // the bulk rolls back
  if (in.bad()) return Status::Error("error reading " + options.path);
  if (Status c = bulk->Commit(); !c.ok())
    return Status::Error("cannot commit to store " + store.path() + ": " + c.message());
  progress.rows = summary->read;
  if (progress_fn) progress_fn(progress);
  summary->seconds = static_cast<double>(mono_ns() - start_ns) / 1e9;
  return Status::Ok();
}

}  // namespace tailor::ingest
