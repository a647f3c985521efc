#include "service/reply.h"

#include "tailor/messages.h"

namespace tailor {

nlohmann::json DecideReply(Decision d) {
  nlohmann::json reply = {{"v", TAILOR_SCHEMA_VERSION}, {"id", d.request_id},
                          {"decision", d.id},           {"personalised", d.personalised},
                          {"candidates", d.candidates}, {"offers", std::move(d.offers)}};
  if (!d.finalize.empty()) reply["finalize"] = std::move(d.finalize);
  if (!d.trace.is_null()) reply["trace"] = std::move(d.trace);
  if (d.mode != "live") reply["mode"] = d.mode;  // shadow: the offers are the app's own
  return reply;
}

std::variant<nlohmann::json, ApiError> DecideJson(Engine& engine, const DecideRequest& req,
                                                  DecideOptions options) {
  auto out = engine.Decide(req, options);
  if (auto* e = std::get_if<ApiError>(&out)) return std::move(*e);
  return DecideReply(std::move(std::get<Decision>(out)));
}

}  // namespace tailor
