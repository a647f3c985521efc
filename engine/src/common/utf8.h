// UTF-8 validation for text read from files (YAML, CSV): JSON output must be
// valid UTF-8, so bad bytes are refused where they come in, with a position.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tailor {

// The offset of the first byte that does not start a well-formed UTF-8
// sequence (overlong forms, surrogates and code points past U+10FFFF are
// not), or std::string::npos when text is valid.
size_t InvalidUtf8At(std::string_view text);

}  // namespace tailor
