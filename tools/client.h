// A minimal synchronous client for tailord's request socket.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace tailor::cli {

// CURVE keys for a client of a secured tailord (README § Security): the
// client's own NAME.key and the server's .pub; both empty for none.
struct ClientKeys {
  std::string key_file, server_key_file;
};

class Client {
 public:
  // Connects a REQ socket to endpoint; timeout_ms bounds each round trip.
  // Fails (tailor::cli::Fail) when a key file cannot be read.
  Client(const std::string& endpoint, int timeout_ms, const ClientKeys& keys = {});
  ~Client();
  // Sends one request and waits for its reply; nullopt on timeout (after
  // which the client reconnects so it can be used again).
  std::optional<std::string> Call(const std::string& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Adds --key and --server-key to a subcommand.
void AddKeyOptions(CLI::App* app, ClientKeys* keys);

}  // namespace tailor::cli
