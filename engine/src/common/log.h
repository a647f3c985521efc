// Structured logging, tagged with the component (and rule or plugin) that
// speaks. A thin front over spdlog so that only log.cc pays for its headers.
#pragma once

#include <string>
#include <string_view>

namespace tailor::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

// Lines go to stderr as "time level [component] message", or with
// SetJson(true) as one JSON object per line:
//   {"ts":"2026-12-08T03:20:00.123Z","level":"warn","component":"plugin:cf",
//    "msg":"...","request":"r1","decision":"d-..."}
// request and decision name the decide being served on this thread (Scope):
// in text lines they follow the message as "request=… decision=…".
// Thread-safe.
void Write(Level level, std::string_view component, std::string_view message);
void SetLevel(Level level);
void SetJson(bool json);

// While alive, lines written on this thread name the request (the client's
// message id) and, once known, the decision it makes.
class Scope {
 public:
  explicit Scope(std::string_view request);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  void Decision(std::string_view decision_id);
};
// "debug", "info", "warn", "error", "off"; false for anything else.
bool SetLevel(std::string_view name);

// Customer ids in logs: a keyed hash ("cust:1f3a9c0b7e2d4a65") unless plain
// ids were asked for (security.log_customer_ids: plain). The key is random
// per process unless SetPseudonymKey gave one (security.log_key_file), so
// that lines can be matched across restarts by whoever holds the key.
std::string Customer(std::string_view customer_id);
void SetPseudonymKey(std::string_view key);
void SetPlainCustomerIds(bool plain);

inline void Debug(std::string_view c, std::string_view m) { Write(Level::kDebug, c, m); }
inline void Info(std::string_view c, std::string_view m) { Write(Level::kInfo, c, m); }
inline void Warn(std::string_view c, std::string_view m) { Write(Level::kWarn, c, m); }
inline void Error(std::string_view c, std::string_view m) { Write(Level::kError, c, m); }

}  // namespace tailor::log
