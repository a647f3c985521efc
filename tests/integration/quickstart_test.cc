// The README's first command, on a machine without ../shared: the demo world's
// own chat lines train the intent model, and the README's third example gets
// an intent (not "no opinion") from a real tailord on the shipped config.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "support/tailord.h"
#include "support/temp_dir.h"

namespace tailor::testing {
namespace {

using nlohmann::json;

json DecideWithMessage(Client& c, const std::string& id, const std::string& message) {
  return c.Call({{"v", 1},
                 {"type", "decide"},
                 {"id", id},
                 {"customer", "c42"},
                 {"channel", "web"},
                 {"placement", "home"},
                 {"limit", 13},
                 {"context", {{"message", message}}}});
}

// The intent plugin's why entries of every offer in the reply, as one text.
std::string IntentWhys(const json& reply) {
  std::string out;
  for (const json& o : reply["offers"])
    out += o["why"]["plugins"].value("intent", json()).dump() + "\n";
  return out;
}

TEST(Quickstart, DemoChatLinesTrainAnIntentModelThatServesTheReadmeExample) {
  TempDir dir;
  const std::string store = dir.file("demo.db"), chat = dir.file("chat.csv");
  const std::string config = std::string(TAILOR_SOURCE_DIR) + "/config/tailor.yaml";
  // A small world keeps the test quick; the chat lines do not depend on its size.
  ASSERT_EQ(Shell(TailorBin() + " demo --store " + store +
                      " --customers 300 --items 60 --days 30 --chat " + chat,
                  dir.file("demo.log")),
            0)
      << ReadFile(dir.file("demo.log"));
  const std::string lines = ReadFile(chat);
  ASSERT_EQ(lines.rfind("text,label\n", 0), 0u);
  for (const char* label : {",find_phone\n", ",play_music\n", ",order_status\n", ",oos\n"})
    EXPECT_NE(lines.find(label), std::string::npos) << label;
  ASSERT_EQ(Shell(TailorBin() + " train intent --config " + config + " --store " + store +
                      " --plugin-dir " + TAILOR_PLUGIN_DIR + " --data " + chat,
                  dir.file("train.log")),
            0)
      << ReadFile(dir.file("train.log"));

  Tailord d({config, store, {}});
  ASSERT_TRUE(d.running());
  Client c(d.requests());
  json r = DecideWithMessage(c, "phone", "my phone broke, I need a new one");
  ASSERT_FALSE(r.contains("error")) << r.dump();
  // The phone offer (or whichever shown offer promotes phones) is boosted.
  EXPECT_NE(IntentWhys(r).find("intent find_phone"), std::string::npos) << r.dump();
  // Chatter is out of scope: no opinion, no boost.
  json oos = DecideWithMessage(c, "oos", "who painted the mona lisa");
  ASSERT_FALSE(oos.contains("error")) << oos.dump();
  EXPECT_EQ(IntentWhys(oos).find("intent find_phone"), std::string::npos) << oos.dump();
  EXPECT_FALSE(oos["offers"].empty());
  EXPECT_EQ(d.Terminate(), 0);
}

}  // namespace
}  // namespace tailor::testing
