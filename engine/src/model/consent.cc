#include "model/consent.h"

#include <nlohmann/json.hpp>

namespace tailor {

Consent ParseConsent(std::string_view consent_json) {
  Consent c;
  const nlohmann::json j = nlohmann::json::parse(consent_json, nullptr, false);
  if (!j.is_object()) return c;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_boolean()) continue;
    const bool allowed = value.get<bool>();
    if (key == "personalization")
      c.personalization = allowed;
    else if (key == "profiling")
      c.profiling = allowed;
    else
      c.channels.emplace(key, allowed);
  }
  return c;
}

}  // namespace tailor
