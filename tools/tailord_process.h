// A tailord child process for commands that drive a real service over
// ZeroMQ (`tailor simulate`, `tailor bench`), and a pipelining DEALER client.
#pragma once

#include <sys/types.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tailor::cli {

// The directory of the running executable (tailord is installed beside tailor).
std::string SelfDir();

struct TailordOptions {
  std::string who = "tailor";  // prefix of error messages
  std::string bin;             // default: SelfDir()/tailord
  std::string config, store, work_dir, plugin_dir;
  bool ready_after_training = true;  // wait until no plugin is warming
  int start_timeout_s = 300;
  std::vector<std::string> extra_args;
};

class TailordProcess {
 public:
  // Starts tailord on loopback ports chosen by the OS and waits until it is
  // serving (its ready file exists); fails the command if it exits first.
  explicit TailordProcess(const TailordOptions& o);
  ~TailordProcess();  // SIGTERM, then SIGKILL after 30 s
  TailordProcess(const TailordProcess&) = delete;
  TailordProcess& operator=(const TailordProcess&) = delete;

  bool Alive();
  // Stops tailord (SIGTERM: it drains queued events and decisions first) and
  // returns its exit status.
  int Stop();
  std::string LogTail() const;
  const std::string& requests() const { return requests_; }
  const std::string& events() const { return events_; }
  pid_t pid() const { return pid_; }
  // Seconds from fork to the ready file.
  double ready_seconds() const { return ready_seconds_; }

 private:
  pid_t pid_ = -1;
  std::string log_, requests_, events_;
  double ready_seconds_ = 0;
};

// A DEALER socket: many requests in flight, replies matched by their id.
class Wire {
 public:
  explicit Wire(const std::string& endpoint);
  ~Wire();
  void Send(const nlohmann::json& msg);
  void SendRaw(const std::string& body);
  std::optional<nlohmann::json> Recv(int timeout_ms);
  // The reply's text, unparsed.
  std::optional<std::string> RecvRaw(int timeout_ms);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tailor::cli
