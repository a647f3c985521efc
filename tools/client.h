// A minimal synchronous client for tailord's request socket.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace tailor::cli {

class Client {
 public:
  // Connects a REQ socket to endpoint; timeout_ms bounds each round trip.
  Client(const std::string& endpoint, int timeout_ms);
  ~Client();
  // Sends one request and waits for its reply; nullopt on timeout (after
  // which the client reconnects so it can be used again).
  std::optional<std::string> Call(const std::string& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailor::cli
