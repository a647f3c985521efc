#include "common/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/log.h"

namespace tailor {

void LowerThisThreadsPriority(int nice, const char* who) {
  // PRIO_PROCESS with a thread id changes that thread alone.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && setpriority(PRIO_PROCESS, tid, now + nice) == 0) return;
  log::Warn(who, std::string("cannot lower this thread's priority: ") + std::strerror(errno));
}

}  // namespace tailor
