// Starts a real tailord process for integration tests: temp store, ports
// picked by the OS (tcp://127.0.0.1:*), endpoints read from --ready-file.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace tailor::testing {

class Tailord {
 public:
  struct Options {
    std::string config;  // default: the shipped config/tailor.yaml
    std::string store;   // required
    std::vector<std::string> extra_args;
    // Ready once plugins training in the background are done (else: as
    // soon as it serves).
    bool wait_for_training = true;
    // Another tailord (an installed one) that finds its plugins itself: no
    // --plugin-dir is passed.
    std::string binary;
  };
  // Starts tailord and waits until it serves; fails the test if it does not.
  explicit Tailord(Options options);
  ~Tailord();  // SIGKILL if still running

  bool running() const { return pid_ > 0; }
  const std::string& requests() const { return requests_; }
  const std::string& events() const { return events_; }
  const std::string& outbound() const { return outbound_; }
  // host:port of the HTTP listener (--http / service.http), "" without one.
  const std::string& http() const { return http_; }
  // Sends SIGTERM and waits; returns the exit code (or 128 + signal).
  int Terminate();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string dir_, log_path_, requests_, events_, outbound_, http_;
};

// A REQ client with a receive timeout; Call fails the test on timeout.
class Client {
 public:
  explicit Client(const std::string& endpoint, int timeout_ms = 10000);
  nlohmann::json Call(const nlohmann::json& request);
  std::string CallRaw(const std::string& body);

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
};

// A SUB socket on tailord's outbound endpoint, subscribed to everything and
// given time to join (PUB drops what is sent before a subscriber joined).
class Subscriber {
 public:
  Subscriber(const std::string& endpoint, int timeout_ms);
  // The next message, or nullopt after the timeout.
  std::optional<std::string> Next();

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_;
};

// Path to the shipped tailor CLI and tailord binaries.
std::string TailorBin();
std::string TailordBin();

// Runs a shell command with stdout and stderr into log; its exit status
// (128 when it did not exit normally).
int Shell(const std::string& cmd, const std::string& log);

// One entry of a tailor.yaml `plugins:` list for a shipped plugin
// (build/plugins/tailor_<name>.so) or a test fixture (<name>.so); extra holds
// more keys, each line indented four spaces ("    weight: 3\n").
std::string ShippedPluginYaml(const std::string& name, const std::string& extra = "");
std::string FixturePluginYaml(const std::string& name, const std::string& extra = "");

// Writes DIR/tailor.yaml: `extra` (top-level YAML), then the `plugins:`
// entries given (ShippedPluginYaml / FixturePluginYaml), one offers
// placement `home`, and DIR/offers.yaml with one offer o1 (phones). Returns
// the config's path.
std::string SmallConfig(const std::string& dir, const std::string& plugins,
                        const std::string& extra = "");

}  // namespace tailor::testing
