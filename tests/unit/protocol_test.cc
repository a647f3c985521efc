#include "service/protocol.h"

#include "common/json_limits.h"

#include <gtest/gtest.h>

namespace tailor {
namespace {

ApiError ExpectError(const std::string& body, size_t max = 1024) {
  std::string id;
  auto r = ParseRequest(body, max, &id);
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(Protocol, ParsesAFullDecide) {
  std::string id;
  auto r = ParseRequest(
      R"({"v":1,"type":"decide","id":"r1","customer":"c42","channel":"web","placement":"home","limit":5,"context":{"hour":21},"ts":"2026-11-23T21:15:00Z"})",
      4096, &id);
  ASSERT_TRUE(std::holds_alternative<Request>(r));
  const Request& q = std::get<Request>(r);
  EXPECT_EQ(q.type, Request::Type::kDecide);
  EXPECT_EQ(id, "r1");
  EXPECT_EQ(q.decide.customer, "c42");
  EXPECT_EQ(q.decide.limit, 5);
  EXPECT_EQ(q.decide.context["hour"], 21);
  ASSERT_TRUE(q.decide.now_ms.has_value());
  EXPECT_EQ(*q.decide.now_ms, 1795468500000);
}

TEST(Protocol, DefaultsLimitToThreeAndContextToEmpty) {
  std::string id;
  auto r = ParseRequest(R"({"v":1,"type":"decide","channel":"web","placement":"home"})", 4096, &id);
  ASSERT_TRUE(std::holds_alternative<Request>(r));
  EXPECT_EQ(std::get<Request>(r).decide.limit, 3);
  EXPECT_TRUE(std::get<Request>(r).decide.context.empty());
  EXPECT_TRUE(std::get<Request>(r).decide.customer.empty());
}

TEST(Protocol, NamesTheOffendingField) {
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"decide","channel":7,"placement":"home"})").field,
            "channel");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"decide","channel":"web","placement":""})").field,
            "placement");
  EXPECT_EQ(
      ExpectError(R"({"v":1,"type":"decide","channel":"web","placement":"h","limit":101})").field,
      "limit");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"event","customer":"c","event":"chat"})").field, "text");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"event","customer":"","event":"click"})").field,
            "customer");
  EXPECT_EQ(
      ExpectError(R"({"v":1,"type":"event","customer":"c","event":"click","value":"9"})").field,
      "value");
  EXPECT_EQ(ExpectError(R"({"v":"1","type":"health"})").field, "v");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"health","id":5})").field, "id");
}

TEST(Protocol, EventBatchIsAllOrNothingAndNamesTheEvent) {
  std::string id;
  auto r = ParseRequest(
      R"({"v":1,"type":"events","id":"b","events":[{"customer":"c1","event":"view","item":"i1"},{"customer":"c2","event":"purchase","item":"i2","value":9}]})",
      4096, &id);
  ASSERT_TRUE(std::holds_alternative<Request>(r));
  const Request& q = std::get<Request>(r);
  EXPECT_EQ(q.type, Request::Type::kEvents);
  ASSERT_EQ(q.events.size(), 2u);
  EXPECT_EQ(q.events[1].customer_id, "c2");
  EXPECT_EQ(q.events[1].value, 9);
  EXPECT_EQ(
      ExpectError(
          R"({"v":1,"type":"events","events":[{"customer":"c1","event":"view"},{"customer":"","event":"view"}]})")
          .field,
      "events[1].customer");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"events","events":[7]})").field, "events[0]");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"events","events":[]})").field, "events");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"events","events":{}})").field, "events");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"events"})").field, "events");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"events","events":[],"extra":1})").field, "extra");
  std::string many = R"({"v":1,"type":"events","events":[)";
  for (size_t i = 0; i <= kMaxBatchEvents; ++i) many += std::string(i ? "," : "") + "{}";
  EXPECT_EQ(ExpectError(many + "]}", 1 << 20).field, "events");
}

TEST(Protocol, DecideFilters) {
  std::string id;
  auto r = ParseRequest(
      R"({"v":1,"type":"decide","channel":"web","placement":"home","exclude":["o_a","i7"],"include_categories":["toys"],"exclude_categories":["books","garden"]})",
      4096, &id);
  ASSERT_TRUE(std::holds_alternative<Request>(r));
  const DecideRequest& d = std::get<Request>(r).decide;
  EXPECT_EQ(d.exclude, (std::vector<std::string>{"o_a", "i7"}));
  EXPECT_EQ(d.include_categories, (std::vector<std::string>{"toys"}));
  EXPECT_EQ(d.exclude_categories, (std::vector<std::string>{"books", "garden"}));
  // Absent: no filter.
  r = ParseRequest(R"({"v":1,"type":"decide","channel":"web","placement":"home"})", 4096, &id);
  ASSERT_TRUE(std::holds_alternative<Request>(r));
  EXPECT_TRUE(std::get<Request>(r).decide.exclude.empty());
  EXPECT_TRUE(std::get<Request>(r).decide.include_categories.empty());
}

TEST(Protocol, DecideFilterErrorsNameTheField) {
  const std::string head = R"({"v":1,"type":"decide","channel":"web","placement":"home",)";
  ApiError e = ExpectError(head + R"("exclude":"o_a"})");
  EXPECT_EQ(e.field, "exclude");
  EXPECT_EQ(e.message, "exclude must be an array of strings, got a string");
  e = ExpectError(head + R"("exclude":["o_a",7]})");
  EXPECT_EQ(e.field, "exclude");
  EXPECT_EQ(e.message, "exclude[1] must be a string, got a number");
  e = ExpectError(head + R"("exclude_categories":[""]})");
  EXPECT_EQ(e.field, "exclude_categories");
  EXPECT_EQ(e.message, "exclude_categories[0] must not be empty");
  e = ExpectError(head + R"("include_categories":[]})");
  EXPECT_EQ(e.field, "include_categories");
  e = ExpectError(head + R"("exclude":[")" + std::string(129, 'x') + R"("]})", 4096);
  EXPECT_EQ(e.message, "exclude[0] is longer than 128 bytes");
  std::string many = head + R"("exclude":[)";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + "\"o\"";
  e = ExpectError(many + "]}", 1 << 20);
  EXPECT_EQ(e.field, "exclude");
  EXPECT_EQ(e.message, "exclude has 1001 entries; the limit is 1000");
  e = ExpectError(head + R"("exclude_offers":["o_a"]})");
  EXPECT_EQ(e.field, "exclude_offers");
}

TEST(Protocol, CodesForVersionTypeAndSize) {
  EXPECT_EQ(ExpectError(R"({"v":3,"type":"health"})").code, "unsupported_version");
  EXPECT_EQ(ExpectError(R"({"v":1,"type":"dance"})").code, "unknown_type");
  EXPECT_EQ(ExpectError(std::string(2000, ' ')).code, "too_large");
  EXPECT_EQ(ExpectError("\xff\xfe").code, "bad_request");
}

TEST(Protocol, EventTimestampsAndProperties) {
  nlohmann::json msg = {{"customer", "c1"}, {"event", "purchase"},
                        {"item", "i1"},     {"ts", 1700000000000},
                        {"value", 9.5},     {"properties", {{"discount", 0.2}}}};
  Event e;
  EXPECT_FALSE(ParseEvent(msg, &e).has_value());
  EXPECT_EQ(e.ts_ms, 1700000000000);
  EXPECT_DOUBLE_EQ(e.value, 9.5);
  EXPECT_EQ(nlohmann::json::parse(e.properties_json)["discount"], 0.2);
}

TEST(Protocol, ErrorReplyCarriesIdAndNullWhenUnknown) {
  auto j = nlohmann::json::parse(ErrorReply("", {"bad_request", "x", "m"}));
  EXPECT_TRUE(j["id"].is_null());
  EXPECT_EQ(j["error"]["field"], "x");
  EXPECT_EQ(nlohmann::json::parse(ErrorReply("r9", {"bad_request", "", "m"}))["id"], "r9");
}

}  // namespace
}  // namespace tailor

namespace tailor {
namespace {

std::string Nested(const std::string& key, int levels, const std::string& head) {
  std::string open, close;
  for (int i = 0; i < levels; ++i) {
    open += i % 2 ? "[" : "{\"k\":";
    close = (i % 2 ? "]" : "}") + close;
  }
  return head + ",\"" + key + "\":" + open + "1" + close + "}";
}

TEST(ProtocolDepth, ScanCountsLevelsOutsideStringsAndNamesTheTopKey) {
  EXPECT_EQ(ScanJsonDepth(R"({"a":1})").depth, 1);
  EXPECT_EQ(ScanJsonDepth(R"({"context":{"a":[1]}})").depth, 3);
  // Brackets inside strings, escaped quotes included, are not nesting.
  EXPECT_EQ(ScanJsonDepth(R"({"a":"[[[{{{\"[[["})").depth, 1);
  JsonDepth d = ScanJsonDepth(R"({"x":[1],"context":{"a":{"b":{}}}})", 3);
  EXPECT_EQ(d.depth, 4);
  EXPECT_EQ(d.field, "context");
  EXPECT_EQ(ScanJsonDepth("[[[[[[", 3).field, "");
  // The top-level id, read before the limit, so the error reply can carry it.
  EXPECT_EQ(ScanJsonDepth(R"({"id" : "r7","a":{"id":"inner"},"c":[[[[]]]]})", 3).id, "r7");
  EXPECT_EQ(ScanJsonDepth(R"({"x":"id","y":"r7","c":[[[[]]]]})", 3).id, "");
  EXPECT_EQ(ScanJsonDepth(R"({"id":"a\"b","c":[[[[]]]]})", 3).id, "");
}

TEST(ProtocolDepth, DecideContextDeeperThanTheLimitIsABadRequestNamingContext) {
  const std::string head = R"({"v":1,"type":"decide","id":"d1","channel":"web","placement":"home")";
  // The message is level 1 and context's object level 2: 31 levels inside
  // context reach exactly the limit.
  std::string id;
  auto ok = ParseRequest(Nested("context", kMaxJsonDepth - 1, head), 1 << 20, &id);
  ASSERT_TRUE(std::holds_alternative<Request>(ok));
  for (int levels : {kMaxJsonDepth, 100, 10'000}) {
    ApiError e = ExpectError(Nested("context", levels, head), 1 << 20);
    EXPECT_EQ(e.code, "bad_request") << levels;
    EXPECT_EQ(e.field, "context") << levels;
    std::string id;
    ParseRequest(Nested("context", levels, head), 1 << 20, &id);
    EXPECT_EQ(id, "d1");
    EXPECT_NE(e.message.find("deeper than 32 levels"), std::string::npos) << e.message;
  }
}

TEST(ProtocolDepth, EveryMessageTypeAndEventPropertiesAreBounded) {
  ApiError e = ExpectError(
      Nested("properties", 200, R"({"v":1,"type":"event","customer":"c","event":"click")"),
      1 << 20);
  EXPECT_EQ(e.field, "properties");
  EXPECT_EQ(ExpectError(Nested("extra", 200, R"({"v":1,"type":"health")"), 1 << 20).field, "extra");
  EXPECT_EQ(ExpectError(std::string(5000, '['), 1 << 20).field, "");
}

}  // namespace
}  // namespace tailor
