// Background threads (the store's writer, the ingest lane) yield the CPU to
// the decision workers: on a busy machine decisions are answered first.
#pragma once

namespace tailor {

// Raises the calling thread's nice value (Linux: per thread) by `nice`;
// logs a warning under `who` when the system refuses.
void LowerThisThreadsPriority(int nice, const char* who);

}  // namespace tailor
