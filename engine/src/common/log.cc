#include "common/log.h"

#include <sodium.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>

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
  Logger().log(ToSpd(level), "[{}] {}", component, message);
}

void SetLevel(Level level) { Logger().set_level(ToSpd(level)); }

bool SetLevel(std::string_view name) {
  static const std::pair<std::string_view, Level> kNames[] = {{"debug", Level::kDebug},
                                                              {"info", Level::kInfo},
                                                              {"warn", Level::kWarn},
                                                              {"error", Level::kError},
                                                              {"off", Level::kOff}};
  for (const auto& [n, l] : kNames) {
    if (n == name) {
      SetLevel(l);
      return true;
    }
  }
  return false;
}

}  // namespace tailor::log
