#pragma once

#include <string>

namespace tailor {

// Splits "host:port" (port 0..65535); false when it is not that.
bool SplitHostPort(const std::string& address, std::string* host, int* port);

}  // namespace tailor
