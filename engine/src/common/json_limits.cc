#include "common/json_limits.h"

namespace tailor {

JsonDepth ScanJsonDepth(std::string_view text, int limit) {
  JsonDepth out;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t string_start = 0;
  std::string_view last_top_string;  // the latest string at level 1: a key
  char last_token = 0;               // the latest character outside strings and spaces
  bool id_value = false;             // the string being read is the value of "id"
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
        if (id_value && last_top_string.find('\\') == std::string_view::npos)
          out.id = std::string(last_top_string);
        last_token = '"';
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (c == '"') {
      in_string = true;
      string_start = i + 1;
      // A plain (unescaped) string value of the top-level "id": the error
      // reply can carry it.
      id_value = depth == 1 && last_token == ':' && last_top_string == "id";
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
    last_token = c;
  }
  out.field.clear();
  return out;
}

}  // namespace tailor
