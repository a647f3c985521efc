// The request socket's parser: every byte string a client can send.
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_target.h"
#include "service/protocol.h"

TAILOR_FUZZ_TARGET(request) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  std::string id;
  auto parsed = tailor::ParseRequest(body, 1 << 20, &id);
  // The error reply is built from client bytes too (the id, the field name).
  if (auto* err = std::get_if<tailor::ApiError>(&parsed)) (void)tailor::ErrorReply(id, *err);
}
