// Log lines: JSON mode (one object per line) and the request / decision a
// decide's lines name.
#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/log.h"

namespace tailor::log {
namespace {

std::string Capture(const std::function<void()>& f) {
  ::testing::internal::CaptureStderr();
  f();
  return ::testing::internal::GetCapturedStderr();
}

TEST(Log, JsonLinesNameTheRequestAndDecisionOfTheDecideBeingServed) {
  SetJson(true);
  const std::string out = Capture([] {
    Info("service", "outside any decide");
    Scope scope("req-7");
    Warn("plugin:cf", "score failed: \"quoted\"");
    scope.Decision("d-123");
    Error("rules", "bytes \xff that are not UTF-8");
  });
  SetJson(false);
  std::vector<nlohmann::json> lines;
  size_t at = 0;
  while (at < out.size()) {
    const size_t end = out.find('\n', at);
    lines.push_back(nlohmann::json::parse(out.substr(at, end - at)));  // throws if not JSON
    at = end + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_EQ(lines[0]["component"], "service");
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_FALSE(lines[0].contains("request")) << "no decide: no request";
  EXPECT_TRUE(lines[0]["ts"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(lines[1]["msg"], "score failed: \"quoted\"");
  EXPECT_EQ(lines[1]["request"], "req-7");
  EXPECT_FALSE(lines[1].contains("decision")) << "not known yet";
  EXPECT_EQ(lines[2]["decision"], "d-123");
  EXPECT_EQ(lines[2]["level"], "error");
  EXPECT_EQ(lines[2]["msg"], "bytes \xEF\xBF\xBD that are not UTF-8");
}

TEST(Log, TextLinesEndWithTheRequestAndDecision) {
  const std::string out = Capture([] {
    Scope scope("req-8");
    scope.Decision("d-9");
    Warn("plugin:cf", "slow");
  });
  EXPECT_NE(out.find("[plugin:cf] slow request=req-8 decision=d-9"), std::string::npos) << out;
  const std::string after = Capture([] { Warn("plugin:cf", "later"); });
  EXPECT_EQ(after.find("request="), std::string::npos) << "the scope ended: " << after;
}

}  // namespace
}  // namespace tailor::log
