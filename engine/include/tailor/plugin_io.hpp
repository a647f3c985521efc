// Helpers for plugins' model files (optional; header-only, standard library
// only): SaveModelFile / ReadModelFile for the file as a whole, a Writer of
// plain values, length-prefixed strings and arrays, and a bounds-checked
// Reader over the whole file in memory whose errors name the file, the model
// kind and the byte offset. Values are in the
// machine's byte order; a plugin that may meet other machines' files writes
// an endianness mark of its own.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tailor/plugin_sdk.hpp"

namespace tailor::sdk {

// Writes a model file so that a crash never leaves half of one at path:
// write(out) fills path + ".tmp", which then replaces path. Throws
// std::runtime_error naming the file.
template <typename Write>
void SaveModelFile(const std::string& path, Write&& write) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp + ": " + std::strerror(errno));
    write(static_cast<std::ostream&>(out));
    out.flush();
    if (!out) throw std::runtime_error("error writing " + tmp + ": " + std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

// The whole file; NotFound (the host sees TAILOR_NOT_FOUND) when it cannot be
// opened.
inline std::string ReadModelFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFound("cannot open model file " + path + ": " + std::strerror(errno));
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class ModelWriter {
 public:
  explicit ModelWriter(std::ostream& out) : out_(out) {}
  template <typename T>
  void Pod(const T& v) {
    out_.write(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void Str(std::string_view s) {
    Pod(static_cast<uint64_t>(s.size()));
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
  }
  // A count, then n values.
  template <typename T>
  void Array(const T* p, size_t n) {
    Pod(static_cast<uint64_t>(n));
    out_.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n * sizeof(T)));
  }
  template <typename T>
  void Vec(const std::vector<T>& v) {
    Array(v.data(), v.size());
  }

 private:
  std::ostream& out_;
};

class ModelReader {
 public:
  // data: the file's bytes (or a tail of them), read from offset at. path and
  // kind ("cf", "content") only name the file in errors; path must outlive
  // the reader.
  ModelReader(const std::string& path, std::string_view kind, std::string_view data, size_t at = 0)
      : path_(path), kind_(kind), data_(data), at_(at) {}

  [[noreturn]] void Fail(const std::string& what) const {
    throw std::runtime_error(path_ + ": corrupt " + std::string(kind_) + " model file at byte " +
                             std::to_string(at_) + ": " + what);
  }
  template <typename T>
  T Pod() {
    if (data_.size() - at_ < sizeof(T)) Fail("unexpected end of file");
    T v;
    std::memcpy(&v, data_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  std::string Str() {
    const auto n = Pod<uint64_t>();
    if (n > data_.size() - at_) Fail("string runs past the end");
    std::string s(data_.substr(at_, n));
    at_ += n;
    return s;
  }
  // An array written by ModelWriter::Array of exactly `expect` values.
  template <typename T>
  void Array(T* p, size_t expect) {
    const auto n = Pod<uint64_t>();
    if (n != expect) Fail("array of " + std::to_string(n) + ", expected " + std::to_string(expect));
    if (n > (data_.size() - at_) / sizeof(T)) Fail("array runs past the end");
    if (n > 0) std::memcpy(p, data_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
  }
  template <typename T>
  std::vector<T> Vec() {
    const auto n = Pod<uint64_t>();
    if (n > (data_.size() - at_) / sizeof(T)) Fail("array runs past the end");
    std::vector<T> v(n);
    if (n > 0) std::memcpy(v.data(), data_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return v;
  }
  // A count of things that take at least min_bytes each in the rest of the file.
  uint64_t Count(size_t min_bytes) {
    const auto n = Pod<uint64_t>();
    if (n > (data_.size() - at_) / min_bytes) Fail("count runs past the end");
    return n;
  }
  size_t Remaining() const { return data_.size() - at_; }
  bool AtEnd() const { return at_ == data_.size(); }

 private:
  const std::string& path_;
  std::string_view kind_;
  std::string_view data_;
  size_t at_;
};

}  // namespace tailor::sdk
