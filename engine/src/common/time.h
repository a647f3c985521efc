// Time helpers. All timestamps inside Tailor are int64 milliseconds since the
// Unix epoch, UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tailor {

int64_t now_ms();
// Monotonic clock in nanoseconds, for latency measurement only.
int64_t mono_ns();

// Parses ISO 8601 / RFC 3339: "2026-11-23T21:15:00Z", with optional fractional
// seconds and a "+hh:mm" offset; also "2026-11-23 21:15:00" (taken as UTC) and
// a bare date. Returns nullopt when the text is not such a time.
std::optional<int64_t> parse_iso8601_ms(std::string_view text);

// "2026-11-23T21:15:00.123Z".
std::string format_iso8601_ms(int64_t ms);

}  // namespace tailor
