// One fuzz target = one function over a byte string. Each target file defines
// its function with TAILOR_FUZZ_TARGET(name); the same file then builds two
// ways: into a libFuzzer binary (clang, TAILOR_FUZZ; libfuzzer_entry.cc) and
// into tailor_fuzz_replay, which every build's ctest runs over the checked-in
// seeds and the inputs that once crashed (corpus/NAME, regressions/NAME).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tailor::fuzz {

using TargetFn = void (*)(const uint8_t* data, size_t size);

// Registers a target under its name; returns true (for a static initialiser).
bool Register(const char* name, TargetFn fn);
// The target of that name, or null.
TargetFn Find(const std::string& name);
// The only registered target (libFuzzer binaries link exactly one), or null.
TargetFn Only();

// A private directory for the process, removed at exit: targets whose code
// under test reads files write the input there.
const std::string& ScratchDir();
// Writes bytes to ScratchDir()/name and returns the full path.
std::string WriteScratch(const std::string& name, const uint8_t* data, size_t size);

}  // namespace tailor::fuzz

#define TAILOR_FUZZ_TARGET(name)                                     \
  static void TailorFuzz_##name(const uint8_t* data, size_t size);   \
  [[maybe_unused]] static const bool tailor_fuzz_registered_##name = \
      ::tailor::fuzz::Register(#name, TailorFuzz_##name);            \
  static void TailorFuzz_##name(const uint8_t* data, size_t size)
