// The data types every layer shares: events, customers, items, profiles,
// offers and the catalog (decide requests: model/decide_request.h, apart
// because they carry JSON). Plain values with no behaviour
// beyond their fields, so the store, config, rules, journeys, decision and
// service layers can all include this without reaching into one another.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/event_history.h"

namespace tailor {

struct Event {
  std::string customer_id;
  std::string type;  // view, click, add_to_cart, purchase, chat, impression, ...
  std::string item_id;
  std::string offer_id;
  std::string decision_id;
  std::string channel;
  std::string text;  // chat line or search query
  int64_t ts_ms = 0;
  double value = 0;
  double quantity = 0;
  std::string properties_json = "{}";  // anything else the client sent
  int64_t seq = 0;                     // assigned by the store on insert
};

struct Customer {
  std::string id;
  std::string attributes_json = "{}";  // declared attributes: age, city, segment, ...
  std::string consent_json = "{}";     // e.g. {"personalization":true,"email":false}
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct Item {
  std::string id;
  std::string title;
  std::string description;
  std::string category;
  std::string brand;
  double price = 0;
  std::string attributes_json = "{}";
};

// What the decision loop knows about a customer.
struct Profile {
  bool known = false;  // false: no row in customers and no events
  Customer customer;
  std::map<std::string, int64_t> counts;  // events by type, all time
  std::vector<Event> recent;              // newest last, at most the requested limit
  // Every event since history.horizon_ms() (the load's history_days), by
  // type x offer/item id: what rules' history.* answer from, whatever the
  // recent limit is.
  EventHistory history;
  int64_t first_seen_ms = 0;
  int64_t last_seen_ms = 0;
};

struct Offer {
  std::string id;
  std::string name;
  std::string item;                     // promoted item id, or empty
  std::string category;                 // promoted category, or empty
  std::string content;                  // promoted content reference, or empty
  double value = 1.0;                   // business value (margin) of one conversion
  std::vector<std::string> channels;    // empty = every channel
  std::vector<std::string> placements;  // empty = every offers placement
  int64_t valid_from_ms = std::numeric_limits<int64_t>::min();
  int64_t valid_until_ms = std::numeric_limits<int64_t>::max();
  std::map<std::string, std::string> tags;
  std::optional<std::pair<double, double>> discount;  // min, max fraction
  // Dynamic discounts (pricing/pricing.h): the levels are min, min + step,
  // ..., max. price and cost give the margin of one conversion at discount d,
  // price x (1 - d) - cost; without price, value is the price (and, with no
  // cost, the margin at no discount).
  double discount_step = 0.05;
  std::optional<double> price;
  double cost = 0;
  std::string discount_where;  // "file:line:col" of discount:, for guardrail errors
  std::map<std::string, double> channel_weights;  // extra C per channel
  std::string source;  // "file:line" where it was defined, for explanations
};

// Offers and items as served; never modified after publication.
struct Catalog {
  // Offer id -> index into offers.
  std::unordered_map<std::string, size_t> offer_index;
  std::vector<Offer> offers;
  std::vector<Item> items;
  std::vector<double> item_value;  // price x margin (or price, or 1) per item
  std::unordered_map<std::string, size_t> item_index;
  double max_offer_value = 1.0;
};

}  // namespace tailor
