#include "fuzz_target.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace tailor::fuzz {
namespace {

std::map<std::string, TargetFn>& Registry() {
  static std::map<std::string, TargetFn> registry;
  return registry;
}

}  // namespace

bool Register(const char* name, TargetFn fn) {
  Registry()[name] = fn;
  return true;
}

TargetFn Find(const std::string& name) {
  auto it = Registry().find(name);
  return it == Registry().end() ? nullptr : it->second;
}

TargetFn Only() { return Registry().size() == 1 ? Registry().begin()->second : nullptr; }

const std::string& ScratchDir() {
  // Never destroyed: the atexit cleanup below runs after static destructors
  // registered later, and must still read it.
  static const std::string& dir = *new std::string([] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tailor-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return tmpl;
  }());
  return dir;
}

std::string WriteScratch(const std::string& name, const uint8_t* data, size_t size) {
  std::string path = ScratchDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) std::abort();  // a full disk would make every input look harmless
  return path;
}

}  // namespace tailor::fuzz
