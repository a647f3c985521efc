// Bounds on client JSON. Every recursive walk over client data (parsing,
// copies, dumps, JSON -> Lua) stays within kMaxJsonDepth because no message
// nested deeper gets past the protocol layer, and walks over data that did
// not come through it (the store, plugins' facts) check the same bound.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tailor {

// Levels of nesting a message may have, the message object itself included:
// {"context":{"a":[1]}} is 3 levels deep.
inline constexpr int kMaxJsonDepth = 32;

struct JsonDepth {
  int depth = 0;      // the deepest nesting seen (stops counting past the limit)
  std::string field;  // top-level key under which the limit was passed ("" for the whole)
  std::string id;     // the top-level "id" string read before that point, raw ("" if none)
};

// Scans the text of one JSON document without building it (no recursion, no
// allocation but the field name) and reports its nesting depth, stopping at
// the first level past limit. Malformed text is scanned as far as it goes:
// the parser reports it.
JsonDepth ScanJsonDepth(std::string_view text, int limit = kMaxJsonDepth);

}  // namespace tailor
