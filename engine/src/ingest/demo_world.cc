#include "ingest/demo_world.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/time.h"
#include "store/store.h"

namespace tailor::ingest {

namespace {

using json = nlohmann::json;

constexpr int64_t kSecondMs = 1000;
constexpr int64_t kMinuteMs = 60 * kSecondMs;
constexpr int64_t kHourMs = 60 * kMinuteMs;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr int64_t kWeekMs = 7 * kDayMs;

// --- Randomness --------------------------------------------------------------
// splitmix64 with our own distributions: std:: distributions differ between
// standard libraries, and the world must be the same everywhere for a seed.

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Streams keep parts independent: adding customers does not change the items.
enum Stream : uint64_t {
  kItemsStream = 1,
  kCustomerStream = 2,
  kEventStream = 3,
  kPromoStream = 4
};

class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream, uint64_t index)
      : state_(Mix(Mix(seed ^ Mix(stream)) + index)) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Inclusive on both ends.
  int Int(int lo, int hi) {
    return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  int64_t Int64(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(double p) { return Uniform() < p; }
  double Normal() {
    double u1 = 1.0 - Uniform();  // (0, 1]: log() stays finite
    double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  int Poisson(double lambda) {
    if (lambda <= 0) return 0;
    if (lambda > 40)
      return std::max(0, static_cast<int>(std::lround(lambda + std::sqrt(lambda) * Normal())));
    double limit = std::exp(-lambda), p = Uniform();
    int k = 0;
    while (p > limit) {
      p *= Uniform();
      ++k;
    }
    return k;
  }
  template <class T>
  const T& Pick(const std::vector<T>& v) {
    return v[Next() % v.size()];
  }
  // Index drawn with probability proportional to w[i]; w must not be all zero.
  size_t Weighted(const double* w, size_t n) {
    double total = 0;
    for (size_t i = 0; i < n; ++i) total += w[i];
    double r = Uniform() * total;
    for (size_t i = 0; i < n; ++i) {
      r -= w[i];
      if (r < 0) return i;
    }
    return n - 1;
  }
  size_t Weighted(const std::vector<double>& w) { return Weighted(w.data(), w.size()); }

 private:
  uint64_t state_;
};

// --- Calendar ----------------------------------------------------------------

// Month*100 + day of a day number since the epoch (Howard Hinnant's algorithm).
int MonthDay(int64_t day) {
  int64_t z = day + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return static_cast<int>(m * 100 + d);
}

int64_t DayOf(int64_t ms) { return ms >= 0 ? ms / kDayMs : (ms - kDayMs + 1) / kDayMs; }

bool GiftSeason(int md) { return md >= 1120 && md <= 1224; }

// Shoppers' activity by date: weekends, Black Friday week and the run-up to
// Christmas are busier for everyone.
double BaseDayWeight(int64_t day) {
  int md = MonthDay(day);
  int dow = static_cast<int>(((day % 7) + 11) % 7);  // 0 = Sunday; 1970-01-01 was a Thursday
  double w = 1.0;
  if (dow == 0 || dow == 6) w += 0.3;
  if (md >= 1122 && md <= 1202) w += 0.8;
  if (md >= 1203 && md <= 1222) w += 0.4;
  return w;
}

// Extra activity of a gift buyer, peaking in mid-December.
double GiftDayWeight(int64_t day) {
  int md = MonthDay(day);
  if (md >= 1125 && md <= 1130) return 1.0;
  if (md >= 1201 && md <= 1224) return 3.0 - std::abs((md - 1200) - 15) * 0.15;
  return 0;
}

// --- The catalog's shape -----------------------------------------------------

struct BrandSpec {
  const char* name;
  double price_mult;
};

struct CategorySpec {
  const char* name;
  double median_price;
  double price_sigma;
  double share;     // of the catalog
  double margin;    // typical margin
  bool multi_unit;  // cheap things bought two or three at a time
  std::vector<BrandSpec> brands;
  std::vector<const char*> nouns;
  std::vector<const char*> series;
  std::vector<const char*> features;
  std::vector<const char*> words;  // what the category is for, for descriptions
};

enum Category {
  kPhones,
  kLaptops,
  kTablets,
  kAudio,
  kWearables,
  kAccessories,
  kHome,
  kBeauty,
  kToys,
  kBooks,
  kNumCategories
};

const std::vector<CategorySpec>& Specs() {
  static const std::vector<CategorySpec> kSpecs = {
      {"phones",
       650,
       0.45,
       0.08,
       0.12,
       false,
       {{"Apple", 1.35}, {"Samsung", 1.1}, {"Pixel", 1.0}, {"Nokia", 0.55}, {"Motorola", 0.6}},
       {"Smartphone", "Phone"},
       {"Nova", "Edge", "Pro", "Lite", "Max", "Mini", "Ultra", "Plus"},
       {"5G", "OLED display", "triple camera", "fast charging", "128GB storage", "256GB storage",
        "water resistant", "night mode", "eSIM", "wireless charging", "telephoto zoom"},
       {"calls", "photos", "selfies", "messaging", "apps", "navigation", "social media", "video"}},
      {"laptops",
       1100,
       0.4,
       0.07,
       0.10,
       false,
       {{"Apple", 1.3}, {"Lenovo", 0.95}, {"Dell", 1.0}, {"HP", 0.9}, {"Asus", 0.85}},
       {"Laptop", "Notebook", "Ultrabook"},
       {"Air", "Book", "Pro", "Flex", "Zen", "Carbon", "Studio", "Go"},
       {"16GB RAM", "1TB SSD", "14-inch screen", "backlit keyboard", "touchscreen",
        "lightweight chassis", "dedicated GPU", "Thunderbolt ports", "fingerprint reader",
        "OLED panel"},
       {"office work", "coding", "spreadsheets", "video editing", "gaming", "studying",
        "multitasking", "remote meetings"}},
      {"tablets",
       480,
       0.4,
       0.05,
       0.14,
       false,
       {{"Apple", 1.3}, {"Samsung", 1.05}, {"Lenovo", 0.75}, {"Amazon", 0.45}},
       {"Tablet"},
       {"Tab", "Pad", "Slate", "Fire", "Air", "Mini"},
       {"10-inch display", "stylus support", "kids mode", "LTE", "keyboard cover", "64GB storage",
        "split screen", "quad speakers"},
       {"reading", "streaming", "drawing", "note taking", "travel", "ebooks", "sketching",
        "browsing"}},
      {"audio",
       160,
       0.7,
       0.10,
       0.30,
       false,
       {{"Sony", 1.1}, {"Bose", 1.3}, {"JBL", 0.8}, {"Sennheiser", 1.15}, {"Apple", 1.2}},
       {"Headphones", "Earbuds", "Speaker", "Soundbar"},
       {"Quiet", "Bass", "Studio", "Flow", "Pulse", "Wave"},
       {"noise cancelling", "wireless", "bluetooth 5.3", "30-hour battery", "waterproof",
        "spatial audio", "deep bass", "multipoint pairing"},
       {"music", "podcasts", "commuting", "movies", "parties", "hi-fi listening", "calls",
        "the gym"}},
      {"wearables",
       260,
       0.5,
       0.07,
       0.25,
       false,
       {{"Garmin", 1.2}, {"Fitbit", 0.7}, {"Apple", 1.25}, {"Samsung", 1.0}},
       {"Smartwatch", "Fitness Tracker", "Sports Watch"},
       {"Fit", "Run", "Active", "Sense", "Venu", "Charge"},
       {"heart-rate monitor", "GPS", "sleep tracking", "SpO2 sensor", "swim-proof", "7-day battery",
        "contactless pay", "always-on display"},
       {"running", "workouts", "step counting", "marathon training", "cycling", "swimming",
        "health tracking", "hiking"}},
      {"accessories",
       28,
       0.6,
       0.16,
       0.42,
       true,
       {{"Anker", 1.0}, {"Belkin", 1.1}, {"Spigen", 0.8}, {"Logitech", 1.2}},
       {"Case", "Charger", "Cable", "Power Bank", "Mouse", "Screen Protector", "Stand"},
       {},
       {"USB-C", "MagSafe", "braided", "65W", "slim", "shockproof", "tempered glass", "ergonomic"},
       {"charging", "protection", "your desk", "travel", "everyday carry", "grip", "the office",
        "cable management"}},
      {"home",
       120,
       0.7,
       0.13,
       0.30,
       false,
       {{"Philips", 1.0}, {"Dyson", 2.0}, {"IKEA", 0.6}, {"Bosch", 1.2}},
       {"Air Purifier", "Vacuum", "Coffee Maker", "Lamp", "Blender", "Kettle", "Toaster"},
       {"Home", "Pure", "Daily", "Smart", "Classic", "Cosy"},
       {"quiet motor", "smart app control", "energy efficient", "HEPA filter", "timer",
        "stainless steel", "cordless", "compact"},
       {"the kitchen", "cleaning", "coffee", "cooking", "the living room", "fresh air", "breakfast",
        "cosy evenings"}},
      {"beauty",
       26,
       0.6,
       0.12,
       0.40,
       true,
       {{"L'Oreal", 0.9}, {"Nivea", 0.6}, {"Clinique", 1.4}, {"Olay", 1.0}},
       {"Moisturiser", "Serum", "Cleanser", "Shampoo", "Sunscreen", "Night Cream"},
       {"Hydra", "Glow", "Pure", "Revive", "Daily", "Soft"},
       {"SPF 30", "fragrance-free", "vitamin C", "hyaluronic acid", "vegan", "dermatologist tested",
        "sensitive skin", "anti-ageing"},
       {"skincare", "hydration", "a morning routine", "radiant skin", "hair care", "dry skin",
        "a gentle cleanse", "sun protection"}},
      {"toys",
       38,
       0.7,
       0.10,
       0.30,
       true,
       {{"LEGO", 1.4}, {"Hasbro", 1.0}, {"Mattel", 0.9}, {"Playmobil", 1.1}},
       {"Building Set", "Board Game", "Doll", "Action Figure", "Puzzle", "Playset"},
       {"City", "Castle", "Space", "Jungle", "Pirate", "Farm", "Racing"},
       {"ages 6+", "ages 3+", "500 pieces", "family game", "collectible", "STEM learning",
        "glow in the dark", "battery-free"},
       {"kids", "family game night", "birthdays", "imaginative play", "building", "rainy days",
        "learning", "children"}},
      {"books",
       16,
       0.4,
       0.12,
       0.20,
       true,
       {{"Penguin", 1.0}, {"HarperCollins", 1.05}, {"O'Reilly", 2.4}, {"Vintage", 0.9}},
       {"Novel", "Cookbook", "Thriller", "Biography", "Memoir", "Fantasy"},
       {},
       {"hardcover", "paperback", "bestseller", "illustrated", "award-winning", "first edition",
        "large print"},
       {"readers", "book clubs", "long journeys", "bedtime reading", "literature lovers",
        "history buffs", "home cooks", "gifting"}},
  };
  return kSpecs;
}

// What each brand says about itself: words only that brand's items share.
const char* Tagline(const std::string& brand) {
  static const std::unordered_map<std::string, const char*> kTaglines = {
      {"Apple", "Designed in California with a seamless ecosystem and premium aluminium finish."},
      {"Samsung", "Galaxy-class engineering with a vivid AMOLED look."},
      {"Pixel", "Google smarts with computational photography built in."},
      {"Nokia", "Durable Finnish build at an honest price."},
      {"Motorola", "Clean Android and a battery that keeps going."},
      {"Lenovo", "ThinkPad heritage keyboard and business-grade reliability."},
      {"Dell", "XPS-inspired craftsmanship with enterprise support."},
      {"HP", "Reliable everyday computing with HP Wolf security."},
      {"Asus", "ROG-tuned cooling and creator-friendly performance."},
      {"Amazon", "Alexa built in and great value for the family."},
      {"Sony", "Signature Sony sound tuned by studio engineers."},
      {"Bose", "Legendary Bose acoustics and plush comfort."},
      {"JBL", "Pro sound with bold JBL bass for every party."},
      {"Sennheiser", "German audiophile precision and crystal clarity."},
      {"Garmin", "Garmin satellite accuracy for serious athletes."},
      {"Fitbit", "Friendly health insights and motivating badges."},
      {"Anker", "PowerIQ charging trusted by millions."},
      {"Belkin", "Certified quality with a lifetime connected-equipment warranty."},
      {"Spigen", "Military-grade drop protection in a slim profile."},
      {"Logitech", "Swiss-designed comfort for long working days."},
      {"Philips", "Dutch design for healthier living at home."},
      {"Dyson", "Powerful cyclone engineering and laser-precise cleaning."},
      {"IKEA", "Scandinavian simplicity for everyday home life."},
      {"Bosch", "Invented for life with German engineering."},
      {"L'Oreal", "Parisian beauty science because you are worth it."},
      {"Nivea", "Trusted blue-tin care for the whole family."},
      {"Clinique", "Allergy tested and dermatologist developed luxury care."},
      {"Olay", "Regenerist science for visibly younger skin."},
      {"LEGO", "Iconic interlocking bricks that spark creativity."},
      {"Hasbro", "Classic family favourites and game-night fun."},
      {"Mattel", "Beloved characters and collectible adventures."},
      {"Playmobil", "Detailed role-play worlds from Germany."},
      {"Penguin", "Timeless stories from a classic publishing house."},
      {"HarperCollins", "Bestselling authors and gripping page-turners."},
      {"O'Reilly", "Hands-on technical knowledge from practitioners."},
      {"Vintage", "Modern literary classics in elegant editions."},
  };
  auto it = kTaglines.find(brand);
  return it == kTaglines.end() ? "" : it->second;
}

// Persona: the mix of categories a customer shops; shared personas give the
// co-purchase structure collaborative filtering can find.
struct Persona {
  const char* name;
  std::array<double, kNumCategories> weight;  // phones ... books
  std::array<double, 4> by_segment;           // student, family, professional, retired
};

const std::vector<Persona>& Personas() {
  static const std::vector<Persona> kPersonas = {
      {"techie", {3, 3, 2, 2, 1, 3, 0, 0, 0, 0.5}, {2, 1, 2, 0.5}},
      {"fitness", {1, 0, 0, 3, 4, 1, 0, 1, 0, 0.5}, {1, 1, 1, 0.5}},
      {"homebody", {0, 0, 0.5, 0.5, 0, 0, 4, 1, 0.5, 2}, {0.3, 1.5, 1, 2}},
      {"beauty", {0.5, 0, 0, 0.5, 1, 0.5, 1, 5, 0, 1}, {1, 1, 1, 1}},
      {"parent", {0.5, 0, 1, 0, 0, 0.5, 2, 0.5, 5, 2}, {0, 4, 1, 0.8}},
      {"reader", {0, 0.5, 2, 1, 0, 0, 1, 0, 0, 5}, {1, 1, 1, 3}},
      {"student", {2, 3, 1, 3, 0.5, 2, 0, 0.5, 0, 1}, {4, 0.3, 1, 0}},
  };
  return kPersonas;
}

const char* const kSegments[] = {"student", "family", "professional", "retired"};

struct City {
  const char* name;
  double weight;
};
const City kCities[] = {{"London", 30},   {"Manchester", 9}, {"Birmingham", 9}, {"Leeds", 6},
                        {"Glasgow", 6},   {"Bristol", 6},    {"Liverpool", 6},  {"Edinburgh", 6},
                        {"Cardiff", 5},   {"Belfast", 4},    {"Newcastle", 5},  {"Brighton", 4},
                        {"Nottingham", 4}};

// --- The world ---------------------------------------------------------------

enum EventType : uint8_t { kView, kClick, kAddToCart, kPurchase, kReturn, kNumEventTypes };
const char* const kEventTypeNames[] = {"view", "click", "add_to_cart", "purchase", "return"};
enum Channel : uint8_t { kWeb, kApp, kEmail, kStore };
const char* const kChannelNames[] = {"web", "app", "email", "store"};
const char* const kReturnReasons[] = {"changed_mind", "damaged", "not_as_described", "wrong_size",
                                      "arrived_late"};

struct Product {
  Item item;
  int category = 0;
  int brand = 0;           // index into World::brands_
  int compatible = -1;     // accessories: the brand they fit; -1 universal
  double popularity = 0;   // relative, within the category
  double price_ratio = 1;  // price / the category's median
  bool sensitive = false;
};

struct Person {
  std::string id;
  int age = 0;
  const char* gender = "";
  const char* city = "";
  int segment = 0;
  int64_t signup_ms = 0;
  bool consent_personalization = true;
  bool consent_email = false;
  bool consent_sensitive = false;
  // Hidden traits.
  double deal_seeker = 0, night_owl = 0, big_spender = 0, gift_buyer = 0, churn_risk = 0;
  bool brand_passionate = false;
  int favourite_brand = -1;
  bool expecting = false;
  int persona = 0, persona2 = -1;
  std::array<double, kNumCategories> category_weight{};
  double sessions_per_week = 0;
  int64_t active_from = 0, active_to = 0;  // [from, to)
};

// Compact while generating; turned into Event rows only when written.
struct RawEvent {
  int64_t ts;
  uint32_t order;  // generation order breaks timestamp ties deterministically
  int32_t customer;
  int32_t item;
  uint8_t type;
  uint8_t channel;
  int8_t reason;  // return reason, -1 none
  bool gift_wrap;
  float discount;
  float quantity;
  double value;
};

class World {
 public:
  World(const DemoOptions& o, int64_t end_ms)
      : o_(o), end_ms_(end_ms), start_ms_(end_ms - static_cast<int64_t>(o.days) * kDayMs) {}

  int64_t start_ms() const { return start_ms_; }

  void MakeCatalog();
  void MakePeople();
  void MakeEvents(const DemoProgressFn& progress);

  const std::vector<Product>& products() const { return products_; }
  const std::vector<Person>& people() const { return people_; }
  std::vector<RawEvent>& events() { return events_; }
  const std::string& brand_name(int b) const { return brands_[b]; }

  // The item's discount in the week of ts: a deterministic promotion calendar,
  // busier in Black Friday week.
  double Discount(int item, int64_t ts) const {
    int64_t week = ts / kWeekMs;
    uint64_t h =
        Mix(Mix(o_.seed ^ kPromoStream) ^ (static_cast<uint64_t>(item) * 0x100000001B3ull) ^
            Mix(static_cast<uint64_t>(week)));
    double u = static_cast<double>(h >> 11) * 0x1.0p-53;
    int md = MonthDay(DayOf(ts));
    double p_promo = md >= 1120 && md <= 1202 ? 0.45 : 0.2;
    if (u >= p_promo) return 0;
    static const double kLevels[] = {0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5};
    return kLevels[(h >> 3) % 7];
  }

 private:
  struct Ctx;  // one customer's generation state
  int Brand(const std::string& name);
  int64_t TimeOfDay(const Person& p, Rng& rng, bool* night) const;
  int PickItem(const std::vector<int>& pool, const Person& p, int64_t ts, Rng& rng) const;
  void Session(Ctx& c, int64_t t, bool night, Rng& rng);
  void FollowUp(Ctx& c, int bought, int64_t after, Rng& rng);
  void Buy(Ctx& c, int item, int64_t ts, Channel ch, Rng& rng);
  bool Emit(Ctx& c, EventType type, int item, int64_t ts, Channel ch, double discount = 0,
            double qty = 0, double value = 0, int reason = -1, bool gift_wrap = false);
  double Pref(const Person& p, int cat) const;

  DemoOptions o_;
  int64_t end_ms_, start_ms_;
  std::vector<std::string> brands_;
  std::unordered_map<std::string, int> brand_ids_;
  std::vector<Product> products_;
  std::array<std::vector<int>, kNumCategories> by_category_;
  std::unordered_map<int64_t, std::vector<int>> by_category_brand_;  // cat * 1000 + brand
  std::vector<int> sensitive_;
  std::unordered_map<int, std::vector<int>> accessories_for_;  // brand -> accessories that fit it
  std::vector<int> universal_accessories_;
  std::vector<Person> people_;
  std::vector<RawEvent> events_;
};

struct World::Ctx {
  int index;
  const Person& p;
  std::vector<int> recent;  // recently viewed items, for revisits
  double top_weight;        // largest category weight of the person
};

int World::Brand(const std::string& name) {
  auto [it, inserted] = brand_ids_.try_emplace(name, static_cast<int>(brands_.size()));
  if (inserted) brands_.push_back(name);
  return it->second;
}

std::string Slug(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ') {
      out.push_back('-');
    } else {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

std::string Capitalised(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// Prices end in .99 (.49 under ten): what a shop would show.
double ShopPrice(double p) {
  if (p < 10) return std::max(0.99, std::floor(p * 2) / 2 + 0.49);
  return std::floor(p) + 0.99;
}

void World::MakeCatalog() {
  const auto& specs = Specs();
  Rng rng(o_.seed, kItemsStream, 0);
  int m = std::max(0, o_.items);

  // Category of each slot: largest-remainder split of M by share, at least one
  // item per category when M allows, then shuffled so ids do not give it away.
  std::vector<int> slots;
  {
    std::array<int, kNumCategories> count{};
    std::array<double, kNumCategories> rem{};
    int given = 0;
    for (int c = 0; c < kNumCategories; ++c) {
      double exact = specs[c].share * m;
      count[c] = static_cast<int>(exact);
      if (m >= kNumCategories) count[c] = std::max(count[c], 1);
      rem[c] = exact - count[c];
      given += count[c];
    }
    while (given < m) {
      int best = static_cast<int>(std::max_element(rem.begin(), rem.end()) - rem.begin());
      ++count[best];
      rem[best] = -1;
      ++given;
    }
    while (given > m) {  // only when the minimum of one pushed us over
      int best = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
      --count[best];
      --given;
    }
    for (int c = 0; c < kNumCategories; ++c) slots.insert(slots.end(), count[c], c);
    for (size_t i = slots.size(); i > 1; --i) std::swap(slots[i - 1], slots[rng.Next() % i]);
  }

  static const char* const kSensitive[][2] = {
      {"Prenatal Vitamins",
       "Folic acid and iron prenatal vitamins for pregnancy and expecting mothers."},
      {"Stretch Mark Cream", "Maternity body cream that soothes skin during pregnancy."},
      {"Pregnancy Test Kit",
       "Early pregnancy test with clear digital results for expecting parents."},
      {"Maternity Support Pillow",
       "Full-body maternity pillow for comfortable sleep during pregnancy."},
  };
  static const char* const kBookAdjectives[] = {"Silent",   "Hidden", "Last", "Golden", "Broken",
                                                "Midnight", "Lost",   "Wild", "Quiet",  "Distant"};
  static const char* const kBookNouns[] = {"Harbour", "Garden",    "Empire",  "River",
                                           "Kitchen", "Mountain",  "Letters", "City",
                                           "Orchard", "Lighthouse"};
  static const char* const kTechTopics[] = {"Rust", "Python",           "Kubernetes",       "SQL",
                                            "C++",  "Machine Learning", "Data Engineering", "Go"};

  products_.resize(slots.size());
  std::array<int, kNumCategories> seen{};
  std::array<int, kNumCategories> per_category{};
  for (int c : slots) ++per_category[c];
  for (size_t i = 0; i < slots.size(); ++i) {
    Product& p = products_[i];
    int c = slots[i];
    const CategorySpec& spec = specs[c];
    p.category = c;
    int nth = seen[c]++;
    const BrandSpec& brand = spec.brands[rng.Next() % spec.brands.size()];
    p.brand = Brand(brand.name);
    p.item.id = "i" + std::to_string(i + 1);
    p.item.category = spec.name;
    p.item.brand = brand.name;
    double price = spec.median_price * brand.price_mult * std::exp(spec.price_sigma * rng.Normal());
    price = std::clamp(price, spec.median_price * 0.15, spec.median_price * 6);
    p.item.price = ShopPrice(price);
    p.price_ratio = p.item.price / spec.median_price;

    // Three distinct features make the tags and the description.
    std::vector<const char*> features = spec.features;
    for (size_t k = 0; k < 3 && k < features.size(); ++k)
      std::swap(features[k], features[k + rng.Next() % (features.size() - k)]);
    features.resize(std::min<size_t>(3, features.size()));
    std::vector<const char*> words = spec.words;
    for (size_t k = 0; k < 3 && k < words.size(); ++k)
      std::swap(words[k], words[k + rng.Next() % (words.size() - k)]);

    // A few home and beauty items are pregnancy products: the sensitive
    // category that consent must gate.
    int sensitive_slots = (c == kHome || c == kBeauty) ? std::max(1, per_category[c] / 20) : 0;
    p.sensitive = nth < sensitive_slots && per_category[c] >= 4;
    const char* noun = rng.Pick(spec.nouns);
    std::string title;
    std::string description;
    if (p.sensitive) {
      int which = (c == kBeauty ? 0 : 2) + (nth % 2);
      title = std::string(brand.name) + " " + kSensitive[which][0];
      description = std::string(kSensitive[which][1]) + " ";
    } else if (c == kBooks) {
      if (brand.name == std::string("O'Reilly")) {
        title = std::string(rng.Chance(0.5) ? "Learning " : "Practical ") +
                kTechTopics[rng.Next() % std::size(kTechTopics)];
        noun = "Guide";
      } else {
        title = std::string("The ") + kBookAdjectives[rng.Next() % 10] + " " +
                kBookNouns[rng.Next() % 10];
      }
      title += std::string(" (") + noun + ")";
    } else if (c == kAccessories) {
      static const int kFits[] = {-1, -1, 0, 1, 2};  // universal, Apple, Samsung, Pixel
      int fit = kFits[rng.Next() % 5];
      static const char* const kFitNames[] = {"Apple", "Samsung", "Pixel"};
      title = std::string(brand.name) + " " + Capitalised(features[0]) + " " + noun;
      if (fit >= 0) {
        p.compatible = Brand(kFitNames[fit]);
        title += std::string(" for ") + kFitNames[fit];
      }
    } else {
      title = std::string(brand.name) + " " + rng.Pick(spec.series) + " " +
              std::to_string(rng.Int(2, 9)) + " " + noun;
    }
    p.item.title = title;
    description += title + ". " + Capitalised(features[0]);
    if (features.size() > 2)
      description += std::string(", ") + features[1] + " and " + features[2] + ". ";
    description += std::string("Made for ") + words[0] + ", " + words[1] + " and " + words[2] +
                   ". " + Tagline(brand.name);
    p.item.description = description;

    json tags = json::array();
    for (const char* f : features) tags.push_back(Slug(f));
    if (p.price_ratio > 1.6) tags.push_back("premium");
    if (p.price_ratio < 0.6) tags.push_back("budget");
    bool giftable = c == kToys || c == kBooks ||
                    ((c == kAudio || c == kWearables || c == kBeauty) && rng.Chance(0.3));
    if (giftable && !p.sensitive) tags.push_back("gift");
    if (rng.Chance(0.1)) tags.push_back("new");
    json attrs = {
        {"margin",
         std::round(std::clamp(spec.margin + 0.06 * rng.Normal(), 0.05, 0.45) * 100) / 100},
        {"tags", tags},
        {"rating", std::round(rng.Uniform(3.2, 5.0) * 10) / 10}};
    if (p.compatible >= 0) attrs["compatible"] = brands_[p.compatible];
    if (p.sensitive) {
      attrs["sensitive"] = "pregnancy";
      attrs["tags"].push_back("pregnancy");
    }
    p.item.attributes_json = attrs.dump();
  }

  // Popularity: a Zipf curve over a random order within each category.
  for (size_t i = 0; i < products_.size(); ++i)
    by_category_[products_[i].category].push_back(static_cast<int>(i));
  for (int c = 0; c < kNumCategories; ++c) {
    std::vector<int> order = by_category_[c];
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.Next() % i]);
    for (size_t r = 0; r < order.size(); ++r) {
      Product& p = products_[order[r]];
      p.popularity = 1.0 / std::pow(static_cast<double>(r + 1), 0.8);
      if (p.sensitive) p.popularity = 1.0;  // found by those who look for them
      if (r < 3 && !p.sensitive) {
        json attrs = json::parse(p.item.attributes_json);
        attrs["tags"].push_back("bestseller");
        p.item.attributes_json = attrs.dump();
      }
    }
  }
  for (size_t i = 0; i < products_.size(); ++i) {
    const Product& p = products_[i];
    int idx = static_cast<int>(i);
    by_category_brand_[p.category * 1000 + p.brand].push_back(idx);
    if (p.sensitive) sensitive_.push_back(idx);
    if (p.category == kAccessories) {
      if (p.compatible >= 0) {
        accessories_for_[p.compatible].push_back(idx);
      } else {
        universal_accessories_.push_back(idx);
      }
    }
  }
}

void World::MakePeople() {
  const auto& personas = Personas();
  const auto& specs = Specs();
  int n = std::max(0, o_.customers);
  people_.resize(n);
  std::vector<double> city_w;
  for (const City& c : kCities) city_w.push_back(c.weight);
  for (int i = 0; i < n; ++i) {
    Rng rng(o_.seed, kCustomerStream, static_cast<uint64_t>(i));
    Person& p = people_[i];
    p.id = "c" + std::to_string(i + 1);
    // A few under 21 (age-gated offers need them), most between 25 and 60.
    p.age = rng.Chance(0.05)
                ? rng.Int(18, 20)
                : std::clamp(static_cast<int>(std::lround(41 + 13 * rng.Normal())), 21, 75);
    double g = rng.Uniform();
    p.gender = g < 0.49 ? "f" : g < 0.97 ? "m" : "x";
    p.city = kCities[rng.Weighted(city_w)].name;
    if (p.age < 25) {
      p.segment = rng.Chance(0.65) ? 0 : 2;
    } else if (p.age >= 65) {
      p.segment = rng.Chance(0.75) ? 3 : 1;
    } else {
      p.segment = rng.Chance(0.45) ? 1 : 2;
    }
    p.consent_personalization = rng.Chance(0.95);
    p.consent_email = rng.Chance(0.7);
    p.consent_sensitive = rng.Chance(0.3);

    auto high = [&](double share) {
      return rng.Chance(share) ? rng.Uniform(0.65, 1.0) : rng.Uniform(0.0, 0.3);
    };
    p.deal_seeker = high(p.segment == 0 ? 0.4 : 0.26);
    p.night_owl = high(p.age < 30 ? 0.28 : 0.1);
    p.big_spender = high(p.deal_seeker >= 0.5 ? 0.06 : (p.segment == 2 ? 0.22 : 0.14));
    p.gift_buyer = high(p.segment == 1 ? 0.25 : 0.15);
    p.churn_risk = high(0.12);
    p.expecting = p.gender[0] == 'f' && p.age >= 22 && p.age <= 40 && rng.Chance(0.1);

    std::vector<double> pw;
    for (const Persona& ps : personas) pw.push_back(ps.by_segment[p.segment]);
    p.persona = static_cast<int>(rng.Weighted(pw));
    if (rng.Chance(0.4)) {
      pw[p.persona] = 0;
      p.persona2 = static_cast<int>(rng.Weighted(pw));
    }
    for (int c = 0; c < kNumCategories; ++c) {
      p.category_weight[c] = personas[p.persona].weight[c] + 0.2 +
                             (p.persona2 >= 0 ? 0.5 * personas[p.persona2].weight[c] : 0);
    }

    // Brand passion: a brand from the favourite category, big multi-category
    // brands more likely; its categories become more attractive.
    p.brand_passionate = rng.Chance(0.2);
    if (p.brand_passionate) {
      int top =
          static_cast<int>(std::max_element(p.category_weight.begin(), p.category_weight.end()) -
                           p.category_weight.begin());
      std::vector<double> bw;
      double bw_total = 0;
      for (const BrandSpec& b : specs[top].brands) {
        int spans = 0;  // categories where the catalog has this brand
        int id = Brand(b.name);
        for (int c = 0; c < kNumCategories; ++c)
          spans += by_category_brand_.count(c * 1000 + id) > 0;
        bw.push_back(std::pow(spans, 1.5));
        bw_total += bw.back();
      }
      if (bw_total > 0) {
        p.favourite_brand = Brand(specs[top].brands[rng.Weighted(bw)].name);
        for (int c = 0; c < kNumCategories; ++c) {
          if (by_category_brand_.count(c * 1000 + p.favourite_brand)) p.category_weight[c] += 1.0;
        }
      } else {
        p.brand_passionate = false;
      }
    }

    p.sessions_per_week = std::clamp(std::exp(std::log(0.42) + 0.6 * rng.Normal()), 0.08, 4.0);
    if (p.gift_buyer >= 0.5) p.sessions_per_week *= 0.8;  // their December makes up for it
    int64_t span = static_cast<int64_t>(o_.days) * kDayMs;
    if (rng.Chance(0.25) && o_.days > 14 && p.churn_risk < 0.5) {
      p.signup_ms = start_ms_ + rng.Int64(0, span - 7 * kDayMs);  // joined during the window
    } else {
      p.signup_ms = start_ms_ - rng.Int64(kDayMs, 3 * 365 * kDayMs);
    }
    p.active_from = std::max(start_ms_, p.signup_ms);
    p.active_to = end_ms_;
    // Churners go quiet: nothing in the last 60 days (and up to 30 more).
    if (p.churn_risk >= 0.5) p.active_to = end_ms_ - 60 * kDayMs - rng.Int64(0, 30 * kDayMs);
  }
}

double World::Pref(const Person& p, int cat) const { return p.category_weight[cat]; }

int64_t World::TimeOfDay(const Person& p, Rng& rng, bool* night) const {
  // Night owls shop 22:00-03:00 UTC most of the time; others rarely do.
  double p_night =
      p.night_owl >= 0.5 ? 0.6 + 0.35 * (p.night_owl - 0.5) / 0.5 : 0.02 + 0.08 * p.night_owl;
  static const int kNightHours[] = {22, 23, 0, 1, 2};
  static const double kNightW[] = {3, 4, 4, 3, 2};
  static const double kDayW[] = {1, 2, 2, 2, 3, 4, 4, 3, 3, 3, 3, 4, 5, 6, 4};  // 07:00-21:00
  int hour;
  int max_minute = 59;
  if (rng.Chance(p_night)) {
    *night = true;
    hour = kNightHours[rng.Weighted(kNightW, 5)];
    if (hour == 2) max_minute = 44;  // sessions end before 03:00
  } else {
    *night = false;
    hour = 7 + static_cast<int>(rng.Weighted(kDayW, 15));
    if (hour == 21) max_minute = 44;
  }
  return hour * kHourMs + rng.Int(0, max_minute) * kMinuteMs + rng.Int(0, 59999);
}

int World::PickItem(const std::vector<int>& pool, const Person& p, int64_t ts, Rng& rng) const {
  thread_local std::vector<double> w;
  w.resize(pool.size());
  // Big spenders lean to the top of each category's price range, others to the bottom.
  double price_exp = 2.2 * (p.big_spender - 0.4);
  for (size_t i = 0; i < pool.size(); ++i) {
    const Product& pr = products_[pool[i]];
    double x = pr.popularity * std::pow(pr.price_ratio, price_exp);
    x *= 1 + 5 * p.deal_seeker * Discount(pool[i], ts);
    if (pr.brand == p.favourite_brand) x *= 2;
    if (pr.sensitive && !p.expecting) x *= 0.03;
    w[i] = x;
  }
  return pool[rng.Weighted(w)];
}

bool World::Emit(Ctx& c, EventType type, int item, int64_t ts, Channel ch, double discount,
                 double qty, double value, int reason, bool gift_wrap) {
  if (ts < start_ms_ || ts >= end_ms_ || ts >= c.p.active_to) return false;
  events_.push_back(RawEvent{ts, static_cast<uint32_t>(events_.size()), c.index, item,
                             static_cast<uint8_t>(type), static_cast<uint8_t>(ch),
                             static_cast<int8_t>(reason), gift_wrap, static_cast<float>(discount),
                             static_cast<float>(qty), value});
  return true;
}

void World::Buy(Ctx& c, int item, int64_t ts, Channel ch, Rng& rng) {
  const Product& pr = products_[item];
  const Person& p = c.p;
  double d = Discount(item, ts);
  double qty = Specs()[pr.category].multi_unit && rng.Chance(0.2) ? rng.Int(2, 3) : 1;
  double value = std::round(pr.item.price * (1 - d) * qty * 100) / 100;
  bool season = GiftSeason(MonthDay(DayOf(ts)));
  bool wrap = rng.Chance(p.gift_buyer * (season ? 0.6 : 0.2));
  if (!Emit(c, kPurchase, item, ts, ch, d, qty, value, -1, wrap)) return;
  // Returns: pricier electronics and deep discounts come back more often.
  double p_return = 0.04 + (pr.category <= kWearables ? 0.04 : 0) + (d >= 0.4 ? 0.03 : 0);
  if (rng.Chance(p_return)) {
    bool night = false;
    int64_t day = DayOf(ts) + rng.Int(2, 21);
    int64_t rts = day * kDayMs + TimeOfDay(p, rng, &night);
    Channel rch = !night && rng.Chance(0.3) ? kStore : ch == kStore ? kWeb : ch;
    Emit(c, kReturn, item, rts, rch, d, qty, value, rng.Int(0, 4));
  }
  if (pr.category == kPhones || pr.category == kLaptops || pr.category == kTablets) {
    if (rng.Chance(0.45)) FollowUp(c, item, ts, rng);
  }
}

// After a device, an accessory that fits it: the co-purchase pattern
// ("people who bought this phone bought this case").
void World::FollowUp(Ctx& c, int bought, int64_t after, Rng& rng) {
  const Person& p = c.p;
  const std::vector<int>* pool = &by_category_[kAccessories];
  auto fit = accessories_for_.find(products_[bought].brand);
  if (fit != accessories_for_.end() && rng.Chance(0.75)) {
    pool = &fit->second;
  } else if (!universal_accessories_.empty()) {
    pool = &universal_accessories_;
  }
  if (pool->empty()) return;
  bool night = false;
  int64_t day = DayOf(after) + rng.Int(0, 7);
  int64_t t = day * kDayMs + TimeOfDay(p, rng, &night);
  if (t <= after) t = after + rng.Int64(10 * kMinuteMs, 3 * kHourMs);
  Channel ch = p.consent_email && rng.Chance(0.3) ? kEmail : rng.Chance(0.5) ? kApp : kWeb;
  int n = rng.Int(1, 3);
  for (int k = 0; k < n; ++k) {
    int item = PickItem(*pool, p, t, rng);
    double d = Discount(item, t);
    if (k == 0 && ch == kEmail) {
      Emit(c, kClick, item, t, ch, d);
      t += rng.Int64(3, 20) * kSecondMs;
    }
    Emit(c, kView, item, t, ch, d);
    t += rng.Int64(15, 120) * kSecondMs;
    if (rng.Chance(0.35)) {
      Emit(c, kAddToCart, item, t, ch, d);
      t += rng.Int64(10, 60) * kSecondMs;
      if (rng.Chance(0.75)) {
        Buy(c, item, t, ch, rng);
        t += rng.Int64(10, 60) * kSecondMs;
      }
    }
  }
}

void World::Session(Ctx& c, int64_t t, bool night, Rng& rng) {
  const Person& p = c.p;
  int md = MonthDay(DayOf(t));

  // Which shelf the customer walks to this time.
  const std::vector<int>* pool = nullptr;
  int cat = -1;
  if (p.expecting && !sensitive_.empty() && rng.Chance(0.3)) {
    pool = &sensitive_;
  } else if (p.gift_buyer >= 0.5 && GiftSeason(md) && rng.Chance(0.85 * p.gift_buyer)) {
    static const int kGift[] = {kToys, kToys, kToys, kBooks, kBooks, kAudio, kWearables, kBeauty};
    cat = kGift[rng.Next() % 8];
  } else if (p.gift_buyer >= 0.5 && rng.Chance(0.5 * p.gift_buyer)) {
    cat = rng.Int(0, kNumCategories - 1);  // presents for all sorts of people
  } else if (p.favourite_brand >= 0 && rng.Chance(0.75)) {
    std::array<double, kNumCategories> w{};
    for (int k = 0; k < kNumCategories; ++k) {
      auto it = by_category_brand_.find(k * 1000 + p.favourite_brand);
      if (it != by_category_brand_.end()) {
        w[k] = Pref(p, k) + 0.5;
      }
    }
    cat = static_cast<int>(rng.Weighted(w.data(), w.size()));
    pool = &by_category_brand_.at(cat * 1000 + p.favourite_brand);
  } else if (rng.Chance(0.85)) {
    cat = static_cast<int>(rng.Weighted(p.category_weight.data(), kNumCategories));
  } else {
    cat = rng.Int(0, kNumCategories - 1);
  }
  if (pool == nullptr) pool = &by_category_[cat];
  if (pool->empty()) return;

  double u = rng.Uniform();
  Channel ch;
  if (!night && u < 0.04) {
    // In store: bought at the till, nothing browsed online.
    int n = rng.Chance(0.7) ? 1 : 2;
    for (int k = 0; k < n; ++k) {
      Buy(c, PickItem(*pool, p, t, rng), t, kStore, rng);
      t += rng.Int64(1, 5) * kMinuteMs;
    }
    return;
  } else if (p.consent_email && u < 0.14) {
    ch = kEmail;
  } else if (rng.Chance(night ? 0.65 : 0.4)) {
    ch = kApp;
  } else {
    ch = kWeb;
  }

  int views = 1 + rng.Poisson(2.1);
  std::vector<int> carted;
  for (int k = 0; k < views; ++k) {
    int item;
    if (!c.recent.empty() && rng.Chance(0.15)) {
      item = c.recent[rng.Next() % c.recent.size()];
    } else {
      item = PickItem(*pool, p, t, rng);
    }
    const Product& pr = products_[item];
    double d = Discount(item, t);
    if ((k == 0 && ch == kEmail) || rng.Chance(0.3)) {
      Emit(c, kClick, item, t, ch, d);
      t += rng.Int64(3, 20) * kSecondMs;
    }
    Emit(c, kView, item, t, ch, d);
    t += rng.Int64(15, 120) * kSecondMs;
    if (c.recent.size() < 20) {
      c.recent.push_back(item);
    } else {
      c.recent[rng.Next() % 20] = item;
    }

    // Deal seekers put discounted things in the basket and leave the rest;
    // price puts off everyone but big spenders.
    double p_cart = 0.085;
    p_cart *= d > 0 ? 1 + 2.0 * p.deal_seeker : 1 - 0.8 * p.deal_seeker;
    p_cart *= std::pow(pr.price_ratio, -0.35 * (1 - p.big_spender));
    if (pr.brand == p.favourite_brand) p_cart *= 1.6;
    p_cart *= 0.7 + 0.6 * Pref(p, pr.category) / c.top_weight;
    if (pr.sensitive && p.expecting) p_cart *= 2;
    if (rng.Chance(std::min(p_cart, 0.6))) {
      Emit(c, kAddToCart, item, t, ch, d);
      t += rng.Int64(10, 60) * kSecondMs;
      carted.push_back(item);
    }
  }
  for (int item : carted) {
    double d = Discount(item, t);
    double p_buy = 0.5 * (d > 0 ? 1 + 0.4 * p.deal_seeker : 1 - 0.5 * p.deal_seeker);
    if (rng.Chance(p_buy)) {
      Buy(c, item, t, ch, rng);
      t += rng.Int64(10, 60) * kSecondMs;
    } else if (rng.Chance(0.2)) {
      // The abandoned basket, bought a few days later (often after a reminder).
      bool n = false;
      int64_t later = (DayOf(t) + rng.Int(1, 5)) * kDayMs + TimeOfDay(p, rng, &n);
      Buy(c, item, later, p.consent_email && rng.Chance(0.5) ? kEmail : ch, rng);
    }
  }
}

void World::MakeEvents(const DemoProgressFn& progress) {
  int64_t first_day = DayOf(start_ms_);
  int64_t last_day = DayOf(end_ms_ - 1);
  std::vector<double> base, gift;
  for (int64_t d = first_day; d <= last_day; ++d) {
    base.push_back(BaseDayWeight(d));
    gift.push_back(GiftDayWeight(d));
  }
  std::vector<double> cumulative(base.size());
  events_.reserve(static_cast<size_t>(people_.size()) * 60);

  for (size_t i = 0; i < people_.size(); ++i) {
    const Person& p = people_[i];
    Rng rng(o_.seed, kEventStream, i);
    Ctx c{static_cast<int>(i),
          p,
          {},
          *std::max_element(p.category_weight.begin(), p.category_weight.end())};
    if (p.active_to <= p.active_from) continue;
    size_t lo = static_cast<size_t>(std::max<int64_t>(0, DayOf(p.active_from) - first_day));
    size_t hi = static_cast<size_t>(std::max<int64_t>(0, DayOf(p.active_to - 1) - first_day));
    hi = std::min(hi, base.size() - 1);
    double total = 0;
    for (size_t d = lo; d <= hi; ++d) {
      total += base[d] + (p.gift_buyer >= 0.5 ? 4 * p.gift_buyer * gift[d] : 0);
      cumulative[d] = total;
    }
    // Weights average about 1.2 a day: scale so sessions_per_week holds.
    int sessions = rng.Poisson(p.sessions_per_week / 7.0 * total / 1.2);
    // A new customer's first visit is on the day they sign up.
    if (p.signup_ms >= start_ms_) {
      bool night = false;
      int64_t t = DayOf(p.signup_ms) * kDayMs + TimeOfDay(p, rng, &night);
      if (t < p.active_from) t += kDayMs;
      Session(c, t, night, rng);
    }
    for (int s = 0; s < sessions; ++s) {
      double r = rng.Uniform() * total;
      size_t d = static_cast<size_t>(
          std::lower_bound(cumulative.begin() + lo, cumulative.begin() + hi + 1, r) -
          cumulative.begin());
      d = std::min(d, hi);
      bool night = false;
      int64_t t = (first_day + static_cast<int64_t>(d)) * kDayMs + TimeOfDay(p, rng, &night);
      if (t < p.active_from) continue;
      Session(c, t, night, rng);
    }
    if (progress && (i % 256 == 0 || i + 1 == people_.size()))
      progress("events", static_cast<int64_t>(i + 1), static_cast<int64_t>(people_.size()));
  }
  std::sort(events_.begin(), events_.end(), [](const RawEvent& a, const RawEvent& b) {
    return a.ts != b.ts ? a.ts < b.ts : a.order < b.order;
  });
}

}  // namespace

const std::vector<std::string>& DemoCategories() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> v;
    for (const CategorySpec& s : Specs()) v.push_back(s.name);
    return v;
  }();
  return kNames;
}

const std::vector<std::string>& DemoTraits() {
  static const std::vector<std::string> kTraits = {"deal_seeker", "night_owl",  "big_spender",
                                                   "gift_buyer",  "churn_risk", "brand_passionate",
                                                   "expecting"};
  return kTraits;
}

std::vector<DemoCustomerTruth> DemoHiddenTraits(const DemoOptions& options) {
  std::vector<DemoCustomerTruth> out;
  if (options.customers <= 0 || options.items < kNumCategories) return out;
  DemoOptions o = options;
  o.days = std::max(1, o.days);
  World world(o, o.end_ms ? o.end_ms : now_ms());
  world.MakeCatalog();
  world.MakePeople();
  out.reserve(world.people().size());
  for (const Person& p : world.people()) {
    DemoCustomerTruth t;
    t.id = p.id;
    t.category_weight.assign(p.category_weight.begin(), p.category_weight.end());
    t.deal_seeker = p.deal_seeker;
    t.night_owl = p.night_owl;
    t.big_spender = p.big_spender;
    t.gift_buyer = p.gift_buyer;
    t.churn_risk = p.churn_risk;
    t.sessions_per_week = p.sessions_per_week;
    out.push_back(std::move(t));
  }
  return out;
}

Status GenerateDemo(Store& store, const DemoOptions& options, DemoSummary* summary,
                    const DemoProgressFn& progress) {
  if (options.customers < 0 || options.items < 0 || options.days <= 0)
    return Status::Error("demo: customers and items must be >= 0 and days > 0");
  if (options.items < kNumCategories && options.customers > 0)
    return Status::Error("demo: at least " + std::to_string(kNumCategories) +
                         " items are needed (one per category) when there are customers");
  DemoSummary local;
  DemoSummary& out = summary ? *summary : local;
  out = DemoSummary{};
  int64_t t0 = mono_ns();
  int64_t end_ms = options.end_ms ? options.end_ms : now_ms();

  World world(options, end_ms);
  world.MakeCatalog();
  world.MakePeople();
  if (progress) progress("world", 1, 1);
  world.MakeEvents(progress);
  int64_t t1 = mono_ns();
  out.generate_seconds = static_cast<double>(t1 - t0) / 1e9;
  out.start_ms = world.start_ms();
  out.end_ms = end_ms;

  std::string err;
  std::unique_ptr<Store::Bulk> bulk = store.BeginBulk(&err);
  if (!bulk) return Status::Error("demo: cannot write to store: " + err);
  const auto& people = world.people();
  const auto& products = world.products();
  auto& events = world.events();
  const int64_t total = static_cast<int64_t>(people.size() + products.size() + events.size());
  int64_t done = 0;
  auto tick = [&] {
    ++done;
    if (progress && (done % 8192 == 0 || done == total)) progress("writing", done, total);
  };

  for (const Product& p : products) {
    if (Status s = bulk->Item(p.item); !s.ok()) return Status::Error("demo: item: " + s.message());
    ++out.items;
    tick();
  }
  const auto& personas = Personas();
  for (const Person& p : people) {
    Customer c;
    c.id = p.id;
    c.attributes_json = json{
        {"age", p.age},
        {"city", p.city},
        {"gender", p.gender},
        {"segment", kSegments[p.segment]},
        {"signup_ms",
         p.signup_ms}}.dump();
    c.consent_json = json{{"personalization", p.consent_personalization},
                          {"email", p.consent_email},
                          {"sensitive", p.consent_sensitive}}
                         .dump();
    c.created_ms = p.signup_ms;
    c.updated_ms = p.signup_ms;
    if (Status s = bulk->Customer(c); !s.ok())
      return Status::Error("demo: customer: " + s.message());
    ++out.customers;

    std::vector<std::pair<std::string, double>> truth = {
        {"deal_seeker", p.deal_seeker},
        {"night_owl", p.night_owl},
        {"big_spender", p.big_spender},
        {"gift_buyer", p.gift_buyer},
        {"churn_risk", p.churn_risk},
        {"brand_passionate", p.brand_passionate ? 1.0 : 0.0},
        {"expecting", p.expecting ? 1.0 : 0.0},
        {"sessions_per_week", p.sessions_per_week},
        {std::string("persona:") + personas[p.persona].name, 1.0},
    };
    if (p.persona2 >= 0)
      truth.emplace_back(std::string("persona:") + personas[p.persona2].name, 0.5);
    if (p.favourite_brand >= 0)
      truth.emplace_back("favourite_brand:" + world.brand_name(p.favourite_brand), 1.0);
    for (const auto& [trait, value] : truth) {
      if (Status s = bulk->Truth(p.id, trait, value); !s.ok())
        return Status::Error("demo: truth: " + s.message());
      ++out.truths;
    }
    for (size_t k = 0; k < DemoTraits().size(); ++k) {
      if (truth[k].second >= 0.5) ++out.trait_counts[truth[k].first];
    }
    tick();
  }

  Event e;
  char props[96];
  for (const RawEvent& r : events) {
    e.customer_id = people[r.customer].id;
    e.type = kEventTypeNames[r.type];
    e.item_id = products[r.item].item.id;
    e.channel = kChannelNames[r.channel];
    e.ts_ms = r.ts;
    e.value = r.type == kPurchase || r.type == kReturn ? r.value : 0;
    e.quantity = r.type == kPurchase || r.type == kReturn ? r.quantity : 0;
    if (r.type == kAddToCart) e.quantity = 1;
    int len = std::snprintf(props, sizeof props, "{\"discount\":%.2f", r.discount);
    if (r.reason >= 0)
      len += std::snprintf(props + len, sizeof props - len, ",\"reason\":\"%s\"",
                           kReturnReasons[r.reason]);
    if (r.gift_wrap) len += std::snprintf(props + len, sizeof props - len, ",\"gift_wrap\":true");
    std::snprintf(props + len, sizeof props - len, "}");
    e.properties_json = props;
    if (Status s = bulk->Event(e); !s.ok()) return Status::Error("demo: event: " + s.message());
    ++out.events;
    ++out.events_by_type[e.type];
    tick();
  }
  if (Status s = bulk->Commit(); !s.ok()) return Status::Error("demo: commit: " + s.message());
  out.write_seconds = static_cast<double>(mono_ns() - t1) / 1e9;
  return Status::Ok();
}

}  // namespace tailor::ingest
