// Small helpers plugins share (optional; header-only, standard library only).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tailor::sdk {

// Hashes std::string and std::string_view alike, so that a StringMap can be
// searched with a view (a candidate's const char*) without building a string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// An unordered map from strings, searchable with std::string_view.
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

}  // namespace tailor::sdk
