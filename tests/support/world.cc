#include "support/world.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/time.h"
#include "store/store.h"

namespace tailor::testing {

void AddToWorld(const std::string& path, const WorldAdditions& more) {
  std::string err;
  Store::Options o;
  o.path = path;
  o.start_writer = false;
  auto store = Store::Open(o, &err);
  ASSERT_NE(store, nullptr) << err;
  auto bulk = store->BeginBulk(&err);
  ASSERT_NE(bulk, nullptr) << err;
  for (const Customer& c : more.customers) ASSERT_TRUE(bulk->Customer(c).ok()) << c.id;
  for (const Item& it : more.items) ASSERT_TRUE(bulk->Item(it).ok()) << it.id;
  for (const Event& e : more.events) ASSERT_TRUE(bulk->Event(e).ok()) << e.customer_id;
  ASSERT_TRUE(bulk->Commit().ok());
}

void MakeSmallWorld(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  std::string err;
  Store::Options o;
  o.path = path;
  o.start_writer = false;
  auto store = Store::Open(o, &err);
  ASSERT_NE(store, nullptr) << err;
  auto bulk = store->BeginBulk(&err);
  ASSERT_NE(bulk, nullptr) << err;
  const char* cats[] = {"phones", "laptops", "audio"};
  for (int i = 1; i <= 30; ++i) {
    Item it;
    it.id = "i" + std::to_string(i);
    it.title = std::string("Item ") + std::to_string(i);
    it.category = cats[i % 3];
    it.brand = i % 2 ? "Acme" : "Globex";
    it.price = 10.0 * i;
    it.attributes_json = "{\"margin\":0.2}";
    ASSERT_TRUE(bulk->Item(it).ok());
  }
  int64_t now = now_ms();
  for (int c = 1; c <= 20; ++c) {
    Customer cu;
    cu.id = "c" + std::to_string(c);
    cu.attributes_json = "{\"age\":" + std::to_string(20 + c) + "}";
    // c20 has opted out of personalisation.
    cu.consent_json = c == 20 ? "{\"personalization\":false}" : "{\"personalization\":true}";
    ASSERT_TRUE(bulk->Customer(cu).ok());
    for (int k = 0; k < 5; ++k) {
      Event e;
      e.customer_id = cu.id;
      e.type = "purchase";
      e.item_id = k < 3 ? "i1" : "i" + std::to_string(2 + (c + k) % 29);
      e.ts_ms = now - (k + 1) * 3600 * 1000;
      e.value = 10;
      e.quantity = 1;
      ASSERT_TRUE(bulk->Event(e).ok());
    }
  }
  // Customers the golden tests (tests/golden/manifest.json) name.
  struct Special {
    const char* id;
    const char* attributes;
    const char* consent;
  } specials[] = {
      {"teen", R"({"age":17})", R"({"personalization":true,"sensitive":true})"},
      {"adult_consent", R"({"age":30})", R"({"personalization":true,"sensitive":true})"},
      {"adult_no_consent", R"({"age":30})", R"({"personalization":true})"},
      {"capped", R"({"age":40})", R"({"personalization":true})"},
      {"night_owl", R"({"age":25,"dna":{"night_owl":"high"}})", R"({"personalization":true})"},
      {"deal_seeker", R"({"age":50,"dna":{"deal_seeker":"high"}})", R"({"personalization":true})"},
      {"full_price", R"({"age":50,"dna":{"deal_seeker":"low"}})", R"({"personalization":true})"},
  };
  for (const auto& sp : specials) {
    Customer cu;
    cu.id = sp.id;
    cu.attributes_json = sp.attributes;
    cu.consent_json = sp.consent;
    ASSERT_TRUE(bulk->Customer(cu).ok());
  }
  // "capped" saw o_phone_upgrade three times this week.
  for (int k = 0; k < 3; ++k) {
    Event e;
    e.customer_id = "capped";
    e.type = "impression";
    e.offer_id = "o_phone_upgrade";
    e.channel = "web";
    e.ts_ms = now - (k + 1) * 86400 * 1000LL;
    ASSERT_TRUE(bulk->Event(e).ok());
  }
  ASSERT_TRUE(bulk->Commit().ok());
}

std::unique_ptr<Store> ReadStore(const std::string& path) {
  Store::Options o;
  o.path = path;
  o.read_only = true;
  std::string err;
  auto store = Store::Open(o, &err);
  EXPECT_TRUE(store) << err;
  return store;
}

}  // namespace tailor::testing
