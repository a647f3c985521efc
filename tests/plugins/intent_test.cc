// The intent plugin through the host: trained on a tiny planted data set,
// config errors with file:line, oos, observe, save/load.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
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

// A tiny word vectors file in the "tailor-word-vectors" format of
// tools/fetch_embeddings.py (not the real vectors): 8 dimensions, one axis
// per planted intent, shared words on another, out-of-scope topics on the
// last three; words unseen in training ("melody", "tune", "halt", ...) sit
// with their intent's words.
void WriteTinyVectors(const std::string& path) {
  struct W {
    const char* word;
    int axis;
    float extra;  // on axis 4 (the shared words' axis)
  };
  const std::vector<W> words = {
      {"phone", 0, 0},     {"smartphone", 0, 0}, {"handset", 0, 0},   {"mobile", 0, 0},
      {"cellphone", 0, 0}, {"upgrade", 0, 1},    {"song", 1, 0},      {"music", 1, 0},
      {"playlist", 1, 0},  {"album", 1, 0},      {"melody", 1, 0},    {"tune", 1, 0},
      {"play", 1, 1},      {"cancel", 2, 0},     {"terminate", 2, 0}, {"end", 2, 0},
      {"quit", 2, 0},      {"halt", 2, 0},       {"contract", 2, 1},  {"i", 4, 0},
      {"want", 4, 0},      {"to", 4, 0},         {"my", 4, 0},        {"can", 4, 0},
      {"you", 4, 0},       {"the", 4, 0},        {"please", 4, 0},    {"a", 4, 0},
      {"now", 4, 0},       {"how", 4, 0},        {"do", 4, 0},        {"this", 4, 0},
      {"help", 4, 0},      {"me", 4, 0},         {"today", 4, 0},     {"hear", 4, 0},
      {"weather", 5, 0},   {"mars", 5, 0},       {"rain", 5, 0},      {"dinosaurs", 6, 0},
      {"tall", 6, 0},      {"eiffel", 6, 0},     {"tower", 6, 0},     {"won", 7, 0},
      {"match", 7, 0},     {"novel", 7, 0},      {"sun", 5, 0}};
  const uint32_t dims = 8;
  std::string out("tailor-word-vectors", 20);  // with its NUL
  auto u32 = [&out](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  u32(1);
  u32(dims);
  u32(static_cast<uint32_t>(words.size()));
  for (const W& w : words) {
    out.push_back(static_cast<char>(std::strlen(w.word)));
    out += w.word;
  }
  for (size_t i = 0; i < words.size(); ++i) {
    const float scale = 1.0f / 127;
    out.append(reinterpret_cast<const char*>(&scale), 4);
  }
  for (size_t i = 0; i < words.size(); ++i) {
    for (uint32_t d = 0; d < dims; ++d) {
      int v = static_cast<int>(d) == words[i].axis ? 120 : 0;
      if (d == 4 && words[i].extra > 0) v = 60;
      if (static_cast<int>(d) == (words[i].axis + 3 + static_cast<int>(i % 3)) % 8)
        v += 10;  // a little individuality
      out.push_back(static_cast<char>(static_cast<int8_t>(v)));
    }
  }
  testing::WriteFile(path, out);
}

TEST_F(IntentTest, EmbeddingsCarryUnseenWordsAndTheModelKeepsWhatItNeeds) {
  const std::string vectors = dir_.file("tiny.vec");
  WriteTinyVectors(vectors);
  std::string err;
  const std::string config = R"({"data": ")" + dir_.file("train.csv") + R"(", "intents": ")" +
                             dir_.file("intents.yaml") + R"(", "embeddings": ")" + vectors +
                             R"("})";
  auto p = Load(config, &err);
  ASSERT_NE(p, nullptr) << err;
  Status s = p->Train();
  ASSERT_TRUE(s.ok()) << s.message();
  // Words the training texts never had, known only through their vectors:
  // the model without vectors gets these wrong (out of scope, play_music).
  auto plain = LoadTrained();
  ASSERT_NE(plain, nullptr);
  const std::pair<const char*, const char*> unseen[] = {
      {"hear a melody", "intent play_music"},
      {"can you halt this", "intent cancel_contract"},
      {"how do i halt", "intent cancel_contract"}};
  for (const auto& [text, want] : unseen) {
    EXPECT_THAT(Decide(*p, text).reasons[0], HasSubstr(want)) << text;
    EXPECT_THAT(Decide(*plain, text).reasons[0], ::testing::Not(HasSubstr(want))) << text;
  }
  // The planted intents as before, and out of scope (no known word at all,
  // or only out-of-scope topics).
  auto r = Decide(*p, "i would like to upgrade my old smartphone");
  EXPECT_GT(r.scores[0], 0.5f);
  EXPECT_THAT(r.reasons[0], HasSubstr("intent upgrade_phone"));
  for (const char* text : {"zqxv bnmlk wrtp", "rain on mars"})
    EXPECT_THAT(Decide(*p, text).reasons[0], HasSubstr("out of scope")) << text;

  // The saved model (format version 4) works without the vectors file.
  const std::string model = dir_.file("intent.model");
  ASSERT_TRUE(p->Save(model).ok());
  const std::string data = testing::ReadFile(model);
  const std::string magic = std::string("tailor-intent-model") + '\0';
  const size_t at = data.find(magic);
  ASSERT_NE(at, std::string::npos);
  uint32_t version = 0;
  std::memcpy(&version, data.data() + at + magic.size(), sizeof version);
  EXPECT_EQ(version, 4u);
  std::remove(vectors.c_str());
  auto q = Load(Config(dir_.file("intents.yaml")), &err);
  ASSERT_NE(q, nullptr) << err;
  ASSERT_TRUE(q->LoadModel(model).ok());
  for (const char* text :
       {"hear a melody", "how do i halt", "upgrade my phone", "zqxv bnmlk wrtp", "rain on mars"}) {
    auto a = Decide(*p, text), b = Decide(*q, text);
    EXPECT_EQ(a.scores, b.scores) << text;
    EXPECT_EQ(a.reasons, b.reasons) << text;
  }
  // A truncated version 4 file is refused, naming the file.
  testing::WriteFile(dir_.file("cut.model"), data.substr(0, data.size() - 100));
  s = q->LoadModel(dir_.file("cut.model"));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("cut.model"));
}

TEST_F(IntentTest, BadEmbeddingsFileFailsTrainingNamingIt) {
  const std::string bad = dir_.file("bad.vec");
  testing::WriteFile(bad, "not vectors at all");
  std::string err;
  for (const std::string& path : {bad, dir_.file("missing.vec")}) {
    auto p = Load(
        R"({"data": ")" + dir_.file("train.csv") + R"(", "embeddings": ")" + path + R"("})", &err);
    ASSERT_NE(p, nullptr) << err;
    Status s = p->Train();
    EXPECT_FALSE(s.ok()) << path;
    EXPECT_THAT(s.message(), HasSubstr(path));
  }
  EXPECT_EQ(Load(R"({"embeddings": 3})", &err), nullptr);
  EXPECT_THAT(err, HasSubstr("embeddings: expected a file path"));
}

}  // namespace
}  // namespace tailor
