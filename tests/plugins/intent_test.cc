// The intent plugin through the host: trained on a tiny planted data set,
// config errors with file:line, oos, observe, save/load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "plugins/direct_plugin.h"
#include "plugins/plugin_test_util.h"

namespace tailor {
namespace {

using ::testing::HasSubstr;
using testing::kNowMs;
using testing::TempDir;

// Three intents with their own vocabulary, varied by templates, plus a few
// out-of-scope lines.
std::string PlantedCsv() {
  const char* phone[] = {"phone", "smartphone", "handset", "mobile"};
  const char* music[] = {"song", "music", "playlist", "album"};
  const char* cancel[] = {"cancel", "terminate", "end", "quit"};
  const char* frames[] = {"i want to %s my %s", "can you %s the %s", "please %s a %s now",
                          "how do i %s this %s", "help me %s my %s today"};
  std::ostringstream out;
  out << "text,label\n";
  char buf[128];
  for (const char* f : frames) {
    for (int k = 0; k < 4; ++k) {
      std::snprintf(buf, sizeof buf, f, "upgrade", phone[k]);
      out << buf << ",upgrade_phone\n";
      std::snprintf(buf, sizeof buf, f, "play", music[k]);
      out << buf << ",play_music\n";
      std::snprintf(buf, sizeof buf, f, cancel[k], "contract");
      out << buf << ",cancel_contract\n";
    }
  }
  for (const char* s :
       {"what is the weather on mars", "tell me about dinosaurs", "how tall is the eiffel tower",
        "who won the match yesterday", "recommend a good novel", "what time does the sun set"}) {
    out << s << ",oos\n";
  }
  return out.str();
}

const char* kIntentsYaml = R"(threshold: 0.6
memory_minutes: 30
intents:
  upgrade_phone:
    boost: {categories: [phones], offers: [o_phone]}
  cancel_contract:
    suppress_others: true
    journey: retention
)";

class IntentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.file("train.csv"), PlantedCsv());
    testing::WriteFile(dir_.file("intents.yaml"), kIntentsYaml);
  }

  std::string Config(const std::string& intents_file) const {
    return R"({"data": ")" + dir_.file("train.csv") + R"(", "intents": ")" + intents_file +
           R"(", "c": 2})";
  }

  std::unique_ptr<LoadedPlugin> Load(const std::string& config, std::string* err = nullptr) {
    PluginSpec spec;
    spec.name = "intent";
    spec.path = testing::BuiltinPluginPath("intent");
    spec.config_json = config;
    std::string e;
    auto p = LoadedPlugin::Load(spec, nullptr, dir_.path(), &e);
    if (err) *err = e;
    return p;
  }

  std::unique_ptr<LoadedPlugin> LoadTrained() {
    std::string err;
    auto p = Load(Config(dir_.file("intents.yaml")), &err);
    EXPECT_NE(p, nullptr) << err;
    if (p) {
      Status s = p->Train();
      EXPECT_TRUE(s.ok()) << s.message();
    }
    return p;
  }

  // Scores the candidates for one request with context {"message": msg}
  // (none when msg is empty) for customer (may be null).
  testing::Scored Decide(LoadedPlugin& p, const std::string& msg, const char* customer = nullptr) {
    std::string ctx = msg.empty() ? "{}" : R"({"message": ")" + msg + R"("})";
    tailor_request_view req = testing::MakeRequest();
    req.context_json = ctx.c_str();
    req.customer_id = customer;
    req.known_customer = customer != nullptr;
    testing::Scored out;
    out.scores.assign(cands_.size(), -1);
    std::vector<char> reasons(cands_.size() * 128, 0);
    out.status = p.Score(req, cands_.data(), cands_.size(), out.scores.data(), reasons.data(), 128);
    for (size_t i = 0; i < cands_.size(); ++i) out.reasons.emplace_back(reasons.data() + i * 128);
    return out;
  }

  TempDir dir_;
  const std::vector<tailor_candidate> cands_ = {testing::CategoryCandidate("o_phone", "phones"),
                                                testing::CategoryCandidate("o_audio", "audio"),
                                                testing::OfferCandidate("o_other")};
};

TEST_F(IntentTest, RecoversPlantedIntentsAndBoostsTheirCategory) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  auto r = Decide(*p, "i would like to upgrade my old smartphone");
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_GT(r.scores[0], 0.5f);                  // phones boosted
  EXPECT_EQ(r.scores[1], TAILOR_SCORE_ABSTAIN);  // audio untouched: no opinion
  EXPECT_THAT(r.reasons[0], HasSubstr("intent upgrade_phone ("));
  EXPECT_THAT(r.reasons[0], HasSubstr("boosts o_phone"));
  EXPECT_THAT(r.reasons[1], HasSubstr("not affected"));

  // cancel_contract suppresses everything and names its journey.
  r = Decide(*p, "please terminate my contract");
  ASSERT_TRUE(r.status.ok());
  for (size_t i = 0; i < r.scores.size(); ++i) {
    EXPECT_LT(r.scores[i], 0.5f) << i;
    EXPECT_THAT(r.reasons[i], HasSubstr("intent cancel_contract"));
    EXPECT_THAT(r.reasons[i], HasSubstr("journey retention"));
  }

  // An intent with no action is named but moves nothing.
  r = Decide(*p, "play my favourite album");
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.scores, std::vector<float>(3, TAILOR_SCORE_ABSTAIN));
  EXPECT_THAT(r.reasons[0], HasSubstr("intent play_music"));
}

TEST_F(IntentTest, GibberishIsOutOfScope) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  for (const char* text : {"zqxv bnmlk wrtp", "zzxq vvkj fffw"}) {
    auto r = Decide(*p, text);
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.scores, std::vector<float>(3, TAILOR_SCORE_ABSTAIN)) << text;
    EXPECT_THAT(r.reasons[0], HasSubstr("out of scope")) << text;
  }
  // No message at all: no opinion, no reason.
  auto r = Decide(*p, "");
  EXPECT_EQ(r.scores, std::vector<float>(3, TAILOR_SCORE_ABSTAIN));
  EXPECT_EQ(r.reasons[0], "");
}

TEST_F(IntentTest, ObservedChatSteersLaterDecisionsForThatCustomer) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  Event chat = testing::MakeEvent("c7", "chat", "", kNowMs - 60000);
  chat.text = "how do i upgrade this handset";
  ASSERT_TRUE(p->Observe(testing::ViewOf(chat)).ok());
  auto r = Decide(*p, "", "c7");
  EXPECT_GT(r.scores[0], 0.5f);
  EXPECT_THAT(r.reasons[0], HasSubstr("intent upgrade_phone"));
  // Another customer is unaffected.
  r = Decide(*p, "", "c8");
  EXPECT_EQ(r.scores[0], TAILOR_SCORE_ABSTAIN);
}

TEST_F(IntentTest, SaveLoadRoundTripsScores) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const std::string model = dir_.file("intent.model");
  ASSERT_TRUE(p->Save(model).ok());
  std::string err;
  auto q = Load(Config(dir_.file("intents.yaml")), &err);
  ASSERT_NE(q, nullptr) << err;
  ASSERT_TRUE(q->LoadModel(model).ok());
  for (const char* text : {"upgrade my phone", "end my contract", "zqxv bnmlk"}) {
    auto a = Decide(*p, text), b = Decide(*q, text);
    EXPECT_EQ(a.scores, b.scores) << text;
    EXPECT_EQ(a.reasons, b.reasons) << text;
  }
  testing::WriteFile(dir_.file("bad.model"), "tailor-intent-plugin 1\ntrained\nxx");
  Status s = q->LoadModel(dir_.file("bad.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("bad.model"));
}

TEST_F(IntentTest, ModelFromAnotherFormatVersionIsRefusedWithRetrain) {
  auto p = LoadTrained();
  ASSERT_NE(p, nullptr);
  const std::string model = dir_.file("intent.model");
  ASSERT_TRUE(p->Save(model).ok());
  std::string data = testing::ReadFile(model);
  // The u32 format version follows the plugin header and the model's magic
  // (with its terminating NUL).
  const std::string magic = std::string("tailor-intent-model") + '\0';
  const size_t at = data.find(magic);
  ASSERT_NE(at, std::string::npos);
  uint32_t version = 0;
  std::memcpy(&version, data.data() + at + magic.size(), sizeof version);
  EXPECT_EQ(version, 3u);  // 3: the ensemble (softmax regression, 1-NN texts)
  version = 2;
  std::memcpy(data.data() + at + magic.size(), &version, sizeof version);
  testing::WriteFile(dir_.file("v2.model"), data);
  std::string err;
  auto q = Load(Config(dir_.file("intents.yaml")), &err);
  ASSERT_NE(q, nullptr) << err;
  Status s = q->LoadModel(dir_.file("v2.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("format version 2 is not supported"));
  EXPECT_THAT(s.message(), HasSubstr("retrain"));
}

TEST_F(IntentTest, ConfigErrorsNameFileLineAndKey) {
  const std::string bad = dir_.file("bad_intents.yaml");
  testing::WriteFile(bad,
                     "threshold: 2\n"
                     "intents:\n"
                     "  upgrade_phone:\n"
                     "    boost: {categories: [phones]}\n"
                     "    strenght: 0.5\n"
                     "  cancel_contract:\n"
                     "    suppress_others: maybe\n");
  std::string err;
  EXPECT_EQ(Load(Config(bad), &err), nullptr);
  EXPECT_THAT(err, HasSubstr(bad + ":1:12: threshold: expected a number between 0 and 1"));
  EXPECT_THAT(err, HasSubstr(bad + ":5:5: intents.upgrade_phone.strenght: unknown key (valid: "
                                   "boost, suppress, suppress_others, journey, strength)"));
  EXPECT_THAT(err, HasSubstr(bad + ":7:22: intents.cancel_contract.suppress_others"));

  EXPECT_EQ(Load(R"({"intnets": "x"})", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("unknown key 'intnets'"));
  EXPECT_EQ(Load(R"({"intents": "/no/such/file.yaml"})", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("/no/such/file.yaml"));
}

TEST_F(IntentTest, AnnotateStatesIntentConfidenceAndMappedJourneyThroughTheAbi) {
  std::string err;
  auto p =
      testing::DirectPlugin::Open(testing::BuiltinPluginPath("intent"),
                                  Config(dir_.file("intents.yaml")), nullptr, dir_.path(), &err);
  ASSERT_NE(p, nullptr) << err;
  EXPECT_GE(p->api().abi_minor, 1u);
  ASSERT_NE(p->api().annotate, nullptr);
  tailor_request_view req = testing::MakeRequest();
  std::string out, ctx;
  auto annotate = [&](const std::string& context) {
    ctx = context;
    req.context_json = ctx.c_str();
    EXPECT_EQ(p->Annotate(req, &out, &err), TAILOR_OK) << err;
    return out;
  };
  EXPECT_EQ(annotate(R"({"message": "please terminate my contract"})"), "");  // untrained
  ASSERT_EQ(p->Train(&err), TAILOR_OK) << err;
  EXPECT_THAT(p->log(), ::testing::Contains(HasSubstr("threshold")));

  // A mapped intent with a journey and suppress_others.
  auto j = nlohmann::json::parse(annotate(R"({"message": "please terminate my contract"})"));
  ASSERT_TRUE(j.contains("context")) << out;
  EXPECT_FALSE(j.contains("customer"));
  EXPECT_EQ(j["context"]["intent"], "cancel_contract") << out;
  EXPECT_GT(j["context"]["intent_confidence"].get<double>(), 0.3) << out;
  EXPECT_LE(j["context"]["intent_confidence"].get<double>(), 1.0) << out;
  EXPECT_EQ(j["context"]["intent_journey"], "retention") << out;
  EXPECT_EQ(j["context"]["intent_suppress_others"], true) << out;

  // A mapped intent without either: only intent and confidence.
  j = nlohmann::json::parse(annotate(R"({"message": "i would like to upgrade my old phone"})"));
  EXPECT_EQ(j["context"]["intent"], "upgrade_phone") << out;
  EXPECT_FALSE(j["context"].contains("intent_journey")) << out;
  EXPECT_FALSE(j["context"].contains("intent_suppress_others")) << out;

  // Out of scope is named "oos", with no action.
  j = nlohmann::json::parse(annotate(R"({"message": "zqxv bnmlk wrtp"})"));
  EXPECT_EQ(j["context"]["intent"], "oos") << out;
  EXPECT_FALSE(j["context"].contains("intent_journey")) << out;

  // No message, an empty one, a non-string or a broken context: nothing.
  for (const char* c : {"{}", R"({"message": ""})", R"({"message": 42})", "not json", "[1]"})
    EXPECT_EQ(annotate(c), "") << c;
}

}  // namespace
}  // namespace tailor
