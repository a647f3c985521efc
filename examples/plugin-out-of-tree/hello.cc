// The smallest useful plugin: every candidate that names an offer gets the
// configured score ({"score": 0.7}, default 0.5) and a reason; anything else
// gets no opinion. Built against the installed SDK (see CMakeLists.txt).
#include <memory>
#include <string>

#include <tailor/plugin_sdk.hpp>

namespace {

class Hello {
 public:
  static std::unique_ptr<Hello> Create(std::string_view config_json,
                                       const tailor::sdk::Host& /*host*/) {
    auto p = std::make_unique<Hello>();
    // A real plugin parses its config with a JSON library; this one needs one
    // number and keeps to the standard library.
    const auto at = config_json.find("\"score\"");
    if (at != std::string_view::npos) {
      const auto colon = config_json.find(':', at);
      const double v = std::stod(std::string(config_json.substr(colon + 1)));
      if (!(v >= 0 && v <= 1))
        throw tailor::sdk::InvalidConfig("hello config: score must be in [0, 1]");
      p->score_ = static_cast<float>(v);
    }
    return p;
  }

  void Score(const tailor::sdk::Request& /*req*/, std::span<const tailor_candidate> candidates,
             std::span<float> scores, tailor::sdk::Reasons& reasons) const {
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].offer_id == nullptr) {
        scores[i] = TAILOR_SCORE_ABSTAIN;
        continue;
      }
      scores[i] = score_;
      reasons.Set(i, "hello from outside the tree");
    }
  }

 private:
  float score_ = 0.5f;
};

}  // namespace

TAILOR_PLUGIN(Hello, "hello", "1.0.0");
