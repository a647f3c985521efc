#include "common/json_limits.h"

namespace tailor {

JsonDepth ScanJsonDepth(std::string_view text, int limit) {
  JsonDepth out;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t string_start = 0;
  std::string_view last_top_string;  // the latest string at level 1: a key
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
        if (depth == 1) last_top_string = text.substr(string_start, i - string_start);
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      string_start = i + 1;
    } else if (c == '{' || c == '[') {
      if (depth == 1) out.field = std::string(last_top_string);
      if (++depth > out.depth) out.depth = depth;
      if (depth > limit) {
        if (depth == 1) out.field.clear();
        return out;
      }
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
      if (depth == 1) out.field.clear();
    }
  }
  out.field.clear();
  return out;
}

}  // namespace tailor
