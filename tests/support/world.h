// A small, hand-made world for tests: 30 items in three categories, 20
// customers, and events where item i1 is by far the most bought.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/store.h"

namespace tailor::testing {

// Creates (or overwrites) a store at path with that world.
void MakeSmallWorld(const std::string& path);

// More of a world, added to the store at path in one bulk transaction
// (events do not create their customer rows).
struct WorldAdditions {
  std::vector<Customer> customers;
  std::vector<Item> items;
  std::vector<Event> events;
};
void AddToWorld(const std::string& path, const WorldAdditions& more);

// The store at path opened read-only (e.g. what tailord wrote); fails the
// test and returns null when it cannot be opened.
std::unique_ptr<Store> ReadStore(const std::string& path);

}  // namespace tailor::testing
