// Small value types shared by every part: a status for fallible calls off the
// hot path's exception-free style.
#pragma once

#include <string>
#include <utility>

namespace tailor {

// Ok, or a failure with a human-readable message. Cheap to return by value.
class Status {
 public:
  Status() = default;
  static Status Ok() { return {}; }
  static Status Error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const std::string& message() const { return message_; }

 private:
  explicit Status(std::string m) : failed_(true), message_(std::move(m)) {}
  bool failed_ = false;
  std::string message_;
};

}  // namespace tailor
