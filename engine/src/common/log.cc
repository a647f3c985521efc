#include "common/log.h"

#include <sodium.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/time.h"

namespace tailor::log {
namespace {

spdlog::logger& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("tailor");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *logger;
}

std::atomic<bool> g_json{false};

// The decide this thread serves (Scope); empty outside one.
struct Context {
  std::string request, decision;
  bool active = false;
};
thread_local Context t_context;

// The names --log-level takes and JSON lines print.
constexpr std::pair<std::string_view, Level> kLevelNames[] = {{"debug", Level::kDebug},
                                                              {"info", Level::kInfo},
                                                              {"warn", Level::kWarn},
                                                              {"error", Level::kError},
                                                              {"off", Level::kOff}};

std::string_view LevelName(Level level) {
  for (const auto& [name, l] : kLevelNames)
    if (l == level) return name;
  return "off";
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

struct Pseudonyms {
  std::mutex mu;
  unsigned char key[crypto_generichash_KEYBYTES];
  bool keyed = false;
  std::atomic<bool> plain{false};
};

Pseudonyms& Ids() {
  static Pseudonyms p;
  return p;
}

}  // namespace

void SetPseudonymKey(std::string_view key) {
  Pseudonyms& p = Ids();
  std::lock_guard lock(p.mu);
  crypto_generichash(p.key, sizeof p.key, reinterpret_cast<const unsigned char*>(key.data()),
                     key.size(), nullptr, 0);
  p.keyed = true;
}

void SetPlainCustomerIds(bool plain) { Ids().plain = plain; }

std::string Customer(std::string_view customer_id) {
  Pseudonyms& p = Ids();
  if (p.plain) return std::string(customer_id);
  unsigned char out[8];
  {
    std::lock_guard lock(p.mu);
    if (!p.keyed) {
      if (sodium_init() < 0) return "cust:?";
      randombytes_buf(p.key, sizeof p.key);
      p.keyed = true;
    }
    crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(customer_id.data()),
                       customer_id.size(), p.key, sizeof p.key);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string s = "cust:";
  for (unsigned char b : out) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

void Write(Level level, std::string_view component, std::string_view message) {
  const spdlog::level::level_enum spd = ToSpd(level);
  if (!Logger().should_log(spd)) return;
  const Context& c = t_context;
  if (!g_json.load(std::memory_order_relaxed)) {
    if (!c.active) {
      Logger().log(spd, "[{}] {}", component, message);
    } else {
      Logger().log(spd, "[{}] {} request={}{}{}", component, message, c.request,
                   c.decision.empty() ? "" : " decision=", c.decision);
    }
    return;
  }
  nlohmann::json j = {{"ts", format_iso8601_ms(now_ms())},
                      {"level", LevelName(level)},
                      {"component", component},
                      {"msg", message}};
  if (c.active) j["request"] = c.request;
  if (!c.decision.empty()) j["decision"] = c.decision;
  // Bytes that are not UTF-8 (a plugin's message) become U+FFFD, never a throw.
  Logger().log(spd, "{}", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void SetLevel(Level level) { Logger().set_level(ToSpd(level)); }

void SetJson(bool json) {
  g_json = json;
  Logger().set_pattern(json ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
}

Scope::Scope(std::string_view request) {
  t_context.request.assign(request);
  t_context.decision.clear();
  t_context.active = true;
}

Scope::~Scope() {
  t_context.active = false;
  t_context.decision.clear();
}

void Scope::Decision(std::string_view decision_id) { t_context.decision.assign(decision_id); }

bool SetLevel(std::string_view name) {
  for (const auto& [n, l] : kLevelNames) {
    if (n == name) {
      SetLevel(l);
      return true;
    }
  }
  return false;
}

}  // namespace tailor::log
