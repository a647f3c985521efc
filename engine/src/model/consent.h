// A customer's consent (customers.consent, README § Consent): which uses of
// their data they allow. A key that is absent, or not a boolean, allows.
//   personalization  decisions tailored to them; false: they are answered as
//                    an anonymous visitor, and nothing they do is learned
//   profiling        their behaviour feeds models, journeys and response
//                    models; false: their events are stored and used for
//                    nothing else
//   email, sms, push, web, ...  contact (outbound steps) and decisions on
//                    that channel
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace tailor {

struct Consent {
  bool personalization = true;
  bool profiling = true;
  std::map<std::string, bool, std::less<>> channels;  // only those stated

  // May their behaviour be learned from (models, journeys, responses)?
  bool learning() const { return personalization && profiling; }
  bool channel(std::string_view name) const {
    auto it = channels.find(name);
    return it == channels.end() || it->second;
  }
};

Consent ParseConsent(std::string_view consent_json);

}  // namespace tailor
