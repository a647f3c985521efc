// A request's error as clients receive it (service/protocol.cc renders it):
// a code from tailor/messages.h, the offending field and a message.
#pragma once

#include <string>

namespace tailor {

struct ApiError {
  std::string code;     // TAILOR_ERR_* from tailor/messages.h
  std::string field;    // JSON path of the offending field, "" for the whole message
  std::string message;  // for humans
};

}  // namespace tailor
