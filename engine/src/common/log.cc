#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

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

}  // namespace

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
