#include "progress.h"

#include <unistd.h>

#include <cstdio>

#include "common/time.h"

namespace tailor::cli {

Progress::Progress(std::string label) : label_(std::move(label)), tty_(isatty(2)) {}

void Progress::Update(int64_t done, int64_t total, const std::string& unit) {
  int pct = total > 0 ? static_cast<int>(done * 100 / total) : -1;
  if (tty_) {
    int64_t now = mono_ns();
    if (now - last_draw_ns_ < 100'000'000 && done != total) return;
    last_draw_ns_ = now;
    constexpr int kWidth = 30;
    int filled = pct < 0 ? 0 : pct * kWidth / 100;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    if (pct >= 0)
      std::fprintf(stderr, "\r%-10s [%s] %3d%%  %lld/%lld %s   ", label_.c_str(), bar.c_str(), pct,
                   static_cast<long long>(done), static_cast<long long>(total), unit.c_str());
    else
      std::fprintf(stderr, "\r%-10s %lld %s   ", label_.c_str(), static_cast<long long>(done),
                   unit.c_str());
    drawn_ = true;
    return;
  }
  int decile = pct < 0 ? -1 : pct / 10;
  if (decile == last_decile_) return;
  last_decile_ = decile;
  if (pct >= 0)
    std::fprintf(stderr, "%s: %d%% (%lld/%lld %s)\n", label_.c_str(), decile * 10,
                 static_cast<long long>(done), static_cast<long long>(total), unit.c_str());
}

void Progress::Done(const std::string& summary) {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
  if (!summary.empty()) std::fprintf(stderr, "%s: %s\n", label_.c_str(), summary.c_str());
}

}  // namespace tailor::cli
