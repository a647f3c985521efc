// Offers from YAML (config/offers.yaml) and from JSON (the store's offers
// table, written by `tailor import offers`).
#include <string>
#include <vector>

#include "config/config.h"
#include "fuzz_target.h"

TAILOR_FUZZ_TARGET(offers) {
  std::string path = tailor::fuzz::WriteScratch("offers.yaml", data, size);
  std::vector<tailor::Offer> offers;
  std::vector<std::string> errors;
  (void)tailor::LoadOffers(path, &offers, &errors);
  tailor::Offer offer;
  std::string error;
  (void)tailor::ParseOfferJson(std::string(reinterpret_cast<const char*>(data), size), "fuzz",
                               &offer, &error);
}
