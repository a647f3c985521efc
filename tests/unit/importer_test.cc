#include "ingest/importer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/time.h"
#include "ingest/csv.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace tailor::ingest {
namespace {

using json = nlohmann::json;
using tailor::testing::TempDir;
using tailor::testing::WriteFile;

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Store::Options o;
    o.path = dir_.file("store.db");
    o.start_writer = false;
    o.synchronous_full = false;
    std::string err;
    store_ = Store::Open(o, &err);
    ASSERT_NE(store_, nullptr) << err;
  }

  // Writes text to name in the temp dir and imports it.
  Status Run(ImportKind kind, const std::string& name, const std::string& text,
             ImportSummary* summary, ImportFormat format = ImportFormat::kAuto) {
    WriteFile(dir_.file(name), text);
    ImportOptions o;
    o.kind = kind;
    o.path = dir_.file(name);
    o.format = format;
    return Import(*store_, o, summary);
  }

  std::vector<Event> Events() {
    std::vector<Event> out;
    store_->ForEachEvent(0, [&](const Event& e) {
      out.push_back(e);
      return true;
    });
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

std::vector<std::vector<std::string>> ReadAll(const std::string& text, std::vector<int64_t>* lines,
                                              std::vector<std::string>* errors = nullptr) {
  std::istringstream in(text);
  CsvReader r(in);
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> f;
  for (;;) {
    auto res = r.Next(&f);
    if (res == CsvReader::Result::kEnd) break;
    if (res == CsvReader::Result::kError) {
      if (errors) errors->push_back(std::to_string(r.line()) + ": " + r.error());
      continue;
    }
    out.push_back(f);
    lines->push_back(r.line());
  }
  return out;
}

TEST(ImportCsvReader, QuotesCommasNewlinesAndCrlf) {
  std::vector<int64_t> lines;
  auto rows = ReadAll(
      "\xEF\xBB\xBF"
      "a,b,c\r\n"
      "1,\"x, y\",\"say \"\"hi\"\"\"\r\n"
      "\n"
      "2,\"two\nlines\",\r\n"
      "3,,last",
      &lines);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"1", "x, y", "say \"hi\""}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"2", "two\nlines", ""}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"3", "", "last"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 4, 6}));
}

TEST(ImportCsvReader, BadQuoteIsAnErrorAndReadingGoesOn) {
  std::vector<int64_t> lines;
  std::vector<std::string> errors;
  auto rows = ReadAll("a,b\n\"x\"y,1\nok,2\n\"never closed,3\nmore\n", &lines, &errors);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"ok", "2"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 3}));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].rfind("2: unexpected text after a closing quote", 0), 0u) << errors[0];
  EXPECT_EQ(errors[1], "4: unterminated quoted field");
}

TEST_F(ImportTest, ItemsCsvWithQuotedCommasAndNewlines) {
  ImportSummary s;
  Status st = Run(ImportKind::kItems, "items.csv",
                  "item_id,title,description,category,brand,price,colour,stock\n"
                  "i1,\"Phone, 128GB\",\"Fast.\nWaterproof, \"\"rugged\"\"\",phones,Acme,499.99,"
                  "black,12\n"
                  "i2,Case,Plain case,accessories,Acme,9.5,,007\n",
                  &s);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(s.format, ImportFormat::kCsv);
  EXPECT_EQ(s.read, 2);
  EXPECT_EQ(s.imported, 2);
  EXPECT_EQ(s.skipped, 0);
  EXPECT_TRUE(s.errors.empty());
  auto items = store_->LoadItems();
  ASSERT_EQ(items.size(), 2u);
  const Item& phone = items[0].id == "i1" ? items[0] : items[1];
  const Item& item_case = items[0].id == "i1" ? items[1] : items[0];
  EXPECT_EQ(phone.title, "Phone, 128GB");
  EXPECT_EQ(phone.description, "Fast.\nWaterproof, \"rugged\"");
  EXPECT_EQ(phone.category, "phones");
  EXPECT_DOUBLE_EQ(phone.price, 499.99);
  auto attrs = json::parse(phone.attributes_json);
  EXPECT_EQ(attrs["colour"], "black");
  EXPECT_EQ(attrs["stock"], 12);  // numbers are detected
  auto case_attrs = json::parse(item_case.attributes_json);
  EXPECT_FALSE(case_attrs.contains("colour"));  // empty cells are left out
  EXPECT_EQ(case_attrs["stock"], "007");        // leading zeros stay text
}

TEST_F(ImportTest, BadRowsAreReportedWithTheirLinesAndSkipped) {
  ImportSummary s;
  Status st = Run(ImportKind::kEvents, "events.csv",
                  "customer_id,event,ts,item_id,value,note\n"            // 1
                  "c1,view,2026-01-02T10:00:00Z,i1,,\"first\nnote\"\n"   // 2-3
                  "c1,purchase,2026-01-02T10:05:00Z,i1,19.99,ok\n"       // 4
                  "c2,view,yesterday,i1,,x\n"                            // 5
                  "c2,purchse,2026-01-02T11:00:00Z,i2,,x\n"              // 6
                  "c2,view,2026-01-02T11:00:00Z\n"                       // 7
                  ",view,2026-01-02T11:00:00Z,i2,,x\n"                   // 8
                  "c3,purchase,1767348000000,i2,abc,x\n"                 // 9
                  "c3,click,1767348000000,i2,,\"multi\nline, fine\"\n",  // 10-11
                  &s);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(s.read, 8);
  EXPECT_EQ(s.imported, 3);
  EXPECT_EQ(s.skipped, 5);
  ASSERT_EQ(s.errors.size(), 5u);
  const std::string f = dir_.file("events.csv");
  EXPECT_EQ(s.errors[0].rfind(f + ":5: ts: 'yesterday' is not an ISO 8601 time", 0), 0u)
      << s.errors[0];
  EXPECT_EQ(s.errors[1].rfind(f + ":6: unknown event type 'purchse'", 0), 0u) << s.errors[1];
  EXPECT_EQ(s.errors[2], f + ":7: expected 6 fields (as in the header), found 3");
  EXPECT_EQ(s.errors[3], f + ":8: missing customer_id");
  EXPECT_EQ(s.errors[4], f + ":9: value: 'abc' is not a number");

  EXPECT_EQ(store_->Count("events"), 3);
  auto events = Events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "view");
  EXPECT_EQ(events[0].ts_ms, *parse_iso8601_ms("2026-01-02T10:00:00Z"));
  EXPECT_EQ(json::parse(events[0].properties_json)["note"], "first\nnote");
  EXPECT_EQ(events[1].type, "purchase");
  EXPECT_DOUBLE_EQ(events[1].value, 19.99);
  EXPECT_DOUBLE_EQ(events[1].quantity, 1);  // a purchase without quantity is one unit
  EXPECT_EQ(events[2].customer_id, "c3");
  EXPECT_EQ(events[2].ts_ms, 1767348000000);

  // Events of unknown customers create bare customer rows; only c1 and c3
  // had a good row.
  EXPECT_EQ(s.customers_created, 2);
  EXPECT_TRUE(store_->GetCustomer("c1").has_value());
  EXPECT_TRUE(store_->GetCustomer("c3").has_value());
  EXPECT_FALSE(store_->GetCustomer("c2").has_value());
}

TEST_F(ImportTest, EventsKeepAttributesOfKnownCustomers) {
  ImportSummary s;
  ASSERT_TRUE(
      Run(ImportKind::kCustomers, "c.csv", "customer_id,age,consent_email\nc1,34,yes\n", &s).ok());
  ASSERT_TRUE(Run(ImportKind::kEvents, "e.jsonl",
                  R"({"customer_id":"c1","event":"view","ts":"2026-01-02T10:00:00Z"})"
                  "\n"
                  R"({"customer_id":"c9","event":"view","ts":1767348000})"
                  "\n",
                  &s)
                  .ok());
  EXPECT_EQ(s.imported, 2);
  EXPECT_EQ(s.customers_created, 1);
  auto c1 = store_->GetCustomer("c1");
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(json::parse(c1->attributes_json)["age"], 34);
  EXPECT_EQ(json::parse(c1->consent_json)["email"], true);
  auto c9 = store_->GetCustomer("c9");
  ASSERT_TRUE(c9.has_value());
  EXPECT_EQ(c9->created_ms, 1767348000000);  // epoch seconds are recognised
}

TEST_F(ImportTest, CustomersJsonl) {
  ImportSummary s;
  Status st = Run(
      ImportKind::kCustomers, "customers.jsonl",
      R"({"customer_id":"c1","consent":{"personalization":true},"attributes":{"age":30},"city":"Leeds"})"
      "\n\n"
      R"({"customer_id":"c2","consent_email":false,"vip":true})"
      "\n"
      R"({"customer_id":"c3", broken)"
      "\n"
      R"(["not", "an", "object"])"
      "\n"
      R"({"customer_id":"c4","consent":"not json"})"
      "\n",
      &s);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(s.format, ImportFormat::kJsonl);
  EXPECT_EQ(s.read, 5);
  EXPECT_EQ(s.imported, 2);
  EXPECT_EQ(s.skipped, 3);
  ASSERT_EQ(s.errors.size(), 3u);
  const std::string f = dir_.file("customers.jsonl");
  EXPECT_EQ(s.errors[0].rfind(f + ":4: bad JSON:", 0), 0u) << s.errors[0];
  EXPECT_EQ(s.errors[1], f + ":5: expected a JSON object, found array");
  EXPECT_EQ(s.errors[2].rfind(f + ":6: consent: bad JSON:", 0), 0u) << s.errors[2];
  EXPECT_EQ(store_->Count("customers"), 2);
  auto c1 = store_->GetCustomer("c1");
  ASSERT_TRUE(c1.has_value());
  auto attrs = json::parse(c1->attributes_json);
  EXPECT_EQ(attrs["age"], 30);
  EXPECT_EQ(attrs["city"], "Leeds");
  EXPECT_EQ(json::parse(c1->consent_json)["personalization"], true);
  auto c2 = store_->GetCustomer("c2");
  ASSERT_TRUE(c2.has_value());
  EXPECT_EQ(json::parse(c2->consent_json)["email"], false);
  EXPECT_EQ(json::parse(c2->attributes_json)["vip"], true);
}

TEST_F(ImportTest, JsonNestedPastTheDepthLimitIsRejectedWithItsLine) {
  // Deep JSON in a row (or in a CSV cell holding JSON) would later be copied,
  // dumped and handed to rules recursively: it never reaches the store.
  std::string deep;
  for (int i = 0; i < 100'000; ++i) deep += "[";
  ImportSummary s;
  Status st = Run(ImportKind::kCustomers, "deep.jsonl",
                  R"({"customer_id":"c1","attributes":{"age":30}})"
                  "\n"
                  R"({"customer_id":"c2","attributes":)" +
                      deep + "\n",
                  &s, ImportFormat::kJsonl);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(s.imported, 1);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].rfind(dir_.file("deep.jsonl") + ":2: bad JSON: nested deeper than 32", 0),
            0u)
      << s.errors[0];
  ImportSummary c;
  st = Run(ImportKind::kCustomers, "deep.csv", "customer_id,consent\nc5,\"" + deep + "\"\n", &c);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(c.imported, 0);
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_EQ(c.errors[0].rfind(dir_.file("deep.csv") + ":2: consent: bad JSON: nested deeper", 0),
            0u)
      << c.errors[0];
  EXPECT_EQ(store_->Count("customers"), 1);
}

TEST_F(ImportTest, UnknownEventTypeInJsonlIsRejectedWithItsLine) {
  ImportSummary s;
  Status st = Run(ImportKind::kEvents, "ev.data",
                  R"({"customer_id":"c1","event":"chat","ts":"2026-01-02T10:00:00Z","text":"hi"})"
                  "\n"
                  R"({"customer_id":"c1","event":"teleport","ts":"2026-01-02T10:00:00Z"})"
                  "\n",
                  &s, ImportFormat::kJsonl);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(s.imported, 1);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0].rfind(dir_.file("ev.data") + ":2: unknown event type 'teleport'", 0), 0u)
      << s.errors[0];
  auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "hi");
}

TEST_F(ImportTest, OffersFromDefinitionColumnOrWholeObject) {
  ImportSummary s;
  ASSERT_TRUE(Run(ImportKind::kOffers, "o.jsonl",
                  R"({"offer_id":"o1","title":"10% off audio","value":5})"
                  "\n"
                  R"({"offer_id":"o2","definition":{"id":"o2","value":7}})"
                  "\n",
                  &s)
                  .ok());
  ASSERT_TRUE(Run(ImportKind::kOffers, "o.csv",
                  "offer_id,definition\no3,\"{\"\"value\"\": 1}\"\no4,[1]\n", &s)
                  .ok());
  EXPECT_EQ(s.imported, 1);
  ASSERT_EQ(s.errors.size(), 1u);
  EXPECT_EQ(s.errors[0], dir_.file("o.csv") + ":3: definition: expected a JSON object");
  auto offers = store_->LoadOffers();
  ASSERT_EQ(offers.size(), 3u);
  std::map<std::string, json> by_id;
  for (const auto& o : offers) by_id[o.id] = json::parse(o.definition_json);
  EXPECT_EQ(by_id["o1"]["title"], "10% off audio");
  EXPECT_EQ(by_id["o1"]["id"], "o1");
  EXPECT_EQ(by_id["o2"]["value"], 7);
  EXPECT_EQ(by_id["o3"]["value"], 1);
  EXPECT_EQ(by_id["o3"]["id"], "o3");
}

TEST_F(ImportTest, FatalProblemsWriteNothing) {
  ImportSummary s;
  Status st = Run(ImportKind::kEvents, "nots.csv", "customer_id,event\nc1,view\n", &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("missing required column 'ts'"), std::string::npos) << st.message();
  st = Run(ImportKind::kItems, "dup.csv", "item_id,title,title\ni1,a,b\n", &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("appears twice"), std::string::npos) << st.message();
  st = Run(ImportKind::kItems, "empty.csv", "", &s);
  ASSERT_FALSE(st.ok());
  ImportOptions o;
  o.kind = ImportKind::kItems;
  o.path = dir_.file("missing.csv");
  st = Import(*store_, o, &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot open"), std::string::npos);
  EXPECT_EQ(store_->Count("items"), 0);
  EXPECT_EQ(store_->Count("events"), 0);
}

TEST_F(ImportTest, MaxErrorsLimitsMessagesNotCounts) {
  std::string text = "item_id,price\n";
  for (int i = 0; i < 50; ++i) text += "i" + std::to_string(i) + ",bad\n";
  text += "ok,1\n";
  WriteFile(dir_.file("many.csv"), text);
  ImportOptions o;
  o.kind = ImportKind::kItems;
  o.path = dir_.file("many.csv");
  o.max_errors = 3;
  ImportSummary s;
  int calls = 0;
  ImportProgress last;
  ASSERT_TRUE(Import(*store_, o, &s, [&](const ImportProgress& p) {
                ++calls;
                last = p;
              }).ok());
  EXPECT_EQ(s.skipped, 50);
  EXPECT_EQ(s.imported, 1);
  EXPECT_EQ(s.errors.size(), 3u);
  EXPECT_GE(calls, 1);
  EXPECT_EQ(last.rows, 51);
  EXPECT_EQ(last.bytes, static_cast<int64_t>(text.size()));
  EXPECT_EQ(last.total_bytes, static_cast<int64_t>(text.size()));
}

TEST(ImportNames, KindsAndFormats) {
  EXPECT_EQ(ParseImportKind("Events"), ImportKind::kEvents);
  EXPECT_EQ(ParseImportKind("item"), ImportKind::kItems);
  EXPECT_FALSE(ParseImportKind("orders").has_value());
  EXPECT_EQ(ParseImportFormat("ndjson"), ImportFormat::kJsonl);
  EXPECT_FALSE(ParseImportFormat("xml").has_value());
}

}  // namespace
}  // namespace tailor::ingest
