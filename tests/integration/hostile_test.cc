// Hostile input against a real tailord: messages nested from 10 to 10,000
// levels deep (all within max_message_bytes) are each answered, and the
// service keeps serving everyone, health included.
#include <gtest/gtest.h>

#include <string>

#include "common/json_limits.h"
#include "support/tailord.h"
#include "support/temp_dir.h"
#include "support/world.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

// {"k":[{"k":[ ... 1 ... ]}]}: levels of nesting below the field.
std::string Nested(int levels) {
  std::string open, close;
  for (int i = 0; i < levels; ++i) {
    open += i % 2 ? "[" : "{\"k\":";
    close += i % 2 ? "]" : "}";
  }
  std::string reversed(close.rbegin(), close.rend());
  return open + "1" + reversed;
}

TEST(Hostile, DeeplyNestedMessagesAreAnsweredAndTheServiceKeepsServing) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord d({"", store, {}});  // the shipped config: rules, journeys, plugins
  ASSERT_TRUE(d.running());
  Client c(d.requests());
  for (int levels : {10, kMaxJsonDepth - 1, kMaxJsonDepth, 100, 1'000, 10'000}) {
    const std::string decide =
        R"({"v":1,"type":"decide","id":"deep)" + std::to_string(levels) +
        R"(","customer":"c3","channel":"web","placement":"home","context":{"deep":)" +
        Nested(levels) + "}}";
    ASSERT_LT(decide.size(), 65536u) << "stays within max_message_bytes";
    json r = json::parse(c.CallRaw(decide));
    EXPECT_EQ(r["id"], "deep" + std::to_string(levels));
    // The message is level 1, context level 2, "deep" level 3.
    if (levels + 2 <= kMaxJsonDepth) {
      EXPECT_FALSE(r.contains("error")) << levels << ": " << r.dump().substr(0, 300);
      EXPECT_FALSE(r["offers"].empty()) << levels;
    } else {
      ASSERT_TRUE(r.contains("error")) << levels;
      EXPECT_EQ(r["error"]["code"], "bad_request");
      EXPECT_EQ(r["error"]["field"], "context");
      EXPECT_NE(r["error"]["message"].get<std::string>().find("32 levels"), std::string::npos);
    }
    const std::string event =
        R"({"v":1,"type":"event","id":"ev)" + std::to_string(levels) +
        R"(","customer":"c3","event":"click","item":"i1","properties":{"deep":)" + Nested(levels) +
        "}}";
    json e = json::parse(c.CallRaw(event));
    if (levels + 2 <= kMaxJsonDepth) {
      EXPECT_FALSE(e.contains("error")) << levels << ": " << e.dump().substr(0, 300);
    } else {
      ASSERT_TRUE(e.contains("error")) << levels;
      EXPECT_EQ(e["error"]["field"], "properties");
    }
    // Everyone else is still served, within the client's timeout.
    Client other(d.requests(), 5000);
    json h = other.Call({{"v", 1}, {"type", "health"}, {"id", "h"}});
    EXPECT_EQ(h["health"]["status"], "ok") << h.dump();
  }
  json r = c.Call({{"v", 1},
                   {"type", "decide"},
                   {"id", "after"},
                   {"customer", "c3"},
                   {"channel", "web"},
                   {"placement", "home"}});
  EXPECT_FALSE(r.contains("error")) << r.dump();
  EXPECT_EQ(d.Terminate(), 0);
}

// Found by the request fuzzer: a message that does not parse is answered
// with its raw id and field name, and bytes that are not UTF-8 there made the
// error reply throw and took tailord down.
TEST(Hostile, BytesThatAreNotUtf8InAnUnparsedMessageGetAnErrorNotACrash) {
  TempDir dir;
  const std::string store = dir.file("tailor.db");
  MakeSmallWorld(store);
  Tailord d({SmallConfig(dir.path(), ShippedPluginYaml("popularity")), store, {}});
  ASSERT_TRUE(d.running()) << d.Log();
  Client c(d.requests());
  const std::string bad_id = "{\"v\":1,\"id\":\"r\xff\xfe\",\"type\":";  // cut short
  const std::string bad_field = "{\"v\":1,\"id\":\"r2\",\"ctx\xe8\":" + Nested(100) + "}";
  for (const std::string& body : {bad_id, bad_field}) {
    json r = json::parse(c.CallRaw(body), nullptr, false);
    ASSERT_TRUE(r.is_object()) << "no JSON reply";
    EXPECT_EQ(r["error"]["code"], "bad_request") << r.dump();
  }
  json h = c.Call({{"v", 1}, {"type", "health"}, {"id", "h"}});
  EXPECT_EQ(h["health"]["status"], "ok") << h.dump();
  EXPECT_EQ(d.Terminate(), 0) << d.Log();
}

}  // namespace
}  // namespace tailor::testing
