// A progress bar on stderr for long CLI commands: redrawn in place at most ten
// times a second on a terminal; one plain line per 10% otherwise (logs, CI).
#pragma once

#include <cstdint>
#include <string>

namespace tailor::cli {

class Progress {
 public:
  explicit Progress(std::string label);

  // total <= 0: unknown, only the count is shown. unit follows the numbers.
  void Update(int64_t done, int64_t total, const std::string& unit);
  // Ends the bar's line and prints summary (when not empty) as "label: summary".
  void Done(const std::string& summary);

 private:
  std::string label_;
  bool tty_ = false;
  bool drawn_ = false;
  int64_t last_draw_ns_ = 0;
  int last_decile_ = -2;
};

}  // namespace tailor::cli
